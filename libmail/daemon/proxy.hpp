// msmtp-proxy's sessions (msmtp-proxy(8)): the SMTP front end of the
// admission core (admission.hpp), which decides at MAIL, at RCPT and at the
// end of DATA; this file only carries out what it says: refusals with their
// replies, recipients grouped by category, what --unknown does with mail
// that stays Unknown (refused with a token, marked, forwarded, or refused
// after DATA in postage mode), one-time tokens reserved, claimed and given
// back. Accepted mail gets a Received field and the verdict fields, and is
// answered 250 only once it is downstream or on disk.
#pragma once
#include "libmail/daemon/hit_batch.hpp"
#include "libmail/daemon/source.hpp"
#include "libmail/auth/auth.hpp"
#include "libmail/policy/admission_auth.hpp"
#include "libmail/policy/admission_store.hpp"
#include "libmail/policy/auth_limit.hpp"
#include "libmail/io/deliver.hpp"
#include "libmail/io/recipient_check.hpp"
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
/// token must carry a hashcash stamp for it; quarantine: mmilter only (the MTA's hold queue).
enum class UnknownMode { reject, mark, forward, postage, token_postage, quarantine };

/// The resolved settings every session of one listener shares (read-only).
struct ProxyPolicy {
    std::string hostname;
    std::string authserv_id;
    UnknownMode unknown = UnknownMode::reject;
    std::string forward_to;                          ///< forward=ADDR: the default forward address
    std::map<std::string, std::string> forward_map;  ///< recipient or @domain -> address (map file)
    bool forward_stamped = false;                    ///< forward mode: mail admitted only by its postage (G, Q) too
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
    std::optional<std::string> banner;               ///< the recruitment banner for outgoing mail; nothing: none
    DeliveryTarget incoming;                         ///< --relay / --maildir / --pickup / --deliver
    std::shared_ptr<RecipientCheck> verify_recipients;  ///< before a token is issued; none: every local part exists
    std::optional<HostPort> smarthost;               ///< outgoing mail; default: the relay
    std::chrono::milliseconds relay_timeout{60000};
    HandoffPolicy handoff;                           ///< --xclient, --relay-proxy-protocol: the client handed to the relay
    SmtpServerConfig smtp;
    SessionTimes times;
    std::shared_ptr<HitBatch> hits;                  ///< whitelist hits to count; none: one write per hit
    std::shared_ptr<SmtpClientPool> relay_pool, smarthost_pool;  ///< kept connections; none: one per session
    dns::Resolver* resolver = nullptr;               ///< sender authentication's lookups (the process's resolver)
    auth::Settings auth_settings;                    ///< trusted authserv-ids and ARC sealers, our name
    bool spf = true;                                 ///< evaluate SPF (--spf); no: an MTA in front does
    /// --source: the SOURCE/GET extension on the incoming listener (msourced's commands, its store rows);
    /// none: not offered.
    std::shared_ptr<SourcePolicy> source;
};

/// The admission core's settings for p; relay_control for a front end that decides relaying itself (the proxy;
/// not a milter, where the MTA does).
GatePolicy gate_policy_of(const ProxyPolicy& p, bool relay_control);

/// Forward mode with forward_stamped: whether a stranger's mail of category c (decided at end of message) goes
/// to the forward address too (Stamped, Questionable); Unknown mail goes there in forward mode anyway.
bool forwards_stamped(const ProxyPolicy& p, Category c);

/// Forward mode: where rcpt (deliver_to: its delivery address) goes when it stays Unknown; "" when nowhere.
std::string forward_address(const ProxyPolicy& p, const std::string& deliver_to, const std::string& rcpt);

/// Outgoing mail of user from sender to rcpts: the message (head, then body) stamped as p.stamp says, with
/// p.banner, into stamped; returns stamp_message's note ("" when none). A failure is kind tempfail.
Result<std::string> stamp_outgoing(Context& ctx, const ProxyPolicy& p, const std::string& sender,
                                   const std::vector<std::string>& rcpts, const std::string& head, const Spool& body,
                                   Spool& stamped);

/// Outgoing mail without stamps: the message (head, then body) with banner appended, into out. A failure is
/// kind tempfail.
Result<void> banner_outgoing(std::string_view banner, const std::string& head, const Spool& body, Spool& out);

/// Outgoing mail without stamps: rcpts whitelisted for sender (the user who wrote, not the whole site), now.
Result<void> whitelist_outgoing(Store& store, const std::vector<std::string>& rcpts, const std::string& sender,
                                std::int64_t now);

/// A resolver that answers every query "no such name" (a policy that names none: unit tests of other parts).
std::unique_ptr<dns::Resolver> no_answers_resolver();

/// Every authentication method over msg (head read; our verdict fields under p.authserv_id are stripped from
/// it first, as a sender may have forged them) and body: SPF as found at MAIL (in auth), DKIM, ARC, DMARC;
/// the results go to auth. client: "ip:port" ("" or p.spf off: no SPF here).
void check_message_auth(const ProxyPolicy& p, dns::Resolver& resolver, FrontAuth& auth, MessageReader& msg,
                        const Spool& body, const std::string& client, const std::string& helo,
                        const std::string& sender);

/// The relaxed body hash of body (what stamps are bound to).
Result<std::string> spool_body_hash(const Spool& body);

/// The handler behind one session.
class ProxySession : public SmtpHandler {
public:
    /// ctx gives the logger and the stamping settings; store is this session's own connection.
    ProxySession(const ProxyPolicy& policy, Context& ctx, Store& store, std::string client_address);
    ~ProxySession() override;

    /// The server this handler answers for (to ask about TLS and AUTH); set before the session runs.
    void attach(const SmtpServer* server) { server_ = server; }
    /// The address the client connected to (local_address), for the PROXY header to the relay.
    void set_local_address(std::string local) { local_ = std::move(local); }

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
    std::vector<std::string> ehlo_keywords() override;
    std::optional<SmtpExtensionReply> on_extension(const SmtpCommand& cmd, const SmtpSessionState& s) override;

    /// A message fetched by GET for the partial row s from mx (HOST:PORT), run through this session as
    /// if mx had sent it by DATA (the admission core at RCPT and at the end, with Facts::fetched_from set),
    /// and delivered with an X-Mailstamp-Source field. The reply as a delivery's: accepted, or why not.
    Result<DeliveryResult> admit_fetched(const SourceIn& s, const HeadSpool& msg, const std::string& mx);

private:
    /// Why a recipient was taken.
    struct Rcpt {
        Decision d;              ///< the admission core's (deliver_to: where it goes downstream)
        Verdict v;               ///< the category and reason it is delivered under
        std::string forward_to;  ///< forward mode: where it goes if it stays Unknown
    };

    void auth_failed();
    std::optional<SmtpReply> verify_recipient(const std::string& rcpt);
    SmtpReply refuse(const Decision& d, std::string_view rcpt);
    Result<std::optional<SmtpReply>> claim_tokens();
    void give_back_tokens();
    void release_tokens();
    SmtpReply token_refusal(const std::vector<std::string>& rcpts);
    Result<std::optional<SmtpReply>> decide_at_end();
    void check_auth(MessageReader& msg);
    Result<SmtpReply> finish_incoming();
    Result<SmtpReply> finish_outgoing();
    std::string received(const std::vector<std::string>& rcpts) const;
    void log_delivery(const std::vector<Rcpt*>& group, const std::string& cls, const DeliveryResult& r);
    void reset();
    const RealClient& real_client();

    const ProxyPolicy& p_;
    Context& ctx_;
    Store& store_;
    StoreLookups lookups_;
    Lookups look_;
    GatePolicy gate_policy_;
    Gate gate_;
    const SmtpServer* server_ = nullptr;
    std::unique_ptr<dns::Resolver> no_dns_;  ///< when the policy names no resolver (tests of other parts)
    FrontAuth auth_;                          ///< SPF at MAIL, every method at the end of DATA
    std::string client_;
    std::string local_;
    RealClient real_;          ///< the client as handed to the relay (real_client())
    bool named_ = false;       ///< real_.name was looked up
    std::string helo_;
    bool esmtp_ = false;
    std::unique_ptr<Delivery> in_delivery_, out_delivery_;
    // The transaction.
    bool have_sender_ = false;
    Facts facts_;              ///< the sender (normalised; "" for <>), its match form, the user, the holder
    std::vector<Rcpt> rcpts_;
    HeadSpool data_;           ///< the message: its header section in memory, its body spooled
    std::chrono::steady_clock::time_point started_;
    std::string user_;         ///< the authenticated user
    std::vector<std::string> holds_;    ///< tokens reserved in this transaction
    std::vector<std::string> claimed_;  ///< tokens recorded used for the message being handed on
    std::unique_ptr<SourceCommands> source_;  ///< --source: SOURCE and GET as msourced answers them
    std::string fetched_mx_, fetched_id_;     ///< admit_fetched: where the message came from, its id
};

} // namespace mail
