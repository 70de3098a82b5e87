// mchallenge's digest: see challenge_digest.hpp.
#include "libmail/tool/challenge_digest.hpp"

#include "libmail/base/clock.hpp"
#include "libmail/base/duration.hpp"
#include "libmail/base/text.hpp"
#include "libmail/mail/address.hpp"
#include "libmail/mail/digest_mail.hpp"
#include "libmail/policy/token.hpp"

#include <algorithm>
#include <map>
#include <ostream>

namespace mail {

namespace {

// How long the digest's own envelope sender is recognised when the digest comes back (it may sit in a queue).
constexpr std::int64_t digest_from_life = 7 * 86400;

std::string category_of(const Held& h) {
    switch (h.state) {
    case HeldState::pending: return "Unknown [B], challenged";
    case HeldState::quiet: return "Unknown [B], held quietly";
    default: return "Unknown [B], not challenged yet";
    }
}

std::string why_of(const Held& h) {
    if (h.state == HeldState::quiet) return h.note.empty() ? "not challenged" : h.note;
    if (h.state == HeldState::pending)
        return "sender not known; challenge sent " + format_time(h.challenged) + ", not answered";
    return "sender not known";
}

// A token address for recipient, bound to it as sender, used once, until expires: its address and payload.
Result<std::pair<std::string, std::string>> issue(Store& store, const ChallengeSetup& s, const std::string& rcpt,
                                                  std::uint8_t flags, std::int64_t expires, std::int64_t t) {
    TokenRequest r{rcpt, flags, expires, (flags & token_flag::sender) ? rcpt : "", s.delimiter};
    auto a = issue_token(store, r, t);
    if (!a) return a.error();
    auto p = parse_token(*a, s.delimiter);
    if (!p) return Error{ErrorKind::software, "issued token does not parse"};
    return std::make_pair(*a, p->payload);
}

// One digest for rcpt listing rows.
Result<void> send_one(Context& ctx, const ChallengeSetup& s, Store& store, const std::string& rcpt,
                      const std::vector<Held>& rows, std::int64_t t) {
    DigestMail m;
    m.id = random_id();
    if (m.id.empty()) return Error{ErrorKind::tempfail, "random source failed"};
    m.recipient = rcpt;
    m.hostname = s.hostname;
    m.date = t;
    const std::uint8_t reply_flags = token_flag::once | token_flag::sender;
    std::vector<DigestToken> tokens;
    std::int64_t soonest = INT64_MAX, latest = t;
    auto add = [&](DigestAction a, std::vector<std::string> held, std::int64_t expires) -> Result<std::string> {
        auto tok = issue(store, s, rcpt, a == DigestAction::from ? 0 : reply_flags, expires, t);
        if (!tok) return tok.error();
        tokens.push_back(DigestToken{tok->second, a, rcpt, std::move(held), m.id, expires, 0});
        return tok->first;
    };
    for (const auto& h : rows) {
        DigestEntry e;
        e.id = h.id;
        e.sender = h.sender;
        e.subject = h.subject;
        e.received = h.received;
        e.size = h.size;
        e.category = category_of(h);
        e.why = why_of(h);
        std::int64_t exp = std::max(h.expires, t + 3600);
        soonest = std::min(soonest, exp);
        latest = std::max(latest, exp);
        auto r = add(DigestAction::release, {h.id}, exp);
        if (!r) return r.error();
        e.release = *r;
        if (!h.sender.empty()) {
            auto w = add(DigestAction::whitelist, {h.id}, exp);
            if (!w) return w.error();
            e.whitelist = *w;
        }
        m.entries.push_back(std::move(e));
    }
    std::vector<std::string> ids;
    for (const auto& h : rows) ids.push_back(h.id);
    auto all = add(DigestAction::all, ids, latest);
    if (!all) return all.error();
    m.all = *all;
    auto from = add(DigestAction::from, {}, t + digest_from_life);
    if (!from) return from.error();
    m.from = *from;
    m.expires = soonest;
    // The addresses are recorded before the digest goes out: a reply can never find its address missing.
    if (auto r = store.digest_add(tokens); !r) return r;
    std::string text = compose_digest(m);
    if (auto r = send_mail(s, m.from, {rcpt}, text); !r) return r;
    ctx.log_event("digest", {{"id", m.id}, {"to", rcpt}, {"entries", static_cast<std::int64_t>(m.entries.size())}});
    return {};
}

std::string from_address(const MessageReader& msg) {
    auto f = msg.get("From");
    if (!f) return "";
    auto l = parse_address_list(*f);
    if (!l || l->size() != 1) return "";
    return normalize_address(l->front());
}

} // namespace

Result<int> send_digests(Context& ctx, const ChallengeSetup& s, Store& store, const std::optional<std::string>& to,
                         const std::optional<std::string>& since, std::ostream& out) {
    std::int64_t t = now();
    std::string only;
    if (to) {
        auto a = parse_path(*to);
        if (!a || a->empty()) return Error{ErrorKind::usage, "--to: not an address"};
        only = normalize_address(*a);
    }
    std::int64_t after = INT64_MIN;
    if (since) {
        auto d = parse_duration(*since);
        if (!d || *d <= 0) return Error{ErrorKind::usage, "--since: " + (d ? std::string("must be positive") : d.error().text)};
        after = t - *d;
    }
    std::map<std::string, std::vector<Held>> by_rcpt;
    auto r = store.held_each(HeldFilter{INT64_MAX, "", {HeldState::held, HeldState::pending, HeldState::quiet}},
                             [&](const Held& h) {
                                 if (h.rcpts.empty() || h.received < after || h.expires <= t) return;
                                 const std::string& rc = h.rcpts.front();  // the one its tokens speak for
                                 if (!only.empty() && rc != only) return;
                                 by_rcpt[rc].push_back(h);
                             });
    if (!r) return r.error();
    if (by_rcpt.empty()) {
        out << "nothing held" << (only.empty() ? "" : " for " + only) << ": no digest sent\n";
        ctx.log_event("digest", {{"sent", std::int64_t{0}}, {"why", "nothing held"}});
        return ex_ok;
    }
    long sent = 0;
    std::optional<Error> first;
    for (const auto& [rc, rows] : by_rcpt) {
        // A digest of a bounded size: the oldest first, up to the limit; the rest wait for the next one.
        std::vector<Held> some(rows.begin(), rows.begin() + static_cast<std::ptrdiff_t>(std::min<std::size_t>(rows.size(), 200)));
        if (auto d = send_one(ctx, s, store, rc, some, t); !d) {
            ctx.logger().warning("digest", {{"to", rc}, {"error", d.error().text}});
            if (!first) first = d.error();
            continue;
        }
        ++sent;
        out << "digest sent to " << rc << ": " << some.size() << (some.size() == 1 ? " message\n" : " messages\n");
    }
    if (first) return *first;
    return ex_ok;
}

Result<DigestReply> digest_reply(Context& ctx, const ChallengeSetup& s, Store& store, HeldQueue& q, Delivery& d,
                                 Envelope& env, const MessageReader& msg, std::int64_t t,
                                 const std::function<Result<bool>()>& authenticated) {
    for (std::size_t i = 0; i < env.rcpts.size(); ++i) {
        const std::string r = env.rcpts[i];  // a copy: env.rcpts may change below
        auto tok = parse_token(r, s.delimiter);
        if (!tok) continue;
        auto g = store.digest_get(tok->payload);
        if (!g) return g.error();
        if (!*g || (*g)->action == DigestAction::from) continue;
        const DigestToken& dt = **g;
        std::string sender = env.sender.value_or("");
        std::string from = from_address(msg);
        auto c = check_token(store, r, sender, false, s.delimiter, t);
        if (!c) return c.error();
        std::string action(to_string(dt.action));
        bool genuine = sender == dt.recipient && from == dt.recipient && c->recipient == dt.recipient &&
                       (c->check == TokenCheck::ok || c->check == TokenCheck::expired);
        std::string_view why = genuine ? "" : "sender";
        if (genuine) {
            auto a = authenticated();
            if (!a) return a.error();
            if (!*a) {
                genuine = false;
                why = "not authenticated";
            }
        }
        if (!genuine) {
            ctx.logger().notice("digest-forged", {{"digest", dt.digest}, {"action", action}, {"sender", scrub(sender, 254)},
                                                  {"from", scrub(from, 254)}, {"check", to_string(c->check)},
                                                  {"why", why}});
            // Judged as mail to the recipient's own address: the digest address lets nobody in by itself.
            for (auto& x : env.rcpts)
                if (x == r) x = dt.recipient;
            return DigestReply::ordinary;
        }
        auto claimed = store.digest_claim(dt.id, t);
        if (!claimed) return claimed.error();
        if (!*claimed) {
            // Read again: a concurrent reply may have used it since it was read above.
            auto again = store.digest_get(dt.id);
            if (!again) return again.error();
            bool used = dt.used != 0 || (*again && (*again)->used != 0);
            ctx.logger().notice(used ? "digest-replay" : "digest-expired",
                                {{"digest", dt.digest}, {"action", action}, {"sender", sender}});
            return DigestReply::response;
        }
        // Used now. A release that cannot be done now gives the address back, so the MTA's retry can.
        auto undo = [&](const Error& e) -> Result<DigestReply> {
            (void)store.digest_unclaim(dt.id, t);
            return e;
        };
        long released = 0;
        for (const auto& id : dt.held) {
            auto h = store.held_find(HeldKey::id, id);
            if (!h) return undo(h.error());
            if (!*h) continue;
            const Held& x = **h;
            if (dt.action == DigestAction::whitelist && !x.sender.empty()) {
                if (auto w = q.whitelist_sender(x.sender, t); !w) return undo(w.error());
                auto n = q.release_from(x.sender, dt.recipient, d, "sender whitelisted from the digest", t);
                if (!n) return undo(n.error());
                released += *n;
                continue;
            }
            auto rel = q.release(x, d, "released from the digest", t);
            if (!rel) return undo(rel.error());
            if (*rel) ++released;
        }
        ctx.log_event("digest-release", {{"digest", dt.digest}, {"action", action}, {"recipient", dt.recipient},
                                         {"released", static_cast<std::int64_t>(released)}});
        return DigestReply::consumed;
    }
    return DigestReply::none;
}

Result<bool> is_our_digest(const ChallengeSetup& s, Store& store, const Envelope& env, std::int64_t t) {
    if (!env.sender || env.sender->empty()) return false;
    auto tok = parse_token(*env.sender, s.delimiter);
    if (!tok) return false;
    auto g = store.digest_get(tok->payload);
    if (!g) return g.error();
    if (!*g || (*g)->action != DigestAction::from) return false;
    if (std::find(env.rcpts.begin(), env.rcpts.end(), (*g)->recipient) == env.rcpts.end()) return false;
    auto c = check_token(store, *env.sender, "", false, s.delimiter, t);
    if (!c) return c.error();
    return c->check == TokenCheck::ok;
}

} // namespace mail
