// msmtp-proxy's policy: see proxy.hpp and msmtp-proxy(8).
#include "libmail/daemon/proxy.hpp"

#include "libmail/mail/address.hpp"
#include "libmail/policy/batv.hpp"
#include "libmail/app/context.hpp"
#include "libmail/base/clock.hpp"
#include "libmail/mail/message.hpp"
#include "libmail/policy/password.hpp"
#include "libmail/policy/postage.hpp"
#include "libmail/io/serve.hpp"
#include "libmail/store/store.hpp"
#include "libmail/policy/token.hpp"
#include "libmail/policy/token_issue.hpp"
#include "libmail/policy/user_senders.hpp"
#include "libmail/policy/whitelist.hpp"

#include <openssl/rand.h>

#include <algorithm>
#include <istream>
#include <ostream>
#include <sstream>
#include <streambuf>
#include <thread>

namespace mail {

namespace {

using Clock = std::chrono::steady_clock;

std::string join(const std::vector<std::string>& v, std::string_view sep) {
    std::string o;
    for (const auto& s : v) {
        if (!o.empty()) o += sep;
        o += s;
    }
    return o;
}

std::string first_line(const SmtpReply& r) {
    return std::to_string(r.code) + " " + (r.lines.empty() ? std::string() : r.lines.front());
}

} // namespace

namespace {

// Answers every query "no such name", when a policy names no resolver (unit tests of the other parts).
class NoAnswers : public dns::Resolver {
public:
    dns::Answer query(std::string_view, dns::Type) override {
        dns::Answer a;
        a.status = dns::Status::nxdomain;
        return a;
    }
};

} // namespace

std::unique_ptr<dns::Resolver> no_answers_resolver() { return std::make_unique<NoAnswers>(); }

void check_message_auth(const ProxyPolicy& p, dns::Resolver& resolver, FrontAuth& auth, MessageReader& msg,
                        const Spool& body, const std::string& client, const std::string& helo,
                        const std::string& sender) {
    strip_verdicts(msg, p.authserv_id);
    auth::Checker checker(resolver, p.auth_settings, msg.fields());
    (void)body.each([&](std::string_view piece) -> Result<void> {
        checker.body(piece);
        return {};
    });
    // --spf no: no client, so no SPF here either; a trusted upstream's Authentication-Results count instead.
    auth::Client c = p.spf && !client.empty() ? auth::Client{client_ip(client), helo} : auth::Client{};
    auth.set_results(checker.finish(c, sender, auth.spf_at_mail()));
}

Result<std::string> spool_body_hash(const Spool& body) {
    RelaxedBodyHash hash;
    if (auto r = body.each([&](std::string_view piece) -> Result<void> {
            hash.update(piece);
            return {};
        });
        !r)
        return r.error();
    return hash.finish();
}

GatePolicy gate_policy_of(const ProxyPolicy& p, bool relay_control) {
    GatePolicy g;
    g.delimiter = p.delimiter;
    g.postage = p.postage;
    g.relay_control = relay_control;
    g.refuse_unknown = p.unknown == UnknownMode::reject || p.unknown == UnknownMode::token_postage;
    g.token_postage = p.unknown == UnknownMode::token_postage;
    g.token_ttl = p.token_ttl;
    g.token_limit_network = p.token_limit_network;
    g.token_limit_sender = p.token_limit_sender;
    g.batv = p.batv;
    g.home_domains = p.home_domains;
    return g;
}

bool forwards_stamped(const ProxyPolicy& p, Category c) {
    return p.unknown == UnknownMode::forward && p.forward_stamped &&
           (c == Category::stamped || c == Category::questionable);
}

std::string forward_address(const ProxyPolicy& p, const std::string& deliver_to, const std::string& rcpt) {
    std::string domain = rcpt.substr(rcpt.rfind('@') + 1);
    if (auto f = p.forward_map.find(deliver_to); f != p.forward_map.end()) return f->second;
    if (auto g = p.forward_map.find("@" + domain); g != p.forward_map.end()) return g->second;
    return p.forward_to;
}

Result<std::string> stamp_outgoing(Context& ctx, const ProxyPolicy& p, const std::string& sender,
                                   const std::vector<std::string>& rcpts, const std::string& head, const Spool& body,
                                   Spool& stamped) {
    StampOptions so;
    so.sender = sender;
    so.rcpts = rcpts;
    so.kind = p.stamp;
    so.bits = p.stamp_bits;
    so.whitelist_scope = sender;
    so.banner_text = p.banner ? *p.banner : std::string();  // "": none (not the config's file again)
    SpoolReader in_buf(head, body);
    std::istream in(&in_buf);
    ChunkWriter out_buf([&](std::string_view d) { return stamped.write(d); });
    std::ostream out(&out_buf);
    std::ostringstream err;
    auto rc = stamp_message(ctx, so, in, out, err);
    out.flush();
    std::string e = err.str();
    if (!e.empty() && e.back() == '\n') e.pop_back();
    if (!rc) return Error{ErrorKind::tempfail, "stamping failed: " + rc.error().text};
    if (*rc != 0 || !out_buf.status)
        return Error{ErrorKind::tempfail, "stamping failed: " + (out_buf.status ? "exit " + std::to_string(*rc)
                                                                               : out_buf.status.error().text)};
    return e;
}

Result<void> banner_outgoing(std::string_view banner, const std::string& head, const Spool& body, Spool& out) {
    SpoolReader in_buf(head, body);
    std::istream in(&in_buf);
    ChunkWriter out_buf([&](std::string_view d) { return out.write(d); });
    std::ostream os(&out_buf);
    auto r = banner_message(banner, in, os);
    os.flush();
    if (!r) return Error{ErrorKind::tempfail, "banner failed: " + r.error().text};
    if (!out_buf.status) return Error{ErrorKind::tempfail, "banner failed: " + out_buf.status.error().text};
    return {};
}

Result<void> whitelist_outgoing(Store& store, const std::vector<std::string>& rcpts, const std::string& sender,
                                std::int64_t now) {
    auto entries = wl_outgoing_entries(rcpts, sender, now);
    return store.transaction([&]() -> Result<void> {
        for (const auto& e : entries)
            if (auto ins = store.wl_insert(e); !ins) return ins.error();
        return {};
    });
}

ProxySession::ProxySession(const ProxyPolicy& policy, Context& ctx, Store& store, std::string client_address)
    : p_(policy), ctx_(ctx), store_(store),
      lookups_(store, policy.delimiter,
               [this](std::int64_t id, std::int64_t t) {
                   if (p_.hits) {
                       p_.hits->add(id, t);
                       p_.hits->flush(store_, t);
                   } else {
                       (void)store_.wl_hit(id, t);  // a statistic: not worth refusing mail over
                   }
               }),
      look_(lookups_.lookups()), gate_policy_(gate_policy_of(policy, true)), gate_(gate_policy_, look_),
      no_dns_(policy.resolver ? nullptr : no_answers_resolver()),
      auth_(policy.resolver ? *policy.resolver : *no_dns_,
            [this](std::string_view event, std::string_view identity, std::string_view detail) {
                ctx_.logger().log(event == "forged" ? Level::notice : Level::info, event,
                                  {{"client", client_}, {"helo", helo_}, {"sender", facts_.sender.value_or("")},
                                   {"identity", identity}, {"results", detail}});
            }),
      client_(std::move(client_address)) {
    facts_.client = client_;
    look_.auth = &auth_;
    if (p_.source && !p_.submission) source_ = std::make_unique<SourceCommands>(*p_.source, ctx_, store_, client_);
}

ProxySession::~ProxySession() {
    release_tokens();
    if (in_delivery_) in_delivery_->close();
    if (out_delivery_) out_delivery_->close();
}

void ProxySession::release_tokens() {
    // A store error leaves the reservation to expire (limits::token_reservation).
    for (const auto& id : holds_) lookups_.release(id, facts_.holder);
    holds_.clear();
}

void ProxySession::give_back_tokens() {
    for (const auto& id : claimed_) {
        auto g = lookups_.give_back(id);
        ctx_.logger().log(g ? Level::info : Level::err, "token_give_back",
                          {{"client", client_}, {"token", id}, {"error", g ? "" : g.error().text}});
    }
    claimed_.clear();
}

void ProxySession::reset() {
    release_tokens();
    claimed_.clear();
    have_sender_ = false;
    facts_.sender.reset();
    facts_.sender_match.clear();
    facts_.user.clear();
    rcpts_.clear();
    data_.clear();
    auth_.reset();
}

void ProxySession::on_reset() { reset(); }

// Who the relay is told sent the message (handoff.hpp): the client's addresses, its forward-confirmed name
// (looked up once a session, and only when XCLIENT may carry it), HELO, login and protocol as of now.
const RealClient& ProxySession::real_client() {
    real_.peer = client_;
    real_.local = local_;
    if (!named_ && p_.handoff.xclient != XclientMode::no && p_.incoming.kind == DeliveryTarget::Kind::relay) {
        named_ = true;
        std::string ip = client_ip(client_);
        if (!ip.empty()) real_.name = confirmed_name(p_.resolver ? *p_.resolver : *no_dns_, ip, real_.name_temporary);
    }
    real_.helo = helo_;
    real_.esmtp = esmtp_;
    real_.login = server_ && server_->authenticated() ? user_ : std::string();
    return real_;
}

void ProxySession::on_protocol_error(std::string_view what) {
    ctx_.logger().notice("protocol", {{"client", client_}, {"helo", helo_}, {"error", what}});
}

std::vector<std::string> ProxySession::ehlo_keywords() {
    if (!source_) return {};
    return {std::string(source_keyword)};
}

// SOURCE and GET are msourced's (SourceCommands); what is the proxy's is who may give a notice: the
// recipients are those the admission core took at RCPT (a stranger's got its 550 and token address there),
// and they are decided again when the message has been fetched (admit_fetched). Mail of an authenticated
// user goes out by DATA, never by a notice to us.
std::optional<SmtpExtensionReply> ProxySession::on_extension(const SmtpCommand& cmd, const SmtpSessionState& s) {
    if (!source_) return std::nullopt;
    if (cmd.word == "GET") return source_->get(cmd, s, helo_);
    if (cmd.word != "SOURCE") return std::nullopt;
    if (s.in_transaction && std::any_of(rcpts_.begin(), rcpts_.end(), [](const Rcpt& r) { return r.d.outgoing; }))
        return SmtpExtensionReply{SmtpReply(550, "5.7.1 SOURCE is for incoming mail; send yours by DATA"), false, {}};
    std::vector<std::string> rcpts;
    for (const auto& r : rcpts_) rcpts.push_back(r.d.rcpt);
    auto r = source_->source(cmd, s, helo_, facts_.sender.value_or(""), rcpts);
    if (r.reply.code / 100 == 2) reset();  // the reservations go: the fetched message reserves its own
    return r;
}

Result<DeliveryResult> ProxySession::admit_fetched(const SourceIn& s, const HeadSpool& msg, const std::string& mx) {
    DeliveryResult out;
    auto refused = [&](SmtpReply r) {
        out.accepted = false;
        out.reply = std::move(r);
        return out;
    };
    facts_.fetched_from = s.domain;
    fetched_mx_ = mx;
    fetched_id_ = s.id;
    SmtpCommand none;
    // The MX we fetched from stands where a client would: its address for SPF and the log, its name as HELO.
    on_helo(mx.substr(0, mx.rfind(':')), true);
    if (auto m = on_mail(s.sender, none); m.code / 100 != 2) return refused(m);
    std::optional<SmtpReply> first_refusal;
    for (const auto& rcpt : s.rcpts) {
        auto r = on_rcpt("<" + rcpt + ">", none);
        if (r.code / 100 != 2 && !first_refusal) first_refusal = r;
    }
    if (rcpts_.empty()) {
        reset();
        return refused(first_refusal.value_or(SmtpReply(554, "5.5.1 no valid recipients")));
    }
    if (auto d = on_data(); d.code != 354) return refused(d);
    data_.write(msg.head(), limits::header_size);
    if (auto w = msg.body().each([&](std::string_view piece) -> Result<void> {
            data_.write(piece, limits::header_size);
            return {};
        });
        !w)
        return w.error();
    SmtpReply end = on_data_end("");
    out.accepted = end.code / 100 == 2;
    out.reply = end;
    out.where = "msmtp-proxy";
    return out;
}

SmtpReply ProxySession::on_helo(std::string_view domain, bool esmtp) {
    helo_ = std::string(domain);
    esmtp_ = esmtp;
    reset();
    return SmtpReply(250, "OK");
}

std::optional<SmtpReply> ProxySession::on_auth_begin() {
    std::string key = auth_key(client_);
    if (p_.auth.failures <= 0 || key.empty()) return std::nullopt;
    std::int64_t t = now();
    auto n = store_.rate_count(key, t, p_.auth.window, 0);
    if (!n) {
        ctx_.logger().err("store", {{"client", client_}, {"error", n.error().text}});
        return SmtpReply(454, "4.3.0 temporary authentication failure, try again later");
    }
    if (!auth_locked(p_.auth, *n)) return std::nullopt;
    // Refused before any credentials: a good password is refused too, and nothing is hashed.
    ctx_.logger().warning("auth_locked", {{"ip", client_ip(client_)}, {"until", format_time(auth_window_end(p_.auth, t))}});
    return SmtpReply(454, "4.7.0 too many failed logins from your address, try again later");
}

bool ProxySession::on_auth(std::string_view mechanism, std::string_view user, std::string_view password) {
    bool ok = false;
    if (!user.empty() && user.size() <= 256) {
        auto u = store_.user_get(user);
        if (u && *u) ok = verify_password(password, (*u)->hash);
        else {
            // The same cost for an unknown user, so timing does not tell which names exist.
            static const std::string dummy = [] {
                auto h = hash_password("not a password");
                return h ? *h : std::string();
            }();
            (void)verify_password(password, dummy);
        }
    }
    // The password is never logged; fail2ban watches the auth_fail line (auth_failed), not this one.
    ctx_.logger().log(ok ? Level::info : Level::warning, "auth",
                      {{"result", ok ? "ok" : "fail"}, {"client", client_}, {"mechanism", mechanism},
                       {"user", user}, {"password", redact(password)}});
    if (ok) user_ = std::string(user);
    else auth_failed();
    return ok;
}

void ProxySession::auth_failed() {
    std::string key = auth_key(client_);
    if (p_.auth.failures <= 0 || key.empty()) return;
    std::int64_t t = now();
    auto n = store_.rate_count(key, t, p_.auth.window, 1);
    if (!n) {
        ctx_.logger().err("store", {{"client", client_}, {"error", n.error().text}});
        return;
    }
    std::int64_t delay = auth_delay(p_.auth, *n);
    // A fixed line for fail2ban (msmtp-proxy(8)): the event and ip= first, nothing from the client.
    ctx_.logger().warning("auth_fail", {{"ip", client_ip(client_)}, {"failures", *n}, {"delay", delay},
                                        {"limit", p_.auth.failures}});
    if (*n == p_.auth.failures)
        ctx_.logger().warning("auth_lockout", {{"ip", client_ip(client_)}, {"failures", *n},
                                               {"until", format_time(auth_window_end(p_.auth, t))}});
    // The answer waits; the session's slot is the guesser's own (sessions per address are bounded).
    if (delay > 0) std::this_thread::sleep_for(std::chrono::seconds(delay));
}

SmtpReply ProxySession::on_mail(const std::string& sender, const SmtpCommand&) {
    reset();
    facts_.user = server_ && server_->authenticated() ? user_ : std::string();
    if (!set_sender(facts_, sender, p_.trusted_forwarders)) return SmtpReply(553, "5.1.7 bad sender address syntax");
    Decision d = gate_.at_mail(facts_);
    if (d.outcome == Outcome::accept && facts_.user.empty() && p_.spf) {
        // SPF for the MAIL FROM identity (HELO's for the null sender) now: the RCPT decisions need it.
        auth::Client client{client_ip(client_), helo_};
        auth_.set_spf(auth::spf_at_mail(p_.resolver ? *p_.resolver : *no_dns_, client, *facts_.sender, p_.auth_settings));
    }
    if (d.outcome != Outcome::accept) {
        if (d.outcome == Outcome::refuse)
            ctx_.logger().notice("reject", {{"client", client_}, {"helo", helo_}, {"sender", *facts_.sender},
                                            {"user", user_}, {"reason", d.reason}});
        return d.reply;
    }
    auto holder = new_holder();
    if (!holder) return SmtpReply(451, "4.3.0 cannot answer now, try again later");
    facts_.holder = *holder;
    have_sender_ = true;
    started_ = Clock::now();
    return d.reply;
}

SmtpReply ProxySession::refuse(const Decision& d, std::string_view rcpt) {
    ctx_.logger().notice("reject", {{"client", client_},
                                    {"helo", helo_},
                                    {"sender", facts_.sender.value_or("")},
                                    {"rcpt", rcpt},
                                    {"reason", d.reason},
                                    {"token", d.token},
                                    {"reply", first_line(d.reply)}});
    return d.reply;
}

SmtpReply ProxySession::token_refusal(const std::vector<std::string>& rcpts) {
    std::vector<std::string> tokens, why;
    SmtpReply r = gate_.token_refusal(facts_, rcpts, true, tokens, why);
    for (std::size_t i = 0; i < tokens.size(); ++i) {
        Decision d;
        d.reason = why[i];
        d.token = tokens[i];
        d.reply = SmtpReply(550, "5.7.1 unknown sender");
        (void)refuse(d, rcpts[i]);
    }
    return r;
}

// --verify-recipients: an address of a protected domain that does not exist is refused here, before the
// admission core could hand out a token for it (a directory-harvest gift). A token or BATV address is
// checked by the address it stands for. Authenticated users' recipients, other domains and routing forms
// are the core's to judge.
std::optional<SmtpReply> ProxySession::verify_recipient(const std::string& rcpt) {
    if (!p_.verify_recipients || !facts_.user.empty()) return std::nullopt;
    std::string base = rcpt.rfind("prvs=", 0) == 0 ? batv_strip(rcpt) : rcpt;
    if (auto tok = parse_token(base, p_.delimiter)) base = tok->recipient();
    auto at = base.rfind('@');
    if (at == std::string::npos || at == 0) return std::nullopt;
    std::string local = base.substr(0, at);
    if (local.find_first_of("%!@\"") != std::string::npos) return std::nullopt;
    auto domains = look_.site.domains();
    if (!domains || std::find(domains->begin(), domains->end(), base.substr(at + 1)) == domains->end())
        return std::nullopt;
    RecipientAnswer a = p_.verify_recipients->check(base);
    if (a.status == RecipientStatus::known) return std::nullopt;
    Decision d;
    d.rcpt = rcpt;
    if (a.status == RecipientStatus::unknown) {
        d.reason = "unknown recipient";
        d.reply = SmtpReply(550, "5.1.1 <" + rcpt + ">: recipient unknown");
    } else {
        d.reason = "recipient check failed";
        d.reply = SmtpReply(450, "4.1.1 <" + rcpt + ">: cannot verify the recipient now, try again later");
    }
    ctx_.logger().log(a.status == RecipientStatus::unknown ? Level::info : Level::warning, "rcpt_verify",
                      {{"client", client_}, {"rcpt", rcpt}, {"address", base},
                       {"result", a.status == RecipientStatus::unknown ? "unknown" : "tempfail"},
                       {"cached", a.cached ? "yes" : "no"}, {"detail", a.detail}});
    return refuse(d, rcpt);
}

SmtpReply ProxySession::on_rcpt(const std::string& path, const SmtpCommand&) {
    if (!have_sender_) return SmtpReply(503, "5.5.1 need MAIL before RCPT");
    auto a = parse_path(path);
    if (!a || a->empty() || a->domain.empty()) {
        Decision d;
        d.reason = "syntax";
        d.reply = SmtpReply(501, "5.1.3 bad recipient address syntax");
        return refuse(d, path);
    }
    std::string rcpt = normalize_address(*a);
    if (std::any_of(rcpts_.begin(), rcpts_.end(), [&](const Rcpt& o) { return o.d.rcpt == rcpt; })) {
        return SmtpReply(250, "2.1.5 OK (duplicate)");
    }
    if (auto v = verify_recipient(rcpt)) return *v;
    Decision d = gate_.at_rcpt(facts_, rcpt);
    if (d.hold && std::find(holds_.begin(), holds_.end(), d.hold->id) == holds_.end()) holds_.push_back(d.hold->id);
    if (d.busy) ctx_.logger().notice("token_busy", {{"client", client_}, {"sender", *facts_.sender}, {"rcpt", rcpt}});
    if (d.outcome == Outcome::refuse) return refuse(d, d.reason == "routing form" ? path : rcpt);
    if (d.outcome == Outcome::tempfail) {
        ctx_.logger().warning("tempfail", {{"client", client_}, {"sender", facts_.sender.value_or("")}, {"rcpt", rcpt},
                                           {"reason", d.reason}});
        return d.reply;
    }

    Rcpt r;
    r.v.category = d.category;
    r.v.reason = d.reason;
    r.v.hashcash = r.v.postage = "none";
    bool unknown = d.outcome == Outcome::provisional && d.category == Category::unknown;
    if (unknown && p_.unknown == UnknownMode::forward) {
        std::string to = forward_address(p_, d.deliver_to, rcpt);
        if (to.empty()) {
            d.reason = "no forward address";
            d.reply = SmtpReply(550, "5.7.1 <" + rcpt + ">: unknown sender");
            return refuse(d, rcpt);
        }
        r.forward_to = to;
    }
    // Postage mode refuses after DATA what its stamps do not admit: that answer is for the whole message, so
    // such recipients and others do not share a transaction; nor do tokens that need a stamp and others.
    // So do recipients whose whitelisted sender's authentication waits for the end of the message in the
    // reject modes (refused then, with a token address, when it does not pass).
    bool reject_mode = p_.unknown == UnknownMode::reject || p_.unknown == UnknownMode::token_postage;
    auto needs_postage = [&](const Decision& x) {
        return (p_.unknown == UnknownMode::postage && x.outcome == Outcome::provisional &&
                x.category == Category::unknown) ||
               (reject_mode && x.auth_pending);
    };
    if (!rcpts_.empty() && (needs_postage(rcpts_.front().d) != needs_postage(d) ||
                            rcpts_.front().d.stamp_for.empty() != d.stamp_for.empty()))
        return SmtpReply(452, "4.5.3 send this recipient in a transaction of its own");
    r.d = std::move(d);
    rcpts_.push_back(std::move(r));
    return SmtpReply(250, "2.1.5 OK");
}

SmtpReply ProxySession::on_data() {
    if (rcpts_.empty()) return SmtpReply(554, "5.5.1 no valid recipients");
    data_.clear();
    return SmtpReply(354, "end data with <CR><LF>.<CR><LF>");
}

void ProxySession::on_data_chunk(std::string_view data) { data_.write(data, limits::header_size); }

std::string ProxySession::received(const std::vector<std::string>& rcpts) const {
    bool tls = server_ && server_->tls_active();
    bool auth = server_ && server_->authenticated();
    std::string proto = esmtp_ ? "ESMTP" : "SMTP";
    if (esmtp_ && tls) proto += "S";
    if (esmtp_ && auth) proto += "A";
    if (!facts_.fetched_from.empty()) proto = "SOURCE/GET";
    unsigned char id[6];
    if (RAND_bytes(id, sizeof id) != 1) std::fill(std::begin(id), std::end(id), 0);
    std::string ip = client_.substr(0, client_.rfind(':'));
    std::string r = "from " + helo_ + " (" + (ip.empty() ? "unknown" : ip) + ") by " + p_.hostname +
                    " (msmtp-proxy) with " + proto + " id " +
                    hex_encode(std::string_view(reinterpret_cast<char*>(id), sizeof id));
    if (rcpts.size() == 1) r += " for <" + rcpts.front() + ">";
    r += "; " + rfc5322_date(now());
    return r;
}

void ProxySession::log_delivery(const std::vector<Rcpt*>& group, const std::string& cls, const DeliveryResult& r) {
    std::vector<std::string> to;
    for (auto* g : group) to.push_back(g->d.deliver_to);
    auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - started_).count();
    ctx_.logger().info("delivered", {{"client", client_},
                                     {"helo", helo_},
                                     {"sender", facts_.sender.value_or("")},
                                     {"rcpt", join(to, ",")},
                                     {"class", cls},
                                     {"reason", group.front()->v.reason},
                                     {"user", user_},
                                     {"downstream", first_line(r.reply)},
                                     {"where", r.where},
                                     {"size", static_cast<long>(data_.size())},
                                     {"ms", static_cast<long>(ms)}});
}

SmtpReply ProxySession::on_data_end(std::string_view why) {
    Result<SmtpReply> r = Error{ErrorKind::software, ""};
    if (why == "too big") {
        r = SmtpReply(552, "5.3.4 message size exceeds fixed limit");
    } else if (!why.empty()) {
        on_protocol_error("bare CR or LF in message data");
        r = SmtpReply(550, "5.6.0 message refused: bare CR or LF in the data (RFC 5321 section 2.3.8)");
    } else if (data_.head_too_big()) {
        r = SmtpReply(552, "5.3.4 header section too large");
    } else if (data_.failure()) {
        r = Error{ErrorKind::tempfail, "spool write failed"};
    } else {
        try {
            r = rcpts_.front().d.outgoing ? finish_outgoing() : finish_incoming();
        } catch (const std::exception& e) {
            r = Error{ErrorKind::tempfail, std::string("internal error: ") + e.what()};
        }
    }
    SmtpReply out;
    if (!r) {
        ctx_.logger().err("deferred", {{"client", client_}, {"sender", facts_.sender.value_or("")}, {"error", r.error().text}});
        out = SmtpReply(451, "4.3.0 message not accepted, try again later");
    } else {
        out = *r;
    }
    // A one-time token used for a message that was not taken works again.
    if (out.code / 100 != 2) give_back_tokens();
    claimed_.clear();
    reset();
    return out;
}

// The admission core's end-of-message decision for the recipients that waited for it (and the stamps that
// postage-flagged tokens need): a reply when the message is refused, else each recipient's verdict set.
// Every authentication method over the message as received (our own verdict fields stripped first, as a
// sender may have forged them): SPF as found at MAIL, DKIM over the spooled body, ARC, DMARC.
void ProxySession::check_auth(MessageReader& msg) {
    check_message_auth(p_, p_.resolver ? *p_.resolver : *no_dns_, auth_, msg, data_.body(), client_, helo_,
                       facts_.sender.value_or(""));
}

Result<std::optional<SmtpReply>> ProxySession::decide_at_end() {
    std::istringstream hs(data_.head());
    MessageReader msg(hs);
    if (auto h = msg.read_header(); !h) return std::optional<SmtpReply>(SmtpReply(554, "5.6.0 malformed header section"));
    check_auth(msg);
    std::vector<std::string> methods = auth_.results() ? auth_.results()->method_results() : std::vector<std::string>{};
    if (!facts_.fetched_from.empty())
        methods.push_back("x-mailstamp-source=fetched (from the MX of " + facts_.fetched_from + ") smtp.mailfrom=" +
                          facts_.sender.value_or(""));
    for (auto& r : rcpts_) r.v.auth_results = methods;
    bool ask = std::any_of(rcpts_.begin(), rcpts_.end(), [](const Rcpt& r) {
        return r.d.outcome == Outcome::provisional || !r.d.stamp_for.empty();
    });
    if (!ask) return std::optional<SmtpReply>();
    std::vector<Decision> ds;
    for (const auto& r : rcpts_) ds.push_back(r.d);
    // The stamps are bound to the body: its hash, read back from the spool only when there are stamps to check.
    auto body_hash = [&]() { return spool_body_hash(data_.body()); };
    auto e = gate_.at_end(facts_, ds, msg, from_addresses(msg, p_.trusted_forwarders), body_hash);
    if (!e) return e.error();
    if (e->outcome == Outcome::tempfail) {
        ctx_.logger().notice("deferred", {{"client", client_}, {"sender", facts_.sender.value_or("")},
                                          {"reason", e->verdict.reason}});
        return std::optional<SmtpReply>(e->reply);
    }
    if (e->outcome == Outcome::refuse) {
        Decision d;
        d.reason = e->verdict.reason;
        d.reply = e->reply;
        return std::optional<SmtpReply>(refuse(d, rcpts_.front().d.rcpt));
    }
    // The reject modes refuse a whitelisted sender that did not authenticate by the end, as any stranger.
    bool reject_mode = p_.unknown == UnknownMode::reject || p_.unknown == UnknownMode::token_postage;
    std::vector<std::string> refused;
    for (auto& r : rcpts_) {
        if (r.d.outcome != Outcome::provisional) continue;
        r.v = e->verdict;
        r.v.auth_results = methods;
        if (forwards_stamped(p_, r.v.category) && !r.forward_to.empty()) {
            r.d.deliver_to = r.forward_to;
            r.v.reason += ", forwarded to " + r.forward_to + " (forward-stamped)";
            continue;
        }
        if (r.v.category != Category::unknown) continue;
        if (p_.unknown == UnknownMode::postage || (reject_mode && r.d.auth_pending)) refused.push_back(r.d.deliver_to);
        if (!r.forward_to.empty()) {
            r.d.deliver_to = r.forward_to;
            r.v.reason = "not whitelisted, forwarded to " + r.forward_to;
        }
    }
    // Postage mode: what its stamps do not admit is refused, with a token address to resend to.
    if (!refused.empty()) return std::optional<SmtpReply>(token_refusal(refused));
    return std::optional<SmtpReply>();
}

Result<SmtpReply> ProxySession::finish_incoming() {
    if (auto e = decide_at_end(); !e) return e.error();
    else if (*e) return **e;
    if (auto c = claim_tokens(); !c) return c.error();
    else if (*c) return **c;

    // One copy per category (the verdict fields differ).
    std::map<char, std::vector<Rcpt*>> groups;
    for (auto& r : rcpts_) groups[category_letter(r.v.category)].push_back(&r);
    if (!in_delivery_)
        in_delivery_ = make_delivery(p_.incoming, p_.hostname, p_.relay_timeout, p_.relay_pool, p_.handoff);
    const RealClient& sent_by = real_client();
    std::string last;
    for (auto& [letter, group] : groups) {
        std::istringstream hs(data_.head());
        MessageReader msg(hs);
        if (auto h = msg.read_header(); !h) return SmtpReply(554, "5.6.0 malformed header section");
        strip_verdicts(msg, p_.authserv_id);
        add_verdict_fields(msg, group.front()->v, p_.authserv_id);
        // Where the message came from, as msourced says it: fetched from the sender domain's MX, or sent.
        if (!facts_.fetched_from.empty())
            msg.prepend("X-Mailstamp-Source",
                        "verified; domain=" + facts_.fetched_from + "; mx=" + fetched_mx_ + "; id=" + fetched_id_);
        else if (source_)
            msg.prepend("X-Mailstamp-Source", "unverified; received by DATA from " + client_ip(client_));
        if (p_.tag) {
            auto tg = p_.tags.find(letter);
            std::string tag = tg != p_.tags.end() ? tg->second : std::string("[") + letter + "]";
            if (!tag.empty()) msg.tag_subject(tag);
        }
        OutMessage m;
        m.sender = facts_.sender.value_or("");
        for (auto* g : group)
            if (std::find(m.rcpts.begin(), m.rcpts.end(), g->d.deliver_to) == m.rcpts.end())
                m.rcpts.push_back(g->d.deliver_to);
        msg.prepend("Received", received(m.rcpts));
        std::ostringstream hdr;
        if (auto w = msg.write_header(hdr); !w) return w.error();
        // A header that ran into a non-field line: a blank line goes before what follows, and what
        // follows (still in the head) goes on as the start of the body.
        if (msg.separator().empty()) hdr << "\r\n";
        if (auto w = msg.copy_body(hdr); !w) return w.error();
        m.header = hdr.str();
        m.body = &data_.body();
        m.client = &sent_by;
        auto d = in_delivery_->deliver(m);
        if (!d) return d.error();
        if (!d->accepted) {
            ctx_.logger().warning("downstream", {{"client", client_}, {"sender", m.sender},
                                                 {"rcpt", join(m.rcpts, ",")}, {"reply", first_line(d->reply)}});
            if (d->reply.code >= 500)
                return SmtpReply(d->reply.code, "5.0.0 refused downstream: " + first_line(d->reply));
            return SmtpReply(451, "4.4.0 downstream busy, try again later: " + first_line(d->reply));
        }
        log_delivery(group, std::string(1, letter), *d);
        last = first_line(d->reply);
        // A copy went out to this group: its tokens stay used even if a later group's copy is not taken.
        for (auto* g : group)
            if (g->d.hold) claimed_.erase(std::remove(claimed_.begin(), claimed_.end(), g->d.hold->id), claimed_.end());
    }
    claimed_.clear();  // the message is taken: its tokens stay used
    return SmtpReply(250, "2.0.0 OK: delivered (" + last + ")");
}

// Turns this transaction's reservations into uses before the message goes on; a token someone else got to
// first (its reservation here had run out) is a 451: the client's retry gets the 550 with a fresh token.
Result<std::optional<SmtpReply>> ProxySession::claim_tokens() {
    for (const auto& r : rcpts_) {
        if (!r.d.hold || r.v.category != Category::whitelist || r.d.outcome != Outcome::accept) continue;
        TokenRecord rec = *r.d.hold;
        rec.changed = now();
        auto c = lookups_.claim(rec, facts_.holder);
        if (!c) {
            give_back_tokens();
            return c.error();
        }
        if (c->has_value()) {
            give_back_tokens();
            ctx_.logger().notice("token_lost", {{"client", client_}, {"sender", facts_.sender.value_or("")},
                                                {"rcpt", r.d.rcpt}, {"state", to_string(**c)}});
            return std::optional<SmtpReply>(
                SmtpReply(451, "4.7.1 <" + r.d.rcpt + ">: token address in use, try again later"));
        }
        claimed_.push_back(rec.id);
        holds_.erase(std::remove(holds_.begin(), holds_.end(), rec.id), holds_.end());  // the claim ended it
    }
    return std::optional<SmtpReply>();
}

Result<SmtpReply> ProxySession::finish_outgoing() {
    std::int64_t t = now();
    const std::string sender = facts_.sender.value_or("");
    OutMessage m;
    m.sender = sender;
    if (p_.batv) {
        auto key = current_batv_secret(store_, t);
        if (!key) return key.error();
        m.sender = batv_sign(sender, *key, t, p_.batv_days);
    }
    for (const auto& r : rcpts_) m.rcpts.push_back(r.d.deliver_to);
    m.header = "Received: " + received(m.rcpts) + "\r\n";
    Spool stamped;
    if (p_.stamp) {
        auto note = stamp_outgoing(ctx_, p_, sender, m.rcpts, data_.head(), data_.body(), stamped);
        if (!note) return note.error();
        if (!note->empty()) ctx_.logger().info("stamp", {{"user", user_}, {"sender", sender}, {"note", *note}});
        m.body = &stamped;
    } else {
        // The recipients are whitelisted even without stamps: they are people our users write to. Only for
        // the user who wrote (the sender, which on_mail made sure it owns), not for the whole site.
        if (auto w = whitelist_outgoing(store_, m.rcpts, sender, t); !w) return w.error();
        if (p_.banner) {
            if (auto b = banner_outgoing(*p_.banner, data_.head(), data_.body(), stamped); !b) return b.error();
            m.body = &stamped;
        } else {
            m.header += data_.head();
            m.body = &data_.body();
        }
    }
    if (!out_delivery_) {
        DeliveryTarget tgt = p_.incoming;
        if (p_.smarthost) {
            tgt.kind = DeliveryTarget::Kind::relay;
            tgt.relay = *p_.smarthost;
        }
        // The relay is handed the client (and its login); a smart host, someone else's server, is not.
        out_delivery_ = make_delivery(tgt, p_.hostname, p_.relay_timeout,
                                      p_.smarthost ? p_.smarthost_pool : p_.relay_pool,
                                      p_.smarthost ? HandoffPolicy{XclientMode::no, ProxyProtocol::none} : p_.handoff);
    }
    m.client = &real_client();
    auto d = out_delivery_->deliver(m);
    if (!d) return d.error();
    std::vector<Rcpt*> group;
    for (auto& r : rcpts_) group.push_back(&r);
    if (!d->accepted) {
        ctx_.logger().warning("downstream", {{"client", client_}, {"sender", sender}, {"user", user_},
                                             {"rcpt", join(m.rcpts, ",")}, {"reply", first_line(d->reply)}});
        if (d->reply.code >= 500) return SmtpReply(d->reply.code, "5.0.0 refused by the smart host: " + first_line(d->reply));
        return SmtpReply(451, "4.4.0 smart host busy, try again later: " + first_line(d->reply));
    }
    log_delivery(group, "out", *d);
    return SmtpReply(250, "2.0.0 OK: sent (" + first_line(d->reply) + ")");
}

} // namespace mail
