// The admission core: see admission.hpp and mailstamp(7) ADMISSION.
#include "libmail/policy/admission.hpp"

#include "libmail/base/limits.hpp"
#include "libmail/base/text.hpp"
#include "libmail/mail/address.hpp"
#include "libmail/mail/message.hpp"
#include "libmail/policy/batv.hpp"
#include "libmail/policy/hashcash.hpp"
#include "libmail/policy/token_issue.hpp"
#include "libmail/policy/user_senders.hpp"
#include "libmail/policy/whitelist.hpp"

#include <algorithm>

namespace mail {

bool set_sender(Facts& f, const std::string& path, const std::vector<std::string>& trusted_forwarders) {
    if (path.empty() || path == "<>") {
        f.sender = std::string();
        f.sender_match.clear();
        return true;
    }
    auto a = parse_path(path);
    if (!a) return false;
    if (a->empty()) {
        f.sender = std::string();
        f.sender_match.clear();
        return true;
    }
    if (a->domain.empty()) return false;
    f.sender = normalize_address(*a);
    f.sender_match = normalize_address(strip_sender_tags(*a, trusted_forwarders));
    return true;
}

namespace {

const char* const try_later = "4.3.0 cannot answer now, try again later";

Decision tempfail(const std::string& rcpt) {
    Decision d;
    d.outcome = Outcome::tempfail;
    d.rcpt = rcpt;
    d.reply = SmtpReply(451, try_later);
    d.reason = "lookup failed";
    return d;
}

// tempfail, the error that caused it in the reason (logged: a 451 must say why in the log).
Decision tempfail(const std::string& rcpt, const Error& e) {
    Decision d = tempfail(rcpt);
    d.reason += ": " + e.text;
    return d;
}

Decision refuse(const std::string& rcpt, int code, std::string text, std::string reason) {
    Decision d;
    d.outcome = Outcome::refuse;
    d.rcpt = rcpt;
    d.reply = SmtpReply(code, std::move(text));
    d.reason = std::move(reason);
    return d;
}

Decision accept(Decision d, Category c, std::string reason) {
    d.outcome = Outcome::accept;
    d.category = c;
    d.reason = std::move(reason);
    d.reply = SmtpReply(250, "2.1.5 OK");
    return d;
}

// A recipient form that some MTA behind us might route elsewhere: %-hack, bang paths, quoted '@', or anything
// quoted at all (RFC 5321 §3.6 lets a relay refuse these).
bool routing_trick(std::string_view local) { return local.find_first_of("%!@\"\\") != std::string_view::npos; }

std::string local_of(std::string_view addr) {
    auto at = addr.rfind('@');
    return std::string(addr.substr(0, at == std::string_view::npos ? addr.size() : at));
}

std::string domain_of(std::string_view addr) {
    auto at = addr.rfind('@');
    return at == std::string_view::npos ? std::string() : std::string(addr.substr(at + 1));
}

bool listed(const std::vector<std::string>& list, const std::string& item) {
    return std::find(list.begin(), list.end(), item) != list.end();
}

const char* const auth_later = "4.7.0 cannot check the sender's authentication now (DNS), try again later";

Decision auth_tempfail(const std::string& rcpt) {
    Decision d = tempfail(rcpt);
    d.reply = SmtpReply(451, auth_later);
    d.reason = "authentication lookup failed";
    return d;
}

// What the authentication results were, for the log: "spf=fail (good.example) dkim=none dmarc=fail".
std::string summary(const auth::Results* r, const std::optional<spf::Outcome>& spf, const std::string& domain) {
    std::string o = "spf=";
    if (r) {
        o += r->spf_checked || r->spf_mailfrom.result != spf::SpfResult::none || !r->upstream.empty()
                 ? std::string(spf::to_string(r->spf_mailfrom.result))
                 : std::string("not-checked");
        if (!r->spf_mailfrom.domain.empty()) o += " (" + r->spf_mailfrom.domain + ")";
        std::string dk = "none";
        for (const auto& s : r->dkim) {
            if (!iequals(s.domain, domain)) continue;
            dk = std::string(dkim::to_string(s.status));
            if (s.status == dkim::Status::pass) break;
        }
        o += " dkim=" + dk + " (" + domain + ")";
        o += " dmarc=" + std::string(dmarc::to_string(r->dmarc.status));
        if (!r->from_domain.empty()) o += " (" + r->from_domain + ")";
        if (r->arc_trusted) o += " arc=pass (trusted)";
        if (!r->upstream.empty()) o += " upstream=" + r->upstream;
    } else {
        o += spf ? std::string(spf::to_string(spf->result)) : std::string("not-checked");
        if (spf && !spf->domain.empty()) o += " (" + spf->domain + ")";
        o += " dkim,dmarc=pending";
    }
    return o;
}

// The reason a whitelist entry gives.
std::string entry_reason(const WlEntry& e, const std::string& sender, const std::string& rcpt) {
    return e.kind == WlKind::recipient ? "recipient " + rcpt + " takes all mail"
                                       : "sender " + sender + " is whitelisted";
}

} // namespace

Decision Gate::at_mail(const Facts& f) {
    Decision d;
    d.outcome = Outcome::accept;
    d.reply = SmtpReply(250, "2.1.0 OK");
    if (f.user.empty()) return d;
    std::string sender = f.sender.value_or("");
    if (sender.empty()) return refuse("", 553, "5.7.1 authenticated users send with a sender address", "null sender");
    std::vector<std::string> home = p_.home_domains;
    if (home.empty()) {
        auto dom = l_.site.domains();
        if (!dom) return tempfail("", dom.error());
        home = std::move(*dom);
    }
    std::string denied = "5.7.1 <" + sender + ">: sender address not owned by user " + f.user;
    if (!listed(home, domain_of(sender))) return refuse("", 553, denied, "sender not in the home domains");
    // A user sends only as the addresses it owns: one stolen password must not send as everybody.
    auto owned = l_.site.senders_of(f.user);
    if (!owned) return tempfail("", owned.error());
    if (!*owned || !may_send_as(**owned, sender)) return refuse("", 553, denied, "sender not owned by the user");
    return d;
}

Gate::AuthCheck Gate::authenticate(const Facts& f, const WlEntry& e, const std::string& identity, bool on_from) {
    using K = AuthCheck::Kind;
    AuthCheck out;
    if (!l_.auth || e.auth == WlAuth::none || e.kind == WlKind::recipient) return out;
    const std::string dom = lower(domain_of(identity));
    const auth::Results* r = l_.auth->results();
    std::optional<spf::Outcome> spf = r ? std::optional<spf::Outcome>(r->spf_mailfrom) : l_.auth->spf_at_mail();

    // The passes that speak for dom. An SPF pass is for the envelope sender's domain: for a From match it
    // counts when that is the From domain itself (aligned, strictly). A DKIM pass is for d= equal to dom.
    // A DMARC pass (or a trusted ARC chain saying so) is for the single From domain, so it speaks for dom
    // only when that is dom.
    bool spf_ok = r ? r->spf_pass(dom) : (spf && spf->result == spf::SpfResult::pass && iequals(spf->domain, dom));
    bool dkim_ok = r && r->dkim_pass(dom);
    bool dmarc_ok = r && r->dmarc_pass() && iequals(r->from_domain, dom);
    // A body fetched by GET from an MX of dom (our lookup, our connection) came from dom's own servers: for
    // the entries an SPF pass satisfies, it does too; aligned the same way for a From match.
    bool fetched_ok = !f.fetched_from.empty() && iequals(f.fetched_from, dom);
    (void)on_from;  // the rules differ only in which identity dom is (mailstamp(7) ADMISSION)
    auto pass = [&](const char* m) {
        out.kind = K::pass;
        out.method = m;
        if (std::string_view(m) == "dmarc pass" && r && r->dmarc.status != dmarc::Status::pass && r->arc_trusted)
            out.method = "arc pass (sealed by " + r->arc.sealer + ")";
        if (std::string_view(m) == "fetched") out.method = "fetched from the MX of " + dom;
        return out;
    };
    switch (e.auth) {
    case WlAuth::spf:
        if (spf_ok) return pass("spf pass");
        if (fetched_ok) return pass("fetched");
        break;
    case WlAuth::dkim:
        if (dkim_ok) return pass("dkim pass");
        break;
    case WlAuth::dmarc:
        if (dmarc_ok) return pass("dmarc pass");
        break;
    default:
        if (spf_ok) return pass("spf pass");
        if (dkim_ok) return pass("dkim pass");
        if (dmarc_ok) return pass("dmarc pass");
        if (fetched_ok) return pass("fetched");
        break;
    }
    out.detail = summary(r, spf, dom);
    auto forged = [&] {
        out.kind = K::forged;
        l_.auth->note("forged", identity, std::string(to_string(e.auth)) + " entry " + wl_entry_text(e) + ": " + out.detail);
        return out;
    };
    auto temporary = [&] {
        out.kind = K::tempfail;
        return out;
    };
    // auto: a domain that publishes nothing (no SPF, no DMARC, no signature on this message) cannot
    // authenticate; its hit counts unauthenticated. Anything it publishes must pass.
    auto unauthenticated = [&]() -> std::optional<AuthCheck> {
        if (e.auth != WlAuth::automatic) return std::nullopt;
        if (r)
            for (const auto& s : r->dkim)
                if (iequals(s.domain, dom) && s.status != dkim::Status::none) return std::nullopt;
        auth::Publishes p = l_.auth->publishes(dom);
        if (p.temporary) return temporary();
        if (p.spf || p.dmarc) return std::nullopt;
        // No method authenticated it, so the reason names none (the log line says unauthenticated_hit).
        out.kind = K::unauthenticated;
        l_.auth->note("unauthenticated_hit", identity, out.detail);
        return out;
    };

    if (!r) {
        // At RCPT only SPF is known. An spf entry is decided now; the others may still pass by DKIM or DMARC
        // at the end of the message, so the recipient waits for it (pending) unless the domain publishes
        // nothing at all.
        if (e.auth == WlAuth::spf) {
            if (spf && spf->result == spf::SpfResult::temperror) return temporary();
            if (spf) return forged();
            out.kind = K::pending;
            return out;
        }
        if (spf && spf->result == spf::SpfResult::temperror) {
            out.kind = K::pending;  // the end of the message decides: a DKIM pass, else temporary
            return out;
        }
        if (auto u = unauthenticated()) return *u;
        out.kind = K::pending;
        return out;
    }

    // Every result is known. A temporary failure where it matters is a retry, never a verdict.
    bool temp = false;
    switch (e.auth) {
    case WlAuth::spf: temp = r->spf_mailfrom.result == spf::SpfResult::temperror; break;
    case WlAuth::dkim:
        for (const auto& s : r->dkim)
            if (iequals(s.domain, dom) && s.status == dkim::Status::temperror) temp = true;
        break;
    default: temp = r->temporary(); break;
    }
    if (temp) return temporary();
    if (auto u = unauthenticated()) return *u;
    return forged();
}

ChallengeAuth Gate::challenge(const Facts& f) {
    if (!l_.auth) return ChallengeAuth::send;
    const std::string dom = lower(domain_of(f.sender_match));
    if (dom.empty()) return ChallengeAuth::quiet;
    const auth::Results* r = l_.auth->results();
    std::optional<spf::Outcome> spf = r ? std::optional<spf::Outcome>(r->spf_mailfrom) : l_.auth->spf_at_mail();
    bool spf_ok = spf && spf->result == spf::SpfResult::pass && iequals(spf->domain, dom);
    bool dkim_ok = false;
    if (r)
        for (const auto& s : r->dkim)
            if (s.status == dkim::Status::pass && !s.testing && dmarc::aligned(lower(s.domain), dom, false))
                dkim_ok = true;
    if (spf_ok || dkim_ok) return ChallengeAuth::send;
    if (spf && spf->result == spf::SpfResult::fail) return ChallengeAuth::quiet;
    if (r && r->dmarc.status == dmarc::Status::fail && (r->dmarc.policy == "reject" || r->dmarc.policy == "quarantine"))
        return ChallengeAuth::quiet;
    if (r && r->temporary()) return ChallengeAuth::tempfail;
    // No pass: a challenge only to a domain that publishes nothing, which cannot authenticate at all.
    auth::Publishes p = l_.auth->publishes(dom);
    if (p.temporary) return ChallengeAuth::tempfail;
    return p.spf || p.dmarc ? ChallengeAuth::quiet : ChallengeAuth::send;
}

Decision Gate::at_rcpt(const Facts& f, const std::string& rcpt) {
    Decision d;
    d.rcpt = d.deliver_to = rcpt;
    std::int64_t t = l_.now();
    std::string domain = domain_of(rcpt);
    std::string local = local_of(rcpt);
    bool literal = !domain.empty() && domain.front() == '[';

    if (p_.relay_control && !rcpt.empty() && (routing_trick(local) || (literal && f.user.empty())))
        return refuse(rcpt, 554, "5.7.1 <" + rcpt + ">: relay access denied", "routing form");
    if (!f.user.empty() && !rcpt.empty()) {
        // An authenticated user's mail goes out, local recipients included: to the smart host from a front end,
        // on as the MTA routes it from inside one (which authenticated the user and decides its relaying).
        d.outgoing = true;
        return accept(d, Category::whitelist, "authenticated user " + f.user);
    }
    if (p_.relay_control && !rcpt.empty()) {
        auto dom = l_.site.domains();
        if (!dom) return tempfail(rcpt, dom.error());
        if (literal || !listed(*dom, domain))
            return refuse(rcpt, 554, "5.7.1 <" + rcpt + ">: relay access denied", "relay");
    }

    std::string base = rcpt;  // the recipient a token stands for
    auto tok = rcpt.empty() ? std::nullopt : parse_token(rcpt, p_.delimiter);
    if (tok) base = tok->recipient();
    std::string match_rcpt = rcpt;
    if (rcpt.rfind("prvs=", 0) == 0) match_rcpt = d.deliver_to = batv_strip(rcpt);

    bool null_sender = f.sender && f.sender->empty();
    if (null_sender && p_.batv && !rcpt.empty()) {
        // A bounce must come back to an address we signed, else it is backscatter.
        auto keys = l_.site.batv_keys();
        if (!keys) return tempfail(rcpt, keys.error());
        BatvCheck c = batv_check(rcpt, *keys, t);
        if (c != BatvCheck::ok)
            return refuse(rcpt, 550, "5.7.1 <" + rcpt + ">: bounce to an address we never sent from (" +
                                         std::string(to_string(c)) + ")",
                          "unsigned bounce");
    }

    // The whitelist: the sender (or, with none known, only an unconditional recipient) for the recipient, then
    // for the recipient a token address stands for.
    // A sender entry's hit counts only for an authenticated sender (mailstamp(7) ADMISSION): a forged one is
    // Unknown, one whose authentication the end of the message decides is provisional.
    const std::string& who = f.sender_match;
    for (const std::string* r : {&match_rcpt, &base}) {
        if (r == &base && base == match_rcpt) break;
        auto m = l_.whitelist.match(who, *r);
        if (!m) return tempfail(rcpt, m.error());
        if (!*m || (who.empty() && (*m)->kind != WlKind::recipient)) continue;
        AuthCheck a = authenticate(f, **m, who, false);
        if (a.kind == AuthCheck::Kind::tempfail) return auth_tempfail(rcpt);
        if (a.kind == AuthCheck::Kind::forged) {
            d.unauthenticated = who;
            continue;
        }
        if (r == &base) d.deliver_to = base;
        if (a.kind == AuthCheck::Kind::pending) {
            d.outcome = Outcome::provisional;
            d.category = Category::unknown;
            d.auth_pending = true;
            d.reason = "sender " + who + " is whitelisted, authentication decided at end of message";
            return d;
        }
        l_.whitelist.hit((*m)->id, t);
        std::string why = entry_reason(**m, who, *r);
        if (!a.method.empty()) why += ", " + a.method;
        return accept(d, Category::whitelist, why);
    }

    if (null_sender) {
        // A non-delivery notice: never a token's use (backscatter must not spend one); a whitelisted From may
        // still make it W at end of message.
        d.category = Category::information;
        d.reason = "non-delivery notice";
        return d;
    }
    if (!rcpt.empty() && iequals(local, "postmaster")) {
        // RFC 5321 4.5.1: mail to postmaster is always taken.
        return accept(d, Category::whitelist, "postmaster takes all mail (RFC 5321 4.5.1)");
    }
    if (tok) {
        // A one-time token is reserved for this transaction now, so that of any number of sessions naming it
        // only one gets past; the reservation becomes a use once the message is taken.
        std::optional<TokenRecord> hold;
        auto v = l_.tokens.reserve(rcpt, who, f.holder, t + limits::token_reservation, t, hold);
        if (!v) return tempfail(rcpt, v.error());
        d.hold = hold;
        if (v->check == TokenCheck::ok) {
            d.deliver_to = base;
            if (tok->flags & token_flag::postage) d.stamp_for = rcpt;
            return accept(d, Category::whitelist, "token address " + rcpt);
        }
        d.busy = v->check == TokenCheck::reserved;
    }
    d.deliver_to = base;
    d.reason = "not whitelisted";
    if (p_.refuse_unknown) {
        std::vector<std::string> tokens, why;
        SmtpReply r = token_refusal(f, {base}, false, tokens, why);
        Decision out = refuse(rcpt, r.code, "", r.code == 550 ? "unknown sender" : "lookup failed");
        out.reply = r;
        out.outcome = r.code == 550 ? Outcome::refuse : Outcome::tempfail;
        out.deliver_to = base;
        out.hold = d.hold;
        out.busy = d.busy;
        if (!tokens.empty()) out.token = tokens.front();
        if (!why.empty()) out.reason = why.front();
        return out;
    }
    return d;
}

Result<EndVerdict> Gate::at_end(const Facts& f, const std::vector<Decision>& rcpts, const MessageReader& msg,
                                const std::vector<std::string>& from,
                                const std::function<Result<std::string>()>& body_hash) {
    EndVerdict out;
    Verdict& v = out.verdict;
    v.hashcash = v.postage = "none";
    std::int64_t t = l_.now();

    // Tokens with the postage flag: the message must carry a stamp for each.
    for (const auto& d : rcpts) {
        if (d.stamp_for.empty()) continue;
        HashcashCheck c = token_stamp(msg, d.stamp_for, p_.postage.min_bits, t);
        if (c == HashcashCheck::ok) continue;
        std::string why = c == HashcashCheck::malformed ? "no stamp" : std::string(to_string(c));
        std::string bits = std::to_string(p_.postage.min_bits);
        out.outcome = Outcome::refuse;
        out.verdict.reason = "token postage: " + why;
        out.reply = SmtpReply(550, std::vector<std::string>{
                                       "5.7.1 <" + d.rcpt + "> takes a resend only with a hashcash stamp of " + bits +
                                           " bits for that address",
                                       "5.7.1 in an X-Hashcash field (hashcash -m -b " + bits + " " + d.rcpt +
                                           "); found: " + why});
        return out;
    }

    std::vector<const Decision*> open;
    for (const auto& d : rcpts)
        if (d.outcome == Outcome::provisional) open.push_back(&d);
    if (open.empty()) return out;

    if (l_.auth)
        if (const auth::Results* r = l_.auth->results()) v.auth_results = r->method_results();
    auto temporary = [&] {
        out.outcome = Outcome::tempfail;
        out.reply = SmtpReply(451, auth_later);
        v.category = Category::unknown;
        v.reason = "authentication lookup failed";
        return out;
    };

    // A whitelisted identity that failed authentication, for the reason of an Unknown verdict.
    std::string forged;
    for (const Decision* d : open)
        if (!d->unauthenticated.empty()) forged = d->unauthenticated;
    // A whitelisted sender whose authentication waited for the whole message (SPF did not pass at RCPT).
    for (const Decision* d : open) {
        if (!d->auth_pending) continue;
        const std::string base = d->deliver_to.empty() ? d->rcpt : d->deliver_to;
        for (const std::string* r : {&d->rcpt, &base}) {
            auto m = l_.whitelist.match(f.sender_match, *r);
            if (!m) return m.error();
            if (!*m) continue;
            AuthCheck a = authenticate(f, **m, f.sender_match, false);
            if (a.kind == AuthCheck::Kind::tempfail) return temporary();
            if (a.kind == AuthCheck::Kind::forged) forged = f.sender_match;
            if (a.kind != AuthCheck::Kind::pass && a.kind != AuthCheck::Kind::unauthenticated) continue;
            l_.whitelist.hit((*m)->id, t);
            v.category = Category::whitelist;
            v.reason = entry_reason(**m, f.sender_match, *r);
            if (!a.method.empty()) v.reason += ", " + a.method;
            return out;
        }
    }

    // A whitelisted From address (DESIGN §7), for the recipient or the one its token stands for: it counts
    // only with a DMARC-aligned pass for its domain (or what its entry's requirement says), and only as the
    // message's one author: with several From fields or addresses a signature may cover another one than the
    // whitelisted (RFC 7489 §6.6.1), so an entry that needs authentication is not met.
    const bool one_author = from.size() == 1 && msg.get_all("From").size() == 1;
    for (const Decision* d : open) {
        const std::string base = d->deliver_to.empty() ? d->rcpt : d->deliver_to;
        for (const auto& a : from) {
            if (a == f.sender_match) continue;  // decided at RCPT
            for (const std::string* r : {&d->rcpt, &base}) {
                auto m = l_.whitelist.match(a, *r);
                if (!m) return m.error();
                if (!*m) continue;
                if (!one_author && l_.auth && (*m)->auth != WlAuth::none) {
                    l_.auth->note("forged", a, "one of several From addresses or fields");
                    forged = a;
                    break;
                }
                AuthCheck c = authenticate(f, **m, a, true);
                if (c.kind == AuthCheck::Kind::tempfail) return temporary();
                if (c.kind == AuthCheck::Kind::forged) forged = a;
                if (c.kind != AuthCheck::Kind::pass && c.kind != AuthCheck::Kind::unauthenticated) break;
                l_.whitelist.hit((*m)->id, t);
                v.category = Category::whitelist;
                v.reason = entry_reason(**m, a, *r);
                if (!c.method.empty()) v.reason += ", " + c.method;
                return out;
            }
        }
    }

    if (has_postage(msg)) {
        auto bh = body_hash();
        if (!bh) return bh.error();
        Envelope env;
        env.sender = f.sender_match;
        for (const Decision* d : open) env.rcpts.push_back(d->deliver_to.empty() ? d->rcpt : d->deliver_to);
        if (auto c = check_stamps(l_.spend, msg, env, *bh, p_.postage, t, v); !c) return c.error();
        if (v.category != Category::unknown) return out;
    }
    if (f.sender && f.sender->empty()) {
        v.category = Category::information;
        v.reason = "non-delivery notice";
        return out;
    }
    v.category = Category::unknown;
    v.reason = forged.empty() ? "no postage, not whitelisted"
                              : "no postage, whitelisted " + forged + " did not authenticate";
    return out;
}

// "" when one more token may be handed out to this client and sender; else what is over its limit. Every call
// counts (fixed windows of a day, keys "tok:net:NETWORK" and "tok:snd:SENDER").
Result<std::string> Gate::token_limit(const Facts& f) {
    constexpr std::int64_t day = 86400;
    std::int64_t t = l_.now();
    if (p_.token_limit_network > 0 && !f.client.empty()) {
        std::string net = client_network(f.client);
        auto ok = l_.tokens.rate("tok:net:" + net, t, day, p_.token_limit_network);
        if (!ok) return ok.error();
        if (!*ok) return "network " + net;
    }
    if (p_.token_limit_sender > 0 && !f.sender_match.empty()) {
        auto ok = l_.tokens.rate("tok:snd:" + f.sender_match, t, day, p_.token_limit_sender);
        if (!ok) return ok.error();
        if (!*ok) return "sender " + f.sender_match;
    }
    return std::string();
}

// A token refusal the store could not give: 451, no tokens, and the error as the one reason (logged with the
// decision; a 451 with nothing in the log leaves the admin guessing).
SmtpReply Gate::store_failed(const Error& e, std::vector<std::string>& tokens, std::vector<std::string>& why) {
    tokens.clear();
    why.assign({e.text});
    return SmtpReply(451, try_later);
}

SmtpReply Gate::token_refusal(const Facts& f, const std::vector<std::string>& rcpts, bool at_data,
                              std::vector<std::string>& tokens, std::vector<std::string>& why) {
    std::vector<std::string> lines;
    tokens.clear();
    why.clear();
    std::string bits = std::to_string(p_.postage.min_bits);
    for (const auto& r : rcpts) {
        if (tokens.size() >= 5) break;
        auto over = token_limit(f);
        if (!over) return store_failed(over.error(), tokens, why);
        lines.push_back("5.7.1 <" + r + "> takes mail only from senders it knows.");
        if (!over->empty()) {
            tokens.emplace_back();
            why.push_back("token limit: " + *over);
            lines.push_back("5.7.1 (no more token addresses for you today)");
            continue;
        }
        TokenRequest req;
        req.recipient = r;
        req.flags = token_flag::once;
        if (p_.token_postage) req.flags |= token_flag::postage;
        req.expires = l_.now() + p_.token_ttl;
        req.delimiter = p_.delimiter;
        auto tok = l_.tokens.issue(req, l_.now());
        if (!tok) return store_failed(tok.error(), tokens, why);
        tokens.push_back(*tok);
        why.push_back(at_data ? "no postage" : "unknown sender");
        lines.push_back("5.7.1 To reach " + r + ", please send your message again, once,");
        lines.push_back("5.7.1 to this address: <" + *tok + ">");
        if (p_.token_postage)
            lines.push_back("5.7.1 with a hashcash stamp of " + bits +
                            " bits for that address in an X-Hashcash field (hashcash -m -b " + bits + " " + *tok + ")");
    }
    if (at_data) lines.push_back("5.7.1 (the message carried no valid postage)");
    return SmtpReply(550, lines);
}

namespace {

int rank(Category c) {
    switch (c) {
    case Category::whitelist: return 0;
    case Category::stamped: return 1;
    case Category::questionable: return 2;
    case Category::information: return 3;
    case Category::unknown: break;
    }
    return 4;
}

} // namespace

Result<Verdict> Gate::decide(const Facts& f, const Envelope& env, const MessageReader& msg,
                             const std::function<Result<std::string>()>& body_hash, std::vector<TokenRecord>& holds) {
    std::vector<Decision> ds;
    std::vector<std::string> rcpts = env.rcpts;
    if (rcpts.empty()) rcpts.emplace_back();  // no recipient known: only unscoped entries can match
    auto release_all = [&] {
        for (const auto& d : ds)
            if (d.hold) l_.tokens.release(d.hold->id, f.holder);
    };
    for (const auto& r : rcpts) {
        Decision d = at_rcpt(f, r);
        if (d.outcome == Outcome::tempfail) {
            release_all();
            return Error{ErrorKind::tempfail, (d.reason == "authentication lookup failed" ? "authentication lookup failed for "
                                                                                          : "store lookup failed for ") +
                                                  (r.empty() ? std::string("<>") : r)};
        }
        if (!d.stamp_for.empty() &&
            token_stamp(msg, d.stamp_for, p_.postage.min_bits, l_.now()) != HashcashCheck::ok) {
            // A token handed out by msmtp-proxy --unknown token-postage admits only a message stamped for it;
            // without the stamp it is not used up either.
            if (d.hold) l_.tokens.release(d.hold->id, f.holder);
            d.hold.reset();
            d.stamp_for.clear();
            d.outcome = Outcome::provisional;
            d.category = Category::unknown;
            d.reason = "token postage missing";
        }
        ds.push_back(std::move(d));
    }
    // The best accepted recipient; of whitelisted ones, one that does not use a token up.
    const Decision* best = nullptr;
    for (const auto& d : ds) {
        if (d.outcome != Outcome::accept) continue;
        if (!best || rank(d.category) < rank(best->category) || (best->hold && !d.hold && d.category == best->category))
            best = &d;
    }
    Verdict v;
    v.hashcash = v.postage = "none";
    if (best && best->category == Category::whitelist) {
        v.category = best->category;
        v.reason = best->reason;
        if (l_.auth)
            if (const auth::Results* r = l_.auth->results()) v.auth_results = r->method_results();
    } else {
        auto e = at_end(f, ds, msg, env.from, body_hash);
        if (!e) {
            release_all();
            return e.error();
        }
        if (e->outcome == Outcome::tempfail) {
            release_all();
            return Error{ErrorKind::tempfail, "cannot check the sender's authentication now (DNS)"};
        }
        v = e->verdict;
        if (best && rank(best->category) < rank(v.category)) {
            v.category = best->category;
            v.reason = best->reason;
        } else {
            best = nullptr;
        }
    }
    for (const auto& d : ds) {
        if (!d.hold) continue;
        if (best == &d) holds.push_back(*d.hold);
        else l_.tokens.release(d.hold->id, f.holder);
    }
    return v;
}

TokenHolds::~TokenHolds() {
    for (const auto& r : records_) tokens_.release(r.id, holder_);
    for (const auto& id : claimed_) (void)tokens_.give_back(id);
}

Result<void> TokenHolds::claim(std::int64_t now) {
    while (!records_.empty()) {
        TokenRecord rec = records_.back();
        rec.changed = now;
        auto c = tokens_.claim(rec, holder_);
        if (!c) return c.error();
        if (*c) return Error{ErrorKind::tempfail, "token " + rec.id + " taken by another message, try again later"};
        records_.pop_back();
        claimed_.push_back(rec.id);
    }
    return {};
}

} // namespace mail
