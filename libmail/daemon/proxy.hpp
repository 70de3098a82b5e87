// msmtp-proxy's policy (msmtp-proxy(8)): what one SMTP session accepts and
// where it goes. Incoming mail is decided at RCPT: a whitelisted sender, an
// unconditional recipient or a valid token address is accepted; anything
// else is refused with 550 and a fresh one-time token address, marked,
// forwarded, or (postage mode) accepted provisionally and decided by its
// stamps after DATA. Recipients outside the protected domains are relayed
// only for an authenticated client. Accepted mail gets a Received field and
// the verdict fields of mverify, and is answered 250 only once it is
// downstream or on disk.
#pragma once
#include "libmail/policy/auth_limit.hpp"
#include "libmail/io/deliver.hpp"
#include "libmail/base/limits.hpp"
#include "libmail/io/smtp_io.hpp"
#include "libmail/smtp/smtp_server.hpp"
#include "libmail/mail/spool.hpp"
#include "libmail/app/stamp.hpp"
#include "libmail/policy/verify.hpp"

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace mail {

class Context;
class Store;
class StorePool;

/// What happens to mail from unknown senders (--unknown); token_postage: reject, and the resend to the
/// token must carry a hashcash stamp for it.
enum class UnknownMode { reject, mark, forward, postage, token_postage };

/// Whitelist hit counts kept in memory and written in one transaction now and then: a write per message
/// would make every session queue for the store's write lock. Shared by the sessions of one process.
class HitBatch {
public:
    /// Counts one hit on entry id at time now.
    void add(std::int64_t id, std::int64_t now);
    /// Writes the counted hits when due (256 of them, or 2 seconds since the last write), or now when force;
    /// hits that cannot be written stay counted for the next try.
    void flush(Store& store, std::int64_t now, bool force = false);
    /// True when no hits wait to be written.
    bool empty();

private:
    std::mutex m_;
    std::map<std::int64_t, std::pair<std::int64_t, std::int64_t>> pending_;  ///< id -> (hits, last)
    std::size_t count_ = 0;
    std::int64_t last_write_ = 0;
};

/// Writes a HitBatch from a thread of its own every interval, whether or not more hits come, and once more
/// when it stops: hits reach the store within the interval, and only a killed process loses the hits of
/// its last interval.
class HitFlusher {
public:
    /// Starts the thread; its store connections come from pool.
    HitFlusher(std::shared_ptr<HitBatch> hits, StorePool& pool,
               std::chrono::milliseconds interval = std::chrono::seconds(limits::hit_flush_interval));
    /// Stops as stop() does.
    ~HitFlusher();
    HitFlusher(const HitFlusher&) = delete;
    HitFlusher& operator=(const HitFlusher&) = delete;
    /// Ends the thread after a last write of everything counted (idempotent).
    void stop();

private:
    void run();
    void write_now();

    std::shared_ptr<HitBatch> hits_;
    StorePool& pool_;
    std::chrono::milliseconds interval_;
    std::mutex m_;
    std::condition_variable cv_;
    bool stopping_ = false;
    std::thread thread_;
};

/// The resolved settings every session of one listener shares (read-only).
struct ProxyPolicy {
    std::string hostname;
    std::string authserv_id;
    UnknownMode unknown = UnknownMode::reject;
    std::string forward_to;                          ///< forward=ADDR: the default forward address
    std::map<std::string, std::string> forward_map;  ///< recipient or @domain -> address (map file)
    bool tag = true;
    std::map<char, std::string> tags;                ///< category letter -> subject tag ("" = none)
    char delimiter = '+';
    std::int64_t token_ttl = 10 * 86400;            ///< lifetime of the one-time token in a 550
    std::int64_t token_limit_network = limits::token_issue_network;  ///< tokens a day per /24 or /64; 0: no limit
    std::int64_t token_limit_sender = limits::token_issue_sender;    ///< tokens a day per sender; 0: no limit
    PostagePolicy postage;
    bool batv = false;                               ///< sign outgoing senders, refuse unsigned bounces
    int batv_days = 7;
    std::vector<std::string> home_domains;           ///< senders authenticated users may use; empty: the protected domains
    std::vector<std::string> trusted_forwarders;     ///< domains whose SRS wrappers are taken off senders
    bool submission = false;                         ///< AUTH required for everything (the submission listener)
    AuthLimits auth;                                 ///< failed AUTH attempts per client address: delay, lockout
    std::optional<StampKind> stamp;                  ///< postage on outgoing mail; nothing: none
    std::optional<std::string> stamp_bits;
    DeliveryTarget incoming;                         ///< --relay / --maildir / --pickup
    std::optional<HostPort> smarthost;               ///< outgoing mail; default: the relay
    std::chrono::milliseconds relay_timeout{60000};
    SmtpServerConfig smtp;
    SessionTimes times;
    std::shared_ptr<HitBatch> hits;                  ///< whitelist hits to count; none: one write per hit
    std::shared_ptr<SmtpClientPool> relay_pool, smarthost_pool;  ///< kept connections; none: one per session
};

/// The handler behind one session.
class ProxySession : public SmtpHandler {
public:
    /// ctx gives the logger and the stamping settings; store is this session's own connection.
    ProxySession(const ProxyPolicy& policy, Context& ctx, Store& store, std::string client_address);
    ~ProxySession() override;

    /// The server this handler answers for (to ask about TLS and AUTH); set before the session runs.
    void attach(const SmtpServer* server) { server_ = server; }

    SmtpReply on_helo(std::string_view domain, bool esmtp) override;
    SmtpReply on_mail(const std::string& sender, const SmtpCommand& cmd) override;
    SmtpReply on_rcpt(const std::string& rcpt, const SmtpCommand& cmd) override;
    SmtpReply on_data() override;
    void on_data_chunk(std::string_view data) override;
    SmtpReply on_data_end(std::string_view why) override;
    void on_reset() override;
    std::optional<SmtpReply> on_auth_begin() override;
    bool on_auth(std::string_view mechanism, std::string_view user, std::string_view password) override;
    void on_protocol_error(std::string_view what) override;

private:
    /// Why a recipient was taken.
    struct Rcpt {
        std::string addr;        ///< as accepted (normalised)
        std::string deliver_to;  ///< where it goes downstream
        Category category = Category::unknown;
        std::string reason;
        std::optional<TokenRecord> hold;  ///< a one-time token reserved at RCPT, claimed before the message goes on
        std::string stamp_for;   ///< a token with the postage flag: the message needs a hashcash stamp for it
        bool provisional = false;
        bool outgoing = false;
    };

    void auth_failed();
    SmtpReply refuse_rcpt(int code, std::string text, const std::string& rcpt, std::string_view why,
                          std::string_view token = "");
    Result<std::string> token_for(const std::string& rcpt);
    Result<std::string> token_limit();
    Result<std::optional<SmtpReply>> claim_tokens();
    std::optional<SmtpReply> token_stamp_refusal(const MessageReader& msg, std::int64_t now);
    void give_back_tokens();
    void release_tokens();
    SmtpReply token_reply(const std::vector<std::string>& rcpts, bool at_data);
    Result<SmtpReply> finish_incoming();
    Result<SmtpReply> finish_outgoing();
    Result<DeliveryResult> hand_on(Delivery& d, const OutMessage& m);
    std::string received(const std::vector<std::string>& rcpts) const;
    Result<std::vector<std::string>> protected_domains();
    bool home_domain(const std::string& domain);
    void log_delivery(const std::vector<Rcpt*>& group, const std::string& cls, const DeliveryResult& r);
    void reset();

    const ProxyPolicy& p_;
    Context& ctx_;
    Store& store_;
    const SmtpServer* server_ = nullptr;
    std::string client_;
    std::string helo_;
    bool esmtp_ = false;
    std::optional<std::vector<std::string>> domains_;
    std::unique_ptr<Delivery> in_delivery_, out_delivery_;
    // The transaction.
    bool have_sender_ = false;
    std::string sender_;       ///< normalised; "" for <>
    std::string sender_match_; ///< with BATV/SRS tags stripped, for whitelist matching
    std::vector<Rcpt> rcpts_;
    std::string head_;         ///< the header section, until its blank line
    bool head_done_ = false;
    bool head_too_big_ = false;
    Spool body_;
    std::unique_ptr<class RelaxedBodyHash> hash_;
    std::size_t size_ = 0;
    std::chrono::steady_clock::time_point started_;
    std::string user_;         ///< the authenticated user
    std::string holder_;       ///< this session's name on the one-time tokens it reserves
    std::vector<std::string> holds_;    ///< tokens reserved in this transaction
    std::vector<std::string> claimed_;  ///< tokens recorded used for the message being handed on
};

} // namespace mail
