// Where an accepted message goes (msmtp-proxy, and later mchallenge and
// msourced): on over SMTP to a relay, or into a Maildir or a pickup
// directory. A message counts as delivered only when the relay answered 250
// or the file is fsynced and renamed into place: the caller says 250 to its
// own client only then.
#pragma once
#include "libmail/base/error.hpp"
#include "libmail/io/handoff.hpp"
#include "libmail/io/net.hpp"
#include "libmail/io/smtp_client.hpp"

#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace mail {

class Spool;

/// One message to hand on: the envelope, the (edited) header section with its blank line, and the body.
struct OutMessage {
    std::string sender;               ///< "" for <>
    std::vector<std::string> rcpts;
    std::string header;               ///< the header fields and the separator, as they will be written
    const Spool* body = nullptr;
    std::size_t body_offset = 0;      ///< the body starts this far into the spool
    const RealClient* client = nullptr;  ///< who sent it, for a relay that is handed the client (handoff.hpp)
};

/// The result of a delivery that did not fail outright.
struct DeliveryResult {
    bool accepted = false;
    SmtpReply reply;       ///< the downstream reply (relay), or a made-up 250 / 4xx for files
    std::string where;     ///< the file written, or the relay's address
};

/// A place to deliver to.
class Delivery {
public:
    virtual ~Delivery() = default;
    /// Delivers m; kind tempfail when it could not be handed on (nothing was delivered).
    virtual Result<DeliveryResult> deliver(const OutMessage& m) = 0;
    /// Ends any open connection.
    virtual void close() {}
};

/// Open SMTP connections to one server kept between sessions: a connection, EHLO and QUIT per message
/// cost more than the transaction. Connections idle longer than max_idle are closed, not reused.
class SmtpClientPool {
public:
    explicit SmtpClientPool(std::chrono::seconds max_idle = std::chrono::seconds(20), std::size_t max_kept = 32)
        : max_idle_(max_idle), max_kept_(max_kept) {}
    ~SmtpClientPool();
    /// An idle connection, or nothing.
    std::unique_ptr<SmtpClient> take();
    /// Keeps c for the next taker (or says QUIT when the pool is full).
    void give(std::unique_ptr<SmtpClient> c);

private:
    std::chrono::seconds max_idle_;
    std::size_t max_kept_;
    std::mutex m_;
    std::vector<std::pair<std::unique_ptr<SmtpClient>, std::chrono::steady_clock::time_point>> idle_;
};

/// Delivery over SMTP to hp, saying EHLO helo; the connection is kept for the next message, and given to
/// pool (when there is one) at close(). A message's client (OutMessage::client) is handed to the server as
/// handoff says: a PROXY header on the new connection (which then never goes to the pool: it speaks for one
/// client), XCLIENT (again on a kept connection when the client differs). A failed hand-off is kind
/// tempfail, nothing delivered.
std::unique_ptr<Delivery> relay_delivery(HostPort hp, std::string helo, std::chrono::milliseconds timeout,
                                         std::shared_ptr<SmtpClientPool> pool = nullptr,
                                         HandoffPolicy handoff = {XclientMode::no, ProxyProtocol::none});
/// Delivery into the Maildir dir (tmp/, new/ and cur/ are created when missing); LF line ends,
/// with Return-Path and one X-Original-To per recipient on top.
std::unique_ptr<Delivery> maildir_delivery(std::string dir);
/// Delivery into the Maildir dir of the message exactly as given: no fields added, line ends untouched.
std::unique_ptr<Delivery> raw_maildir_delivery(std::string dir);
/// Delivery through a sendmail-compatible program at path: path -i -f SENDER -- RCPT... (no shell); its exit
/// 0 is accepted, 75 (EX_TEMPFAIL) a 4xx, anything else a 5xx.
std::unique_ptr<Delivery> sendmail_delivery(std::string path);
/// Delivery into dir as NAME.eml files, CRLF line ends, with X-Sender and X-Receiver fields on top
/// (the pickup-directory convention).
std::unique_ptr<Delivery> pickup_delivery(std::string dir);

/// Delivery over LMTP (RFC 2033) to hp, or to the Unix socket unix_path when it is not empty: LHLO, the
/// envelope, the message, then one reply per recipient. Accepted only when every recipient's reply is 250;
/// any 4xx (or a lost connection) makes the whole message a temporary failure, else a 5xx refuses it.
std::unique_ptr<Delivery> lmtp_delivery(HostPort hp, std::string unix_path, std::string helo,
                                        std::chrono::milliseconds timeout);
/// Delivery through a program run once per recipient, argv[0] an absolute path (no shell), the message on
/// its standard input; "${sender}" and "${recipient}" in the arguments are replaced (the null sender by "").
/// Exit 0 is accepted; an exit status that sysexits(3) calls permanent (64-70, 72-74, 76-78) refuses the
/// message, anything else (75 EX_TEMPFAIL, 71, 1, a signal, a timeout) is a temporary failure.
std::unique_ptr<Delivery> pipe_delivery(std::vector<std::string> argv);
/// The SMTP reply for a delivery program's exit status (the pipe: rule above).
SmtpReply exit_reply(int status, const std::string& program);

/// Where accepted mail goes.
struct DeliveryTarget {
    enum class Kind { relay, maildir, pickup, sendmail, lmtp, pipe } kind = Kind::relay;
    HostPort relay;                 ///< relay, and lmtp over TCP
    std::string dir;                ///< maildir, pickup; lmtp: the Unix socket's path; sendmail: the program ("" the default)
    std::vector<std::string> argv;  ///< pipe: the program and its arguments, with ${sender} and ${recipient}
};

/// The one parser of delivery targets as written in --deliver and the config: smtp:HOST:PORT, maildir:PATH,
/// pickup:PATH, sendmail or sendmail:PATH, lmtp:HOST:PORT, lmtp:unix:PATH, pipe:/PROGRAM ARGS (split on
/// spaces). Kind usage, saying what is wanted, when malformed.
Result<DeliveryTarget> parse_delivery_target(std::string_view text);
/// The target as written (for logs and errors).
std::string target_text(const DeliveryTarget& t);

/// Builds the Delivery for a target (relay connections kept in pool, when given; the client handed over as
/// handoff says); a sendmail target without a path runs sendmail_path.
std::unique_ptr<Delivery> make_delivery(const DeliveryTarget& t, const std::string& helo,
                                        std::chrono::milliseconds timeout,
                                        std::shared_ptr<SmtpClientPool> pool = nullptr,
                                        HandoffPolicy handoff = {XclientMode::no, ProxyProtocol::none},
                                        const std::string& sendmail_path = "/usr/sbin/sendmail");

/// Writes what source produces into tmp_path (created, mode 0600), fsyncs it, renames it to final_path and
/// fsyncs final_dir: the file is complete in its place, or absent (the temporary one removed).
Result<void> write_atomically(const std::string& tmp_path, const std::string& final_path, const std::string& final_dir,
                              const std::function<Result<void>(const std::function<Result<void>(std::string_view)>&)>& source);

/// Calls fn with the bytes of the file at path, in order, in pieces of up to 64 KiB; stops at fn's first
/// error. A file that cannot be opened or read is kind tempfail.
Result<void> read_file(const std::string& path, const std::function<Result<void>(std::string_view)>& fn);

/// A unique file name for this process and moment: TIME.PID_TID_COUNTER.HOST.
std::string unique_name();

} // namespace mail
