// msourced's job (msourced(8)): the SOURCE/GET reverse-delivery extension.
//
// Sending side: a message is held on disk with one 128-bit id per recipient
// domain; that domain's MX gets MAIL, RCPT and "SOURCE <id>" instead of
// DATA when it advertises SOURCE, and the message by plain DATA when not.
// The held message is served to "GET <id>" within its lifetime, a bounded
// number of times.
//
// Receiving side: a SOURCE notice is recorded as a partial message; a fetch
// pass groups the partial messages by sender domain, connects to that
// domain's MX and GETs each one, and delivers what comes back with a field
// saying where it was fetched from: a body served by the sender domain's
// own MX did not come from a forged domain. Plain DATA is taken too, marked
// unverified.
#pragma once
#include "libmail/io/deliver.hpp"
#include "libmail/io/mx.hpp"
#include "libmail/io/smtp_io.hpp"
#include "libmail/smtp/smtp_server.hpp"
#include "libmail/mail/spool.hpp"

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <iosfwd>
#include <optional>
#include <string>
#include <vector>

namespace mail {

class Context;
class Store;
struct SourceOut;
struct SourceIn;

/// The EHLO keyword of the extension.
inline constexpr std::string_view source_keyword = "SOURCE";

/// A fresh message id: 128 bits from OpenSSL's random source as 32 lower-case hex digits.
std::string make_source_id();
/// True when id is 32 hex digits (either case).
bool valid_source_id(std::string_view id);

/// The resolved settings of msourced (read-only while it runs).
struct SourcePolicy {
    std::string hostname;
    MxMap mx_map;                                    ///< --mx-map overrides
    std::string mx_port = "25";                      ///< the port for hosts found in DNS
    std::chrono::milliseconds timeout{60000};        ///< DNS, connecting, each reply
    dns::Resolver* resolver = nullptr;               ///< MX and address lookups (null: /etc/resolv.conf's servers)
    std::optional<DeliveryTarget> deliver;           ///< where received mail goes; none: refuse to receive
    std::string hold_dir;                            ///< the files of held outgoing messages
    std::int64_t hold_time = 7 * 86400;              ///< a held message is served this long
    std::int64_t partial_time = 5 * 86400;           ///< a partial message is fetched for this long
    std::int64_t max_gets = 5;                       ///< GETs served per id
    std::int64_t get_limit = 600;                    ///< GETs (and SOURCE notices) per client address per window
    std::int64_t rate_window = 60;                   ///< seconds
    std::int64_t fetch_limit = 120;                  ///< GETs we send per sender domain per window
    std::int64_t retry = 300;                        ///< the first retry after a failure; doubled each time
    std::int64_t retry_max = 4 * 3600;
    bool expired_notify = false;                     ///< an expired partial message: deliver a notice (true) or drop it
    std::size_t max_message_size = 64u << 20;
    SmtpServerConfig smtp;
    SessionTimes times;
    std::shared_ptr<SmtpClientPool> relay_pool;      ///< kept connections to --relay
    std::function<void()> wake;                      ///< called after a SOURCE notice is recorded (the fetch thread)
    const std::atomic<bool>* stop = nullptr;         ///< set: passes give their remaining rows back and return
    /// Set: a fetched message is handed to this instead of to deliver (msmtp-proxy --source runs it through
    /// the admission core as DATA mail would be): the message as fetched for row s from mx (HOST:PORT),
    /// the pass's own store; the result as a delivery's (accepted, or the reply that refused it).
    std::function<Result<DeliveryResult>(Context& ctx, Store& store, const SourceIn& s, const HeadSpool& msg,
                                         const std::string& mx)>
        admit;
};

/// The SOURCE and GET commands as msourced answers them, for every session that offers the extension
/// (msourced's own, and msmtp-proxy --source): a notice is recorded as a partial message for the fetch
/// thread, a GET is served from the held messages. One per session.
class SourceCommands {
public:
    SourceCommands(const SourcePolicy& policy, Context& ctx, Store& store, std::string client_address);
    /// SOURCE <id> in the transaction of sender (normalised; "" for <>) to rcpts (the recipients the session
    /// took, normalised), after HELO helo. A positive reply ends the transaction: the caller forgets it.
    SmtpExtensionReply source(const SmtpCommand& cmd, const SmtpSessionState& s, const std::string& helo,
                              const std::string& sender, const std::vector<std::string>& rcpts);
    /// GET <id>, outside a transaction.
    SmtpExtensionReply get(const SmtpCommand& cmd, const SmtpSessionState& s, const std::string& helo);

private:
    Result<bool> rate_ok(std::string_view what);
    std::optional<SmtpReply> check_mx_client(const std::string& domain, const std::string& helo,
                                             const std::string& sender);
    const SourcePolicy& p_;
    Context& ctx_;
    Store& store_;
    std::string client_;
    std::string ip_;
};

/// The handler behind one msourced session: takes SOURCE notices and plain DATA for the protected domains,
/// and answers GET for held outgoing messages.
class SourceSession : public SmtpHandler {
public:
    SourceSession(const SourcePolicy& policy, Context& ctx, Store& store, std::string client_address);
    ~SourceSession() override;
    SmtpReply on_helo(std::string_view domain, bool esmtp) override;
    SmtpReply on_mail(const std::string& sender, const SmtpCommand& cmd) override;
    SmtpReply on_rcpt(const std::string& rcpt, const SmtpCommand& cmd) override;
    SmtpReply on_data() override;
    void on_data_chunk(std::string_view data) override;
    SmtpReply on_data_end(std::string_view why) override;
    void on_reset() override;
    bool on_auth(std::string_view mechanism, std::string_view user, std::string_view password) override;
    void on_protocol_error(std::string_view what) override;
    std::vector<std::string> ehlo_keywords() override;
    std::optional<SmtpExtensionReply> on_extension(const SmtpCommand& cmd, const SmtpSessionState& s) override;

private:
    const SourcePolicy& p_;
    Context& ctx_;
    Store& store_;
    std::string client_;
    std::string ip_;
    std::string helo_;
    std::optional<std::vector<std::string>> domains_;
    std::unique_ptr<Delivery> delivery_;
    bool have_sender_ = false;
    std::string sender_;
    std::vector<std::string> rcpts_;
    HeadSpool data_;
    SourceCommands cmds_;
};

/// What one pass did.
struct SourcePass {
    std::size_t notified = 0;  ///< SOURCE notices accepted by a peer
    std::size_t sent = 0;      ///< messages given by DATA to peers without the extension
    std::size_t fetched = 0;   ///< partial messages fetched and delivered
    std::size_t refused = 0;   ///< refused for good (a notice or a GET answered 5xx)
    std::size_t deferred = 0;  ///< to be tried again
    std::int64_t next_due = 0; ///< the earliest time a row left waiting is due again (0: none waits)
};

/// Holds the message from in for rcpts (one id per recipient domain) and gives each domain's MX its notice
/// at once; a notice that cannot be given now is retried by later passes. Kind data for a message over the
/// size limit, tempfail when it cannot be held.
Result<SourcePass> source_send(const SourcePolicy& p, Context& ctx, Store& store, const std::string& sender,
                               const std::vector<std::string>& rcpts, std::istream& in);
/// One pass: the notices that are due go out, the partial messages that are due are fetched and delivered.
Result<SourcePass> source_pass(const SourcePolicy& p, Context& ctx, Store& store);

/// What expire did.
struct SourceExpiry {
    std::size_t held = 0;      ///< outgoing messages past their lifetime, removed
    std::size_t partial = 0;   ///< partial messages past theirs, dropped or delivered as a notice
    std::size_t notices = 0;   ///< of those, delivered as a notice
};
/// Removes what is past its lifetime.
Result<SourceExpiry> source_expire(const SourcePolicy& p, Context& ctx, Store& store);

/// Writes the queue: held (outgoing) rows and partial (incoming) rows, as text lines or one JSON array.
Result<void> source_queue(Store& store, bool json, std::ostream& out);

} // namespace mail
