// The I/O side of an SMTP session: a connection (a socket, or stdin/stdout
// under inetd; plaintext or TLS), reads and writes under deadlines, and the
// loop that drives an SmtpServer with the session's time limits.
#pragma once
#include "libmail/base/error.hpp"
#include "libmail/io/net.hpp"

#include <atomic>
#include <chrono>
#include <cstddef>
#include <string>
#include <string_view>

typedef struct ssl_ctx_st SSL_CTX;
typedef struct ssl_st SSL;

namespace mail {

class SmtpServer;

/// A server-side TLS context from a PEM certificate chain and key; kind config when they cannot be loaded.
Result<SSL_CTX*> make_server_tls(const std::string& cert_file, const std::string& key_file);
/// A client-side TLS context that does not verify the peer (opportunistic STARTTLS to a downstream MTA).
Result<SSL_CTX*> make_client_tls();

/// One connection: read and write descriptors (the same socket, or stdin and stdout), optionally under TLS.
class Conn {
public:
    /// Takes ownership of the descriptors when own is true; they are made non-blocking.
    Conn(int rfd, int wfd, bool own);
    ~Conn();
    Conn(const Conn&) = delete;
    Conn& operator=(const Conn&) = delete;

    /// Reads up to n octets before the deadline: the count, 0 at end of input; kind tempfail on a timeout
    /// (text "timeout") or an error.
    Result<std::size_t> read(char* buf, std::size_t n, Deadline d);
    /// Writes everything before the deadline; kind tempfail otherwise.
    Result<void> write(std::string_view data, Deadline d);
    /// True when input is waiting (for the pre-greeting check), waiting at most until d.
    bool readable(Deadline d);
    /// Runs the TLS handshake as a server (accept) or client (connect) before the deadline.
    Result<void> start_tls(SSL_CTX* ctx, bool server, Deadline d);
    /// True once TLS is on.
    bool tls() const { return ssl_ != nullptr; }
    /// The descriptor read from (the socket, for its addresses).
    int read_fd() const { return rfd_; }
    /// The negotiated protocol and cipher, for Received headers and logs ("" without TLS).
    std::string tls_info() const;

private:
    bool wait(int fd, short events, Deadline d);
    int rfd_, wfd_;
    bool own_;
    SSL* ssl_ = nullptr;
};

/// Time limits of a server session.
struct SessionTimes {
    std::chrono::milliseconds greet_delay{0};        ///< wait this long before the greeting; talk meanwhile is refused (0: no check)
    std::chrono::milliseconds command_timeout{300000};  ///< from one reply to the next command (RFC 5321 §4.5.3.2.7)
    std::chrono::milliseconds session_time{1800000};    ///< a whole session
    std::size_t min_data_rate = 1024;                  ///< octets a second during DATA, after a grace period
    std::chrono::milliseconds data_grace{10000};       ///< the rate is not enforced before this
};

/// Drives server over conn until the session ends: the greeting, reads, replies (flushed once the input
/// at hand is processed, so pipelined commands are answered together), STARTTLS, and the time limits
/// (421 when one is passed). stop, when set, ends the session with 421 at the next wake-up.
void run_smtp_session(Conn& conn, SmtpServer& server, const SessionTimes& times, SSL_CTX* tls,
                      const std::atomic<bool>* stop = nullptr);

} // namespace mail
