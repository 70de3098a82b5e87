// An SMTP client for handing messages on (RFC 5321): to the real MTA behind
// the proxy, or to a smart host. One connection, any number of
// transactions; every step under a deadline; the message is dot-stuffed on
// the way out, with every line ending sent as CRLF.
#pragma once
#include "libmail/base/error.hpp"
#include "libmail/io/net.hpp"
#include "libmail/smtp/smtp_data.hpp"
#include "libmail/smtp/smtp_server.hpp"

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
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
    std::vector<SmtpReply> per_rcpt;  ///< LMTP: each recipient's reply after the data, in order
};

/// SMTP, or LMTP (RFC 2033: LHLO, and one reply per recipient after the data).
enum class Dialect { smtp, lmtp };

/// A client session with one server.
class SmtpClient {
public:
    /// Connects to hp, writes preamble (a PROXY protocol header) when not empty, and says EHLO helo (HELO
    /// when EHLO is refused); kind tempfail with the reason when the server cannot be reached or refuses
    /// the session.
    static Result<std::unique_ptr<SmtpClient>> open(const HostPort& hp, const std::string& helo,
                                                    std::chrono::milliseconds timeout,
                                                    std::string_view preamble = {}, Dialect dialect = Dialect::smtp);
    /// The same over the Unix socket at path (LMTP servers such as Dovecot's listen on one).
    static Result<std::unique_ptr<SmtpClient>> open_unix(const std::string& path, const std::string& helo,
                                                         std::chrono::milliseconds timeout, Dialect dialect);
    ~SmtpClient();
    /// One transaction: MAIL, every RCPT (all must be accepted, else RSET and the refusal is returned), DATA,
    /// the message, the final reply. A lost connection or timeout is kind tempfail. LMTP: accepted only when
    /// every recipient's reply is 250; else the reply is the first 4xx, or failing that the first 5xx.
    Result<SendResult> send(const std::string& sender, const std::vector<std::string>& rcpts,
                            const MessageSource& message);
    /// One transaction that gives a SOURCE notice instead of the data (msourced): MAIL and every RCPT as for
    /// send (all must be accepted), then "SOURCE id"; accepted when that is answered 250.
    Result<SendResult> send_source(const std::string& sender, const std::vector<std::string>& rcpts,
                                   const std::string& id);
    /// Reads dot-stuffed message data up to <CRLF>.<CRLF> (a GET reply), unstuffed, into sink. Kind data
    /// when it is over max octets or has a bare CR or LF in reject mode (the rest is still read, so the
    /// connection stays usable); kind tempfail when the connection fails or the data has not ended by until
    /// (the connection is then dead: a peer dripping octets cannot hold the reader).
    Result<void> read_message(BareNewline mode, std::size_t max, Deadline until,
                              const std::function<Result<void>(std::string_view)>& sink);
    /// True when the connection cannot carry another transaction (it must be closed).
    bool dead() const { return dead_; }
    /// Says QUIT (best effort).
    void quit();
    /// Whether the server advertised an EHLO keyword (upper case, e.g. "PIPELINING", "SOURCE").
    bool has_extension(std::string_view keyword) const;
    /// The words after an advertised EHLO keyword (upper case; "XCLIENT NAME ADDR" gives NAME, ADDR), or
    /// nothing when it is not advertised.
    std::optional<std::vector<std::string>> extension_params(std::string_view keyword) const;
    /// Says EHLO helo (HELO when esmtp is false or EHLO is refused) and takes the extensions anew: after
    /// XCLIENT the server starts over. Kind tempfail when refused.
    Result<void> greet(const std::string& helo, bool esmtp);
    /// The client this connection was handed with XCLIENT (RealClient::key(); "" for none).
    const std::string& handed_to() const { return handed_to_; }
    void set_handed_to(std::string key) { handed_to_ = std::move(key); }
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
    static Result<std::unique_ptr<SmtpClient>> start(int fd, const std::string& helo, std::chrono::milliseconds timeout,
                                                     Dialect dialect, std::string_view preamble);
    /// MAIL and the RCPTs, pipelined when offered, then final (when not empty) in the same batch: the
    /// first refusal, or accepted with the reply to final.
    Result<SendResult> envelope(const std::string& sender, const std::vector<std::string>& rcpts,
                                const std::string& final, int final_code);
    std::unique_ptr<Conn> conn_;
    std::chrono::milliseconds timeout_;
    std::string buf_;
    std::vector<std::string> ext_;
    bool dead_ = false;
    std::string handed_to_;
    Dialect dialect_ = Dialect::smtp;
};

} // namespace mail
