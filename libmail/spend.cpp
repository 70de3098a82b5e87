// Spend check server and client: see spend.hpp.
#include "libmail/spend.hpp"

#include "libmail/clock.hpp"
#include "libmail/net.hpp"
#include "libmail/postage.hpp"

#include <openssl/evp.h>

#include <atomic>
#include <charconv>
#include <condition_variable>
#include <mutex>
#include <ostream>
#include <poll.h>
#include <sys/socket.h>
#include <thread>
#include <unistd.h>

namespace mail {

namespace {

constexpr std::size_t max_line = 1024;
// A spend record is worth keeping at most this long; a client asking for more is trimmed.
constexpr std::int64_t max_record_life = 400 * 86400;

std::string sha256_hex(std::string_view s) {
    unsigned char d[EVP_MAX_MD_SIZE];
    unsigned n = 0;
    EVP_Digest(s.data(), s.size(), d, &n, EVP_sha256(), nullptr);
    return hex_encode(std::string_view(reinterpret_cast<char*>(d), n));
}

bool token_ok(std::string_view t) {
    if (t.empty() || t.size() > 256) return false;
    for (char c : t)
        if (static_cast<unsigned char>(c) <= ' ' || static_cast<unsigned char>(c) >= 0x7f) return false;
    return true;
}

std::vector<std::string_view> words(std::string_view s) {
    std::vector<std::string_view> out;
    while (!s.empty()) {
        std::size_t b = s.find_first_not_of(' ');
        if (b == std::string_view::npos) break;
        s.remove_prefix(b);
        std::size_t e = s.find(' ');
        out.push_back(s.substr(0, e));
        s = e == std::string_view::npos ? std::string_view() : s.substr(e);
    }
    return out;
}

} // namespace

std::string spend_answer(Store& store, std::string_view request, std::int64_t now) {
    auto w = words(request);
    if (w.size() != 4 || w[0] != "SPEND") return "500 want SPEND <stamp-key> <message-key> <expires>";
    if (!token_ok(w[1]) || w[1].substr(0, 5) != "book:") return "500 bad stamp key";
    if (!token_ok(w[2])) return "500 bad message key";
    std::int64_t expires = 0;
    auto [p, ec] = std::from_chars(w[3].data(), w[3].data() + w[3].size(), expires);
    if (ec != std::errc() || p != w[3].data() + w[3].size()) return "500 bad expiry";
    expires = std::min(expires, now + max_record_life);
    auto r = store.spend(SpendRecord{std::string(w[1]), std::string(w[2]), now, expires});
    if (!r) return "451 store unavailable";
    switch (*r) {
    case SpendState::fresh: return "250 fresh";
    case SpendState::same_message: return "251 same";
    case SpendState::other_message: break;
    }
    return "550 spent";
}

Result<SpendState> remote_spend(std::string_view authority, const SpendRecord& r, int timeout_ms) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
    std::string who = "authority " + std::string(authority);
    auto hp = parse_host_port(authority);
    if (!hp) return Error{ErrorKind::tempfail, who + ": " + hp.error().text};
    auto fd = connect_tcp(*hp, deadline);
    if (!fd) return Error{ErrorKind::tempfail, who + ": " + fd.error().text};
    std::string req = "SPEND " + r.stamp + " " + sha256_hex(r.message) + " " + std::to_string(r.expires) + "\r\n";
    std::string buf, line;
    auto w = write_all(*fd, req + "QUIT\r\n", deadline);
    Result<std::string> answer = w ? read_line(*fd, buf, max_line, deadline) : Result<std::string>(w.error());
    ::close(*fd);
    if (!answer) return Error{ErrorKind::tempfail, who + ": " + answer.error().text};
    if (answer->rfind("250", 0) == 0) return SpendState::fresh;
    if (answer->rfind("251", 0) == 0) return SpendState::same_message;
    if (answer->rfind("550", 0) == 0) return SpendState::other_message;
    std::string shown;
    for (char c : answer->substr(0, 80)) shown += static_cast<unsigned char>(c) < 0x20 ? '?' : c;
    return Error{ErrorKind::tempfail, who + ": unexpected answer: " + shown};
}

Result<void> serve_spend(Store& store, const SpendServerOptions& opt, std::ostream& log) {
    if (opt.listen.empty()) return Error{ErrorKind::usage, "serve: give --listen HOST:PORT"};
    std::vector<int> fds;
    auto close_all = [&] {
        for (int f : fds) ::close(f);
    };
    for (const auto& l : opt.listen) {
        auto hp = parse_host_port(l);
        if (!hp) {
            close_all();
            return hp.error();
        }
        auto fd = listen_tcp(*hp);
        if (!fd) {
            close_all();
            return fd.error();
        }
        fds.push_back(*fd);
        if (opt.on_listen) opt.on_listen(local_address(*fd));
    }

    std::mutex store_mu, log_mu;
    std::mutex live_mu;
    std::condition_variable live_cv;
    int live = 0;
    std::atomic<std::int64_t> requests{0};
    auto done = [&] { return opt.max_requests > 0 && requests.load() >= opt.max_requests; };

    auto session = [&](int fd, std::string peer) {
        std::string buf;
        for (;;) {
            auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(opt.idle_timeout_ms);
            auto line = read_line(fd, buf, max_line, deadline);
            std::string answer;
            bool quit = false;
            if (!line) {
                if (line.error().kind != ErrorKind::data) break;
                answer = "500 line too long";
                quit = true;
            } else if (*line == "QUIT") {
                answer = "221 bye";
                quit = true;
            } else {
                {
                    std::lock_guard<std::mutex> g(store_mu);
                    answer = spend_answer(store, *line, now());
                }
                ++requests;
                std::lock_guard<std::mutex> g(log_mu);
                log << "event=spend peer=" << peer << " result=" << answer.substr(0, 3) << '\n' << std::flush;
            }
            if (!write_all(fd, answer + "\r\n", deadline) || quit) break;
        }
        ::close(fd);
        std::lock_guard<std::mutex> g(live_mu);
        --live;
        live_cv.notify_all();
    };

    while (!done()) {
        std::vector<pollfd> p;
        for (int f : fds) p.push_back(pollfd{f, POLLIN, 0});
        int r = ::poll(p.data(), p.size(), 200);
        if (r <= 0) continue;
        for (const auto& q : p) {
            if (!(q.revents & POLLIN)) continue;
            int c = ::accept4(q.fd, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
            if (c < 0) continue;
            std::unique_lock<std::mutex> g(live_mu);
            if (live >= opt.max_sessions) {
                g.unlock();
                (void)write_all(c, "421 too many sessions\r\n",
                                std::chrono::steady_clock::now() + std::chrono::milliseconds(100));
                ::close(c);
                continue;
            }
            ++live;
            g.unlock();
            std::thread(session, c, peer_address(c)).detach();
        }
    }
    close_all();
    std::unique_lock<std::mutex> g(live_mu);
    live_cv.wait(g, [&] { return live == 0; });
    return {};
}

} // namespace mail
