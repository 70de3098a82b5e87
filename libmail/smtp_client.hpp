// An SMTP client for handing messages on (RFC 5321): to the real MTA behind
// the proxy, or to a smart host. One connection, any number of
// transactions; every step under a deadline; the message is dot-stuffed on
// the way out, with every line ending sent as CRLF.
#pragma once
#include "libmail/error.hpp"
#include "libmail/net.hpp"
#include "libmail/smtp_server.hpp"

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace mail {

class Conn;

/// The outcome of one transaction.
struct SendResult {
    bool accepted = false;  ///< the server answered 250 to the end of data
    SmtpReply reply;        ///< the reply that decided it (the failing one, or the final 250)
    std::string stage;      ///< where it failed: connect, greeting, ehlo, mail, rcpt, data, end; "" when accepted
};

/// Produces the message: calls write for each piece, in order.
using MessageSource = std::function<Result<void>(const std::function<Result<void>(std::string_view)>& write)>;

/// A client session with one server.
class SmtpClient {
public:
    /// Connects to hp and says EHLO helo (HELO when EHLO is refused); kind tempfail with the reason when
    /// the server cannot be reached or refuses the session (the reply, if any, in last_reply()).
    static Result<std::unique_ptr<SmtpClient>> open(const HostPort& hp, const std::string& helo,
                                                    std::chrono::milliseconds timeout);
    ~SmtpClient();
    /// One transaction: MAIL, every RCPT (all must be accepted, else RSET and the refusal is returned), DATA,
    /// the message, the final reply. A lost connection or timeout is kind tempfail.
    Result<SendResult> send(const std::string& sender, const std::vector<std::string>& rcpts,
                            const MessageSource& message);
    /// True when the connection cannot carry another transaction (it must be closed).
    bool dead() const { return dead_; }
    /// Says QUIT (best effort).
    void quit();
    /// Whether the server advertised an EHLO keyword (upper case, e.g. "PIPELINING", "SOURCE").
    bool has_extension(std::string_view keyword) const;
    /// Sends one command line and reads the reply (for extensions such as SOURCE/GET).
    Result<SmtpReply> command(std::string_view line);
    /// Reads one reply.
    Result<SmtpReply> read_reply();
    /// The connection, for extensions that read raw data.
    Conn& conn() { return *conn_; }
    /// The deadline for the next step.
    Deadline deadline() const;

private:
    SmtpClient(std::unique_ptr<Conn> c, std::chrono::milliseconds timeout);
    std::unique_ptr<Conn> conn_;
    std::chrono::milliseconds timeout_;
    std::string buf_;
    std::vector<std::string> ext_;
    bool dead_ = false;
};

/// Writes data dot-stuffed with CRLF line ends through write, keeping state across calls in at_bol and
/// after_cr; finish_stuffed ends the message ("CRLF.CRLF", adding the line end a last line lacks).
Result<void> write_stuffed(std::string_view data, bool& at_bol, bool& after_cr,
                           const std::function<Result<void>(std::string_view)>& write);
/// The terminator for a message written with write_stuffed.
std::string_view stuffed_terminator(bool at_bol, bool after_cr);

} // namespace mail
