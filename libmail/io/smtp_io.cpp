// SMTP session I/O: see smtp_io.hpp.
#include "libmail/io/smtp_io.hpp"

#include "libmail/smtp/smtp_data.hpp"

#include "libmail/smtp/smtp_server.hpp"

#include <openssl/err.h>
#include <openssl/ssl.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <poll.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

namespace mail {

namespace {

using Clock = std::chrono::steady_clock;

int ms_until(Deadline d) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(d - Clock::now()).count();
    return left < 0 ? 0 : static_cast<int>(std::min<long long>(left, 1 << 30));
}

std::string ssl_error_text() {
    unsigned long e = ERR_get_error();
    ERR_clear_error();
    if (!e) return "TLS error";
    char buf[256];
    ERR_error_string_n(e, buf, sizeof buf);
    return buf;
}

void set_nonblocking(int fd) {
    int fl = ::fcntl(fd, F_GETFL);
    if (fl >= 0) ::fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

} // namespace

Result<SSL_CTX*> make_server_tls(const std::string& cert_file, const std::string& key_file) {
    SSL_CTX* ctx = SSL_CTX_new(TLS_server_method());
    if (!ctx) return Error{ErrorKind::software, "TLS: " + ssl_error_text()};
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION);
    if (SSL_CTX_use_certificate_chain_file(ctx, cert_file.c_str()) != 1) {
        SSL_CTX_free(ctx);
        return Error{ErrorKind::config, cert_file + ": cannot load the TLS certificate: " + ssl_error_text()};
    }
    if (SSL_CTX_use_PrivateKey_file(ctx, key_file.c_str(), SSL_FILETYPE_PEM) != 1 ||
        SSL_CTX_check_private_key(ctx) != 1) {
        SSL_CTX_free(ctx);
        return Error{ErrorKind::config, key_file + ": cannot load the TLS key: " + ssl_error_text()};
    }
    return ctx;
}

Result<SSL_CTX*> make_client_tls() {
    SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
    if (!ctx) return Error{ErrorKind::software, "TLS: " + ssl_error_text()};
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, nullptr);
    return ctx;
}

Conn::Conn(int rfd, int wfd, bool own) : rfd_(rfd), wfd_(wfd), own_(own) {
    set_nonblocking(rfd_);
    if (wfd_ != rfd_) set_nonblocking(wfd_);
    // No Nagle: a reply followed by data in a second write (GET) would otherwise wait for the peer's delayed
    // ACK of the first, some 40 ms a message. Every write here is a whole reply or a large piece already.
    int one = 1;
    (void)::setsockopt(wfd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);  // fails harmlessly on pipes
}

Conn::~Conn() {
    if (ssl_) {
        SSL_shutdown(ssl_);  // best effort close_notify; non-blocking, never waits
        SSL_free(ssl_);
    }
    if (own_) {
        ::close(rfd_);
        if (wfd_ != rfd_) ::close(wfd_);
    }
}

bool Conn::wait(int fd, short events, Deadline d) {
    for (;;) {
        pollfd p{fd, events, 0};
        int r = ::poll(&p, 1, ms_until(d));
        if (r > 0) return true;
        if (r == 0) return false;
        if (errno != EINTR) return false;
    }
}

bool Conn::readable(Deadline d) {
    if (ssl_ && SSL_pending(ssl_) > 0) return true;
    pollfd p{rfd_, POLLIN, 0};
    for (;;) {
        int r = ::poll(&p, 1, ms_until(d));
        if (r >= 0) return r > 0 && (p.revents & (POLLIN | POLLHUP));
        if (errno != EINTR) return false;
    }
}

Result<std::size_t> Conn::read(char* buf, std::size_t n, Deadline d) {
    for (;;) {
        if (ssl_) {
            ERR_clear_error();
            int r = SSL_read(ssl_, buf, static_cast<int>(std::min<std::size_t>(n, 1 << 30)));
            if (r > 0) return static_cast<std::size_t>(r);
            int e = SSL_get_error(ssl_, r);
            if (e == SSL_ERROR_ZERO_RETURN) return std::size_t{0};
            if (e == SSL_ERROR_WANT_READ) {
                if (!wait(rfd_, POLLIN, d)) return Error{ErrorKind::tempfail, "timeout"};
                continue;
            }
            if (e == SSL_ERROR_WANT_WRITE) {
                if (!wait(wfd_, POLLOUT, d)) return Error{ErrorKind::tempfail, "timeout"};
                continue;
            }
            if (e == SSL_ERROR_SYSCALL && ERR_peek_error() == 0) return std::size_t{0};  // EOF without close_notify
            return Error{ErrorKind::tempfail, "TLS read: " + ssl_error_text()};
        }
        ssize_t r = ::read(rfd_, buf, n);
        if (r >= 0) return static_cast<std::size_t>(r);
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            if (!wait(rfd_, POLLIN, d)) return Error{ErrorKind::tempfail, "timeout"};
            continue;
        }
        if (errno == ECONNRESET) return std::size_t{0};
        return Error{ErrorKind::tempfail, std::string("read: ") + std::strerror(errno)};
    }
}

Result<void> Conn::write(std::string_view data, Deadline d) {
    while (!data.empty()) {
        if (ssl_) {
            ERR_clear_error();
            int r = SSL_write(ssl_, data.data(), static_cast<int>(std::min<std::size_t>(data.size(), 1 << 30)));
            if (r > 0) {
                data.remove_prefix(static_cast<std::size_t>(r));
                continue;
            }
            int e = SSL_get_error(ssl_, r);
            if (e == SSL_ERROR_WANT_WRITE) {
                if (!wait(wfd_, POLLOUT, d)) return Error{ErrorKind::tempfail, "write timed out"};
                continue;
            }
            if (e == SSL_ERROR_WANT_READ) {
                if (!wait(rfd_, POLLIN, d)) return Error{ErrorKind::tempfail, "write timed out"};
                continue;
            }
            return Error{ErrorKind::tempfail, "TLS write: " + ssl_error_text()};
        }
        // send() with MSG_NOSIGNAL where the descriptor is a socket; write() for pipes.
        ssize_t r = ::send(wfd_, data.data(), data.size(), MSG_NOSIGNAL);
        if (r < 0 && errno == ENOTSOCK) r = ::write(wfd_, data.data(), data.size());
        if (r > 0) {
            data.remove_prefix(static_cast<std::size_t>(r));
            continue;
        }
        if (r < 0 && errno == EINTR) continue;
        if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            if (!wait(wfd_, POLLOUT, d)) return Error{ErrorKind::tempfail, "write timed out"};
            continue;
        }
        return Error{ErrorKind::tempfail, std::string("write: ") + std::strerror(errno)};
    }
    return {};
}

Result<void> Conn::start_tls(SSL_CTX* ctx, bool server, Deadline d) {
    ssl_ = SSL_new(ctx);
    if (!ssl_) return Error{ErrorKind::tempfail, "TLS: " + ssl_error_text()};
    SSL_set_rfd(ssl_, rfd_);
    SSL_set_wfd(ssl_, wfd_);
    if (server) SSL_set_accept_state(ssl_);
    else SSL_set_connect_state(ssl_);
    for (;;) {
        ERR_clear_error();
        int r = SSL_do_handshake(ssl_);
        if (r == 1) return {};
        int e = SSL_get_error(ssl_, r);
        if (e == SSL_ERROR_WANT_READ && wait(rfd_, POLLIN, d)) continue;
        if (e == SSL_ERROR_WANT_WRITE && wait(wfd_, POLLOUT, d)) continue;
        std::string why = (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) ? "timeout" : ssl_error_text();
        SSL_free(ssl_);
        ssl_ = nullptr;
        return Error{ErrorKind::tempfail, "TLS handshake: " + why};
    }
}

std::string Conn::tls_info() const {
    if (!ssl_) return "";
    return std::string(SSL_get_version(ssl_)) + " " + SSL_get_cipher_name(ssl_);
}

void run_smtp_session(Conn& conn, SmtpServer& server, const SessionTimes& times, SSL_CTX* tls,
                      const std::atomic<bool>* stop) {
    auto start = Clock::now();
    auto session_end = start + times.session_time;
    auto flush = [&]() -> bool {
        std::string out = server.take_output();
        if (out.empty()) return true;
        return conn.write(out, std::min(session_end, Clock::now() + times.command_timeout)).ok();
    };
    // A client that talks first is a bot that does not wait for the greeting (RFC 5321 §3.1). Without a
    // pause there is nothing to catch (and a poll a connection costs a tenth of a short session).
    if (times.greet_delay.count() > 0 && conn.readable(Clock::now() + times.greet_delay)) {
        server.refuse_early_talker();
        flush();
        return;
    }
    server.greet();
    if (!flush()) return;

    auto last_reply = Clock::now();
    Clock::time_point data_start{};
    std::size_t data_octets = 0;
    bool was_in_data = false;
    char buf[65536];
    while (!server.closed()) {
        if (stop && stop->load()) {
            server.shutdown("service shutting down");
            break;
        }
        auto now = Clock::now();
        if (server.in_data() && !was_in_data) {
            data_start = now;
            data_octets = 0;
        }
        was_in_data = server.in_data();
        // The deadline runs from the last reply, not from the last octet: dripping bytes does not extend it.
        Deadline d = std::min(session_end, last_reply + times.command_timeout);
        if (stop) d = std::min(d, now + std::chrono::milliseconds(1000));
        if (server.in_data()) {
            // During DATA the command timeout runs from the last octet, and the rate is checked.
            d = std::min(session_end, now + times.command_timeout);
            if (stop) d = std::min(d, now + std::chrono::milliseconds(1000));
            auto elapsed = now - data_start;
            if (elapsed > times.data_grace && times.min_data_rate > 0) {
                double secs = std::chrono::duration<double>(elapsed).count();
                if (static_cast<double>(data_octets) / secs < static_cast<double>(times.min_data_rate)) {
                    server.timeout("data rate too low");
                    break;
                }
            }
        }
        auto n = conn.read(buf, sizeof buf, d);
        if (!n) {
            if (n.error().text != "timeout") {
                server.end_of_input();
                break;
            }
            if (stop && stop->load()) continue;  // woken for the stop check
            auto t = Clock::now();
            if (t >= session_end) {
                server.timeout("session time limit reached");
                break;
            }
            if (server.in_data() || t >= last_reply + times.command_timeout) {
                server.timeout("timeout");
                break;
            }
            continue;  // woken early for the stop check
        }
        if (*n == 0) {
            server.end_of_input();
            break;
        }
        if (server.in_data()) data_octets += *n;
        server.feed(std::string_view(buf, *n));
        std::string out = server.take_output();
        if (!out.empty()) {
            if (!conn.write(out, std::min(session_end, Clock::now() + times.command_timeout))) return;
            last_reply = Clock::now();
        }
        // An extension reply with data (GET): the data follows its reply, then the commands held back.
        while (server.body_pending() && !server.closed()) {
            auto body = server.take_body();
            auto w = write_message_stuffed(body, [&](std::string_view piece) {
                return conn.write(piece, std::min(session_end, Clock::now() + times.command_timeout));
            });
            // After the positive reply nothing else can be said: a failure ends the connection without
            // the terminator, so the peer knows the data is incomplete.
            if (!w) return;
            server.body_sent();
            out = server.take_output();
            if (!out.empty() && !conn.write(out, std::min(session_end, Clock::now() + times.command_timeout))) return;
            last_reply = Clock::now();
        }
        if (server.starttls_pending()) {
            if (!tls || !conn.start_tls(tls, true, std::min(session_end, Clock::now() + times.command_timeout))) {
                server.timeout("TLS handshake failed");
                return;  // nothing can be said in plaintext after 220 Ready
            }
            server.tls_started();
            last_reply = Clock::now();
        }
    }
    flush();
}

} // namespace mail
