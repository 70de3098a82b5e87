// mchallenge: see mchallenge(1).
#include "libmail/tool/challenge_cmd.hpp"

#include "libmail/policy/admission_auth.hpp"
#include "libmail/tool/challenge_digest.hpp"
#include "libmail/tool/challenge_queue.hpp"

#include "libmail/mail/address.hpp"
#include "libmail/policy/challenge.hpp"
#include "libmail/base/clock.hpp"
#include "libmail/io/deliver.hpp"
#include "libmail/mail/dsn.hpp"
#include "libmail/base/duration.hpp"
#include "libmail/base/limits.hpp"
#include "libmail/base/paths.hpp"
#include "libmail/mail/message.hpp"
#include "libmail/policy/postage.hpp"
#include "libmail/io/smtp_client.hpp"
#include "libmail/io/spawn.hpp"
#include "libmail/mail/spool.hpp"
#include "libmail/policy/token.hpp"
#include "libmail/policy/admission_store.hpp"
#include "libmail/policy/verify.hpp"
#include "libmail/app/settings.hpp"
#include "libmail/policy/whitelist.hpp"
#include "libmail/base/text.hpp"

#include <openssl/rand.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <fcntl.h>
#include <fstream>
#include <iostream>
#include <sstream>
#include <sys/stat.h>
#include <unistd.h>

namespace mail {

namespace {

// The note of mail held quietly because its sender did not authenticate (mailstamp(7) ADMISSION): such mail
// is released only by hand (mchallenge release, or whitelist by hand), never because its sender is whitelisted.
constexpr std::string_view unauthenticated_note = "sender not authenticated";


const char* const default_template =
    "Hello,\n"
    "\n"
    "you wrote to ${recipient} on ${date}, with the subject\n"
    "\"${subject}\".\n"
    "\n"
    "${recipient} takes mail only from people it knows, so your message is\n"
    "held for ${hold_time}. To have it delivered, reply to this message, or\n"
    "send any message to <${confirm_address}>. Later mail from you will then\n"
    "go through at once.\n"
    "\n"
    "If you did not write that message, somebody used your address: please\n"
    "ignore this one. Nothing more will be sent to you about it.\n"
    "\n"
    "The header of the held message:\n"
    "\n"
    "${headers}";

Result<std::string> read_small_file(const std::string& path, std::size_t max) {
    std::ifstream f(path, std::ios::binary);
    if (!f) return Error{ErrorKind::noinput, path + ": cannot read"};
    std::string text;
    char buf[4096];
    while (f.read(buf, sizeof buf) || f.gcount() > 0) {
        text.append(buf, static_cast<std::size_t>(f.gcount()));
        if (text.size() > max) return Error{ErrorKind::config, path + ": too large"};
    }
    return text;
}

Result<ChallengeSetup> setup_of(const Context& ctx, const ChallengeOptions& opt) {
    const Settings& st = ctx.settings();
    ChallengeSetup s;
    s.hold_dir = st.get(opt.hold_dir, nullptr, "hold-dir", st.data_dir(ctx.db_path()) + "/held").value;
    auto ht = st.duration(opt.hold_time, nullptr, "hold-time", 14 * 86400);
    if (!ht) return ht.error();
    if (*ht <= 0) return Error{opt.hold_time ? ErrorKind::usage : ErrorKind::config, "hold-time must be positive"};
    s.hold_time = *ht;
    Setting q = st.get(opt.quota, nullptr, "quota", "3");
    auto [p, ec] = std::from_chars(q.value.data(), q.value.data() + q.value.size(), s.quota);
    if (ec != std::errc() || p != q.value.data() + q.value.size() || s.quota < 0)
        return Error{opt.quota ? ErrorKind::usage : ErrorKind::config, q.origin + ": quota must be a number"};
    Setting un = st.get(std::nullopt, nullptr, "unchallenged", "hold");
    if (un.value != "hold" && un.value != "deliver")
        return Error{ErrorKind::config, un.origin + ": unchallenged must be hold or deliver"};
    s.deliver_unchallenged = un.value == "deliver";
    if (auto t = st.find(opt.template_file, nullptr, "template")) {
        auto text = read_small_file(t->value, 64 * 1024);
        if (!text) return text.error();
        s.tmpl = *text;
    } else if (auto text = read_small_file(std::string(paths::pkgdata_dir) + "/challenge.txt", 64 * 1024)) {
        s.tmpl = *text;
    } else {
        s.tmpl = default_template;
    }
    s.deliver_spec = st.get(opt.deliver, nullptr, "deliver", "").value;
    s.hostname = st.get(opt.hostname, nullptr, "hostname", host_name()).value;
    auto id = resolve_authserv_id(ctx, std::nullopt, s.hostname);
    if (!id) return id.error();
    s.authserv_id = *id;
    if (auto r = st.find(opt.relay, nullptr, "relay")) {
        auto hp = parse_host_port(r->value);
        if (!hp) return Error{opt.relay ? ErrorKind::usage : ErrorKind::config, r->origin + ": " + hp.error().text};
        s.relay = *hp;
    }
    s.sendmail = st.get(opt.sendmail, nullptr, "sendmail", "/usr/sbin/sendmail").value;
    s.deliver_sendmail = st.get(std::nullopt, nullptr, "deliver-sendmail", "/usr/sbin/sendmail").value;
    auto delim = resolve_delimiter(ctx);
    if (!delim) return delim.error();
    s.delimiter = *delim;
    auto fwd = resolve_trusted_forwarders(ctx, opt.trusted_forwarders);
    if (!fwd) return fwd.error();
    s.trusted_forwarders = std::move(*fwd);
    auto pp = resolve_postage_policy(ctx, std::nullopt, {}, std::nullopt, std::nullopt);
    if (!pp) return pp.error();
    s.postage = std::move(*pp);
    auto tag = resolve_switch(ctx, opt.tag, "tag", true);
    if (!tag) return tag.error();
    s.tag = *tag;
    auto trust = resolve_switch(ctx, opt.trust_upstream ? std::optional<bool>(true) : std::nullopt, "trust-upstream", false);
    if (!trust) return trust.error();
    s.trust_upstream = *trust;
    Setting size = st.get(opt.max_size, nullptr, "max-message-size", std::to_string(limits::message_size));
    auto n = parse_size(size.value);
    if (!n || *n <= 0) return Error{opt.max_size ? ErrorKind::usage : ErrorKind::config, size.origin + ": max-message-size"};
    s.max_size = static_cast<std::size_t>(*n);
    return s;
}

Result<int> filter(Context& ctx, const ChallengeOptions& opt, const ChallengeSetup& s, Store& store, std::istream& in) {
    auto dl = delivery_of(s);
    if (!dl) return dl.error();
    Delivery& d = **dl;
    Spool raw;
    if (auto r = read_all(in, raw, s.max_size); !r) return r.error();
    SpoolReader rb("", raw);
    std::istream rs(&rb);
    MessageReader msg(rs, s.max_size);
    if (auto r = msg.read_header(); !r) return r.error();
    // Where the body starts in raw, taken before any field is added, stripped or tagged.
    const std::size_t body_at = header_octets(msg);
    std::int64_t t = now();
    HeldQueue q(ctx, s, store);

    std::vector<std::string> domains;
    if (opt.rcpts.empty()) {
        auto dd = store.domain_list();
        if (!dd) return dd.error();
        domains = std::move(*dd);
    }
    auto e = envelope_of(msg, opt.sender, opt.rcpts, domains, s.trusted_forwarders);
    if (!e) return e.error();
    Envelope env = std::move(*e);

    // A reply to a digest's address (mchallenge(1) DIGEST): an accepted one is used up here; a replayed or
    // late one is delivered tagged Response; a forged one is mail like any other.
    auto authenticated = [&]() -> Result<bool> {
        auto res = process_resolver(ctx);
        if (!res) return res.error();
        FrontAuth fa(**res, [&](std::string_view event, std::string_view identity, std::string_view detail) {
            ctx.logger().log(event == "forged" ? Level::notice : Level::info, event,
                             {{"identity", identity}, {"sender", env.sender.value_or("")}, {"results", detail}});
        });
        if (!s.trust_upstream) strip_verdicts(msg, s.authserv_id);  // our own authserv-id is a sender's forgery
        auto settings = resolve_auth_settings(ctx, opt.auth, s.hostname);
        if (!settings) return settings.error();
        auto results = check_spooled(**res, *settings, opt.auth, msg.fields(), env.sender.value_or(""), raw, body_at);
        if (!results) return results.error();
        fa.set_results(*results);
        StoreLookups look(store, s.delimiter);
        switch (challenge_filter(look, env, &fa)) {
        case ChallengeAuth::send: return true;
        case ChallengeAuth::quiet: return false;
        case ChallengeAuth::tempfail: break;
        }
        return Error{ErrorKind::tempfail, "cannot check the sender's authentication now (DNS)"};
    };
    auto dr = digest_reply(ctx, s, store, q, d, env, msg, t, authenticated);
    if (!dr) return dr.error();
    if (*dr == DigestReply::consumed) return ex_ok;
    if (*dr == DigestReply::response) {
        strip_verdicts(msg, s.authserv_id);
        return deliver_marked(ctx, s, d, msg, raw, body_at, env, std::nullopt, 'R');
    }
    if (*dr == DigestReply::none) {
        // Our own digest coming back (its envelope sender is one only the digest was sent from): never held
        // or challenged, whatever its Auto-Submitted field says.
        auto ours = is_our_digest(s, store, env, t);
        if (!ours) return ours.error();
        if (*ours) {
            strip_verdicts(msg, s.authserv_id);
            Verdict dv;
            dv.category = Category::whitelist;
            dv.reason = "a digest of held mail from mchallenge";
            dv.hashcash = dv.postage = "none";
            return deliver_marked(ctx, s, d, msg, raw, body_at, env, dv, 'W');
        }
    }

    // Mail to one of our own addresses: a confirmation, or a notice about a challenge.
    for (const auto& r : env.rcpts) {
        auto tok = parse_token(r, s.delimiter);
        if (!tok) continue;
        auto c = store.held_find(HeldKey::confirm, tok->payload);
        if (!c) return c.error();
        if (*c) {
            const Held& h = **c;
            // An answer from a program (a vacation notice, a bounce of the challenge's reply) confirms
            // nothing: a forged sender's autoresponder must not let its spam in. It is filed with the row.
            std::string automatic = challenge_suppressed(msg, env.sender.value_or(""));
            if (!automatic.empty() && h.state != HeldState::ended) {
                auto m = q.hold(msg, env, raw, HeldState::match, "automatic answer to the challenge of " + h.id + " (" +
                                                            automatic + ")", h.id, t);
                if (!m) return m.error();
                return ex_ok;
            }
            if (h.state != HeldState::ended && h.state != HeldState::releasing && h.state != HeldState::match) {
                std::string who = env.sender.value_or("");
                std::string why = "confirmed by " + (who.empty() ? std::string("<>") : who);
                auto rel = q.release(h, d, why, t);
                if (!rel) return rel.error();
                if (*rel) {
                    // The message is out: a whitelist that cannot be written now is logged, not retried
                    // (the MTA's retry would find the message gone).
                    if (auto w = q.whitelist_sender(h.sender, t); !w)
                        ctx.logger().warning("whitelist", {{"sender", h.sender}, {"error", w.error().text}});
                    // Then everything else held from that sender for the recipient the challenge spoke for
                    // (after the whitelist: a message held meanwhile sees the whitelist, or is seen here).
                    // One that cannot go out now stays held and is logged; `mchallenge expire` releases it.
                    if (!h.rcpts.empty()) (void)q.release_from(h.sender, h.rcpts.front(), d, why, t);
                    return ex_ok;  // the confirmation has done its work
                }
            }
            // Too late: the held message is gone (or another confirmation took it).
            strip_verdicts(msg, s.authserv_id);
            return deliver_marked(ctx, s, d, msg, raw, body_at, env, std::nullopt, 'R');
        }
        auto b = store.held_find(HeldKey::bounce, tok->payload);
        if (!b) return b.error();
        if (*b) {
            const Held& h = **b;
            auto rep = parse_dsn(prefix_of(raw, 1u << 20));
            std::string why = "challenge bounced";
            if (rep && !rep->recipients.empty())
                why += ": " + rep->recipients.front().status + " " + rep->recipients.front().diagnostic;
            // Only a permanent failure ends the hold; a delay warning, a success report or anything else
            // sent there is filed and the held message stays as it is.
            bool failed = rep && rep->is_notice && rep->permanent;
            if (failed) {
                auto moved = store.held_transition(h.id, {HeldState::held, HeldState::pending, HeldState::quiet}, HeldState::deletable, t, scrub(why, 300));
                if (!moved) return moved.error();
            }
            auto m = q.hold(msg, env, raw, HeldState::match, "notice about the challenge of " + h.id, h.id, t);
            if (!m) return m.error();
            return ex_ok;
        }
    }

    // Whether a challenge may go out is decided on the message as it came (our own challenges carry an
    // X-Mailstamp-* field, which the check below strips as a possible forgery).
    std::string sender = env.sender.value_or("");
    std::string why = challenge_suppressed(msg, sender);

    Verdict v;
    v.hashcash = v.postage = "none";
    StoreLookups lookups(store, s.delimiter);
    std::optional<TokenHolds> holds;  // released unless claimed, whatever way this returns
    bool upstream = false;
    if (s.trust_upstream) {
        if (auto cls = msg.get("X-Mailstamp-Class"); cls && !cls->empty())
            if (auto c = parse_category(cls->substr(0, 1))) {
                v.category = *c;
                v.reason = "upstream verdict";
                upstream = true;
            }
    }
    std::optional<FrontAuth> auth;
    auto resolver = process_resolver(ctx);
    if (!resolver) return resolver.error();
    auth.emplace(**resolver, [&](std::string_view event, std::string_view identity, std::string_view detail) {
        ctx.logger().log(event == "forged" ? Level::notice : Level::info, event,
                         {{"identity", identity}, {"sender", sender}, {"results", detail}});
    });
    if (!upstream) {
        strip_verdicts(msg, s.authserv_id);
        // Sender authentication (mailstamp(7) ADMISSION), over the header as stripped and the spooled body.
        auto settings = resolve_auth_settings(ctx, opt.auth, s.hostname);
        if (!settings) return settings.error();
        auto results = check_spooled(**resolver, *settings, opt.auth, msg.fields(), sender, raw, body_at);
        if (!results) return results.error();
        auth->set_results(*results);
        // The admission core decides (mailstamp(7) ADMISSION).
        auto body_hash = [&]() -> Result<std::string> {
            RelaxedBodyHash hash;
            if (auto r = raw.each([&](std::string_view piece) -> Result<void> {
                    hash.update(piece);
                    return {};
                }, body_at);
                !r)
                return r.error();
            return hash.finish();
        };
        auto dec = decide_filter(lookups, holds, env, msg, s.delimiter, s.postage, body_hash, &*auth);
        if (!dec) return dec.error();
        v = std::move(*dec);
    }
    if (v.category != Category::unknown) {
        // The one-time tokens it came by become uses before it goes out (given back if it does not).
        if (holds) {
            if (auto c = holds->claim(t); !c) return c.error();
        }
        auto r = deliver_marked(ctx, s, d, msg, raw, body_at, env, upstream ? std::nullopt : std::optional<Verdict>(v),
                                category_letter(v.category));
        if (r && holds) holds->commit();
        return r;
    }

    // Unknown: hold it, and ask the sender unless the rules say not to. Without a recipient there is nobody to
    // confirm for: it goes through tagged.
    if (env.rcpts.empty()) {
        v.reason += "; not challenged: no recipient known";
        return deliver_marked(ctx, s, d, msg, raw, body_at, env, v, 'B');
    }
    // A challenge goes only to a sender that authenticates: one to a forged address is backscatter. Mail from
    // a sender that fails SPF, or whose DMARC policy refuses it, is held quietly. Behind a trusted upstream
    // (its verdict taken as it is) nothing was checked here: the upstream's results decide, or none do.
    if (why.empty() && !upstream) {
        switch (challenge_filter(lookups, env, &*auth)) {
        case ChallengeAuth::send: break;
        case ChallengeAuth::quiet: why = std::string(unauthenticated_note); break;
        case ChallengeAuth::tempfail:
            return Error{ErrorKind::tempfail, "cannot check the sender's authentication now (DNS)"};
        }
    }
    if (why.empty() && s.quota >= 0) {
        auto sent = store.volume_add("challenge:" + sender, 0, t, 86400);
        if (!sent) return sent.error();
        if (*sent >= s.quota) why = "daily challenge quota reached";
    }
    if (!why.empty() && s.deliver_unchallenged) {
        v.reason += "; not challenged: " + why;
        return deliver_marked(ctx, s, d, msg, raw, body_at, env, v, 'B');
    }
    // The same delivery again (an MTA retrying after a crash): it is held once. Only the same envelope and the
    // same octets are the same delivery; anything that merely looks alike is held on its own.
    auto key = delivery_key(env, raw);
    if (!key) return key.error();
    auto existing = store.held_find(HeldKey::msg_key, *key);
    if (!existing) return existing.error();
    Held h;
    if (*existing && (*existing)->state != HeldState::ended) {
        h = **existing;
        if (h.state != HeldState::held) return ex_ok;
    } else {
        auto held = q.hold(msg, env, raw, *key, why.empty() ? HeldState::held : HeldState::quiet, why, "", t);
        if (!held) return held.error();
        h = *held;
        // A confirmation (or `mchallenge whitelist`) that ran since the whitelist check above released what it
        // found held, perhaps before this row was written: if the sender is whitelisted now, this one goes too —
        // unless the sender did not authenticate (a forged whitelisted address: the whitelist was already asked).
        auto wl = h.note == unauthenticated_note ? Result<bool>(false) : q.whitelisted(h.sender, h.rcpts);
        if (!wl) return wl.error();
        if (*wl) {
            // Held safely either way: one that cannot be delivered now is left to `mchallenge expire`.
            if (auto r = q.release(h, d, "sender whitelisted", t); !r)
                ctx.logger().warning("release", {{"id", h.id}, {"sender", h.sender}, {"error", r.error().text}});
            return ex_ok;
        }
        if (!why.empty()) return ex_ok;
    }
    if (auto c = q.send_challenge(h, header_text(msg), t); !c) {
        // Held safely; `mchallenge expire` sends the challenge later.
        ctx.logger().warning("challenge", {{"id", h.id}, {"to", sender}, {"error", c.error().text}});
        return ex_ok;
    }
    (void)store.volume_add("challenge:" + sender, 1, t, 86400);
    return ex_ok;
}

// IDs from the arguments, "-" meaning one a line on stdin.
std::vector<std::string> ids_of(const ChallengeOptions& opt, std::istream& in) {
    std::vector<std::string> ids;
    for (const auto& i : opt.ids) {
        if (i != "-") {
            ids.push_back(i);
            continue;
        }
        std::string line;
        while (std::getline(in, line)) {
            while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.pop_back();
            if (!line.empty()) ids.push_back(line);
        }
    }
    return ids;
}

void write_row_json(std::ostream& out, const Held& h) {
    out << "{\"id\":" << json_string(h.id) << ",\"state\":" << json_string(to_string(h.state))
        << ",\"sender\":" << json_string(h.sender) << ",\"rcpts\":[";
    for (std::size_t i = 0; i < h.rcpts.size(); ++i) out << (i ? "," : "") << json_string(h.rcpts[i]);
    out << "],\"subject\":" << json_string(h.subject) << ",\"message_id\":" << json_string(h.message_id)
        << ",\"size\":" << h.size << ",\"received\":" << json_string(format_time(h.received))
        << ",\"expires\":" << json_string(format_time(h.expires))
        << ",\"challenged\":" << json_string(format_time(h.challenged)) << ",\"note\":" << json_string(h.note)
        << ",\"parent\":" << json_string(h.parent) << "}";
}

Result<int> list(const ChallengeOptions& opt, Store& store, std::ostream& out) {
    HeldFilter f;
    if (opt.older) {
        auto d = parse_duration(*opt.older);
        if (!d) return Error{ErrorKind::usage, "--older: " + d.error().text};
        f.received_before = now() - *d;
    }
    if (opt.list_sender) {
        auto a = parse_path(*opt.list_sender);
        if (!a) return Error{ErrorKind::usage, "--sender: not an address"};
        f.sender = normalize_address(*a);
    }
    if (!opt.all) f.states = {HeldState::held, HeldState::pending, HeldState::quiet, HeldState::releasing, HeldState::deletable, HeldState::match};
    bool first = true;
    if (opt.json) out << "[";
    auto r = store.held_each(f, [&](const Held& h) {
        if (opt.json) {
            out << (first ? "" : ",");
            write_row_json(out, h);
        } else {
            out << h.id << '\t' << to_string(h.state) << '\t' << format_time(h.received) << '\t' << h.size << '\t'
                << (h.sender.empty() ? "<>" : h.sender) << '\t' << h.subject << '\n';
        }
        first = false;
    });
    if (opt.json) out << "]\n";
    if (!r) return r.error();
    return ex_ok;
}

Result<int> show(const std::string& id, Store& store, std::ostream& out) {
    auto h = store.held_find(HeldKey::id, id);
    if (!h) return h.error();
    if (!*h) return Error{ErrorKind::usage, "no held message " + id};
    const Held& x = **h;
    out << "Id: " << x.id << "\nState: " << to_string(x.state) << "\nSender: " << (x.sender.empty() ? "<>" : x.sender) << "\n";
    for (const auto& r : x.rcpts) out << "Recipient: " << r << "\n";
    out << "Subject: " << x.subject << "\nMessage-ID: " << x.message_id << "\nSize: " << x.size
        << "\nReceived: " << format_time(x.received) << "\nExpires: " << format_time(x.expires)
        << "\nChallenged: " << format_time(x.challenged) << "\nNote: " << x.note << "\n";
    if (!x.parent.empty()) out << "Matches: " << x.parent << "\n";
    // A preview: the header section only.
    std::ifstream f(x.path, std::ios::binary);
    if (f) {
        out << "\n";
        std::string line;
        std::size_t n = 0;
        while (std::getline(f, line) && n++ < 500) {
            if (line.empty() || line == "\r") break;
            out << line << "\n";
        }
    }
    return ex_ok;
}

Result<int> bounce_report(const ChallengeSetup& s, Store& store, std::istream& in, std::ostream& out) {
    Spool raw;
    if (auto r = read_all(in, raw, s.max_size); !r) return r.error();
    auto rep = parse_dsn(prefix_of(raw, 1u << 20));
    if (!rep) return rep.error();
    out << "notice: " << (rep->is_notice ? "yes" : "no") << "\n";
    if (!rep->is_notice) return ex_no;
    out << "format: " << rep->format << "\n";
    out << "failure: " << (rep->permanent ? "permanent" : "temporary") << "\n";
    if (!rep->reporting_mta.empty()) out << "reporting-mta: " << rep->reporting_mta << "\n";
    out << "original-message-id: " << rep->original_message_id << "\n";
    for (const auto& r : rep->recipients)
        out << "recipient: " << r.address << " " << (r.status.empty() ? "-" : r.status) << " "
            << (r.permanent ? "permanent" : "temporary") << (r.diagnostic.empty() ? "" : " " + r.diagnostic) << "\n";
    std::string id = challenge_id_of(rep->original_message_id);
    if (!id.empty()) {
        auto h = store.held_find(HeldKey::id, id);
        if (!h) return h.error();
        if (!*h) id.clear();
    }
    out << "challenge: " << (id.empty() ? "none" : id) << "\n";
    return ex_ok;
}

Result<int> expire(Context& ctx, const ChallengeOptions& opt, const ChallengeSetup& s, Store& store, std::ostream& out) {
    std::int64_t t = now();
    std::int64_t hold = s.hold_time;  // with --after: from when each message came; else its own expiry
    if (opt.after) {
        auto d = parse_duration(*opt.after);
        if (!d) return Error{ErrorKind::usage, "--after: " + d.error().text};
        hold = *d;
    }
    HeldQueue q(ctx, s, store);
    std::vector<Held> rows;
    if (auto r = store.held_each(HeldFilter{}, [&](const Held& h) { rows.push_back(h); }); !r) return r.error();
    long expired = 0, purged = 0, challenged = 0, released = 0, dropped = 0;
    std::unique_ptr<Delivery> d;
    // The delivery target, made on first use; without one in the config, what needs it waits for a run that has one.
    auto delivery = [&](const Held& h) -> Delivery* {
        if (!d) {
            auto dl = delivery_of(s);
            if (!dl) {
                ctx.logger().warning("expire", {{"id", h.id}, {"error", dl.error().text}});
                return nullptr;
            }
            d = std::move(*dl);
        }
        return d.get();
    };
    for (const auto& h : rows) {
        bool past = opt.after ? h.received <= t - hold : h.expires <= t;
        bool waiting = h.state == HeldState::held || h.state == HeldState::pending || h.state == HeldState::quiet;
        // Its sender is whitelisted now (a confirmation whose sweep could not deliver it, a whitelist by hand):
        // it is let in rather than left to expire, even when its hold ran out meanwhile (expiring it first
        // would purge mail its recipient has since agreed to take).
        // Not mail held because its sender did not authenticate: being whitelisted is what it forged.
        auto wl = waiting && h.note != unauthenticated_note ? q.whitelisted(h.sender, h.rcpts) : Result<bool>(false);
        if (!wl) return wl.error();
        if (*wl) {
            Delivery* dd = delivery(h);
            if (!dd) continue;
            auto r = q.release(h, *dd, "sender whitelisted", t, {h.state});
            if (r && *r) ++released;
        } else if (waiting && past) {
            auto m = store.held_transition(h.id, {h.state}, HeldState::deletable, t, "expired");
            if (!m) return m.error();
            if (*m) ++expired;
        } else if (h.state == HeldState::held && h.challenged == 0) {
            // A challenge that could not go out (or a crash before it did): try again.
            std::string headers;
            std::ifstream f(h.path, std::ios::binary);
            std::string line;
            while (std::getline(f, line) && headers.size() < 65536) {
                if (line.empty() || line == "\r") break;
                headers += line + "\n";
            }
            if (q.send_challenge(h, headers, t)) ++challenged;
        } else if (h.state == HeldState::releasing && h.changed < t - 600) {
            // A release interrupted after it took the message: deliver again rather than lose it.
            Delivery* dd = delivery(h);
            if (!dd) continue;
            auto r = q.release(h, *dd, h.note.empty() ? "released again" : h.note, t, {HeldState::releasing});
            if (r && *r) ++released;
        } else if (h.state == HeldState::ended && h.expires + 7 * 86400 < t) {
            if (auto r = store.held_remove(h.id); r && *r) ++dropped;
        }
    }
    // Deletable mail and the notices that matched it are purged.
    rows.clear();
    if (auto r = store.held_each(HeldFilter{INT64_MAX, "", {HeldState::deletable, HeldState::match}}, [&](const Held& h) { rows.push_back(h); }); !r)
        return r.error();
    for (const auto& h : rows) {
        auto e = q.end(h, h.note.empty() ? "purged" : h.note, t);
        if (!e) return e.error();
        if (*e) ++purged;
    }
    (void)store.token_expire(t);
    (void)store.digest_expire(t);
    out << "expired " << expired << ", purged " << purged << ", challenged " << challenged << ", released "
        << released << ", forgotten " << dropped << "\n";
    ctx.log_event("expire", {{"expired", expired}, {"purged", purged}, {"challenged", challenged}});
    return ex_ok;
}

Result<int> by_ids(Context& ctx, const ChallengeOptions& opt, const ChallengeSetup& s, Store& store, std::istream& in) {
    auto ids = ids_of(opt, in);
    if (ids.empty()) return Error{ErrorKind::usage, "no IDs given"};
    std::int64_t t = now();
    HeldQueue q(ctx, s, store);
    std::unique_ptr<Delivery> d;
    if (opt.command != "delete") {
        auto dl = delivery_of(s);
        if (!dl) return dl.error();
        d = std::move(*dl);
    }
    int missing = 0;
    for (const auto& id : ids) {
        if (opt.command == "whitelist" && id.find('@') != std::string::npos) {
            // An address: whitelist it, and release everything held from it.
            auto a = parse_path(id);
            if (!a || a->empty()) return Error{ErrorKind::usage, scrub(id, 80) + ": not an address"};
            std::string sender = normalize_address(*a);
            if (auto w = q.whitelist_sender(sender, t); !w) return w.error();
            if (auto r = q.release_from(sender, "", *d, "sender whitelisted by hand", t); !r) return r.error();
            continue;
        }
        auto h = store.held_find(HeldKey::id, id);
        if (!h) return h.error();
        if (!*h || (*h)->state == HeldState::ended) {
            std::cerr << ctx.program << ": " << scrub(id, 40) << ": no such held message\n";
            ++missing;
            continue;
        }
        if (opt.command == "delete") {
            if (auto e = q.end(**h, "deleted by hand", t); !e) return e.error();
        } else if (opt.command == "release") {
            auto r = q.release(**h, *d, "released by hand", t);
            if (!r) return r.error();
        } else {  // whitelist: the sender, and everything held from it
            if ((*h)->sender.empty()) {  // nobody to whitelist: this message only
                if (auto r = q.release(**h, *d, "released by hand", t); !r) return r.error();
                continue;
            }
            if (auto w = q.whitelist_sender((*h)->sender, t); !w) return w.error();
            if (auto r = q.release_from((*h)->sender, "", *d, "sender whitelisted by hand", t); !r) return r.error();
        }
    }
    return missing ? ex_no : ex_ok;
}

Result<int> dispatch(Context& ctx, const ChallengeOptions& opt, std::istream& in, std::ostream& out) {
    auto s = setup_of(ctx, opt);
    if (!s) return s.error();
    auto store = ctx.open_store();
    if (!store) return store.error();
    const std::string& c = opt.command;
    if (c.empty()) return filter(ctx, opt, *s, **store, in);
    if (c == "list") return list(opt, **store, out);
    if (c == "show") return show(opt.ids.empty() ? "" : opt.ids.front(), **store, out);
    if (c == "expire") return expire(ctx, opt, *s, **store, out);
    if (c == "bounce") return bounce_report(*s, **store, in, out);
    if (c == "digest") return send_digests(ctx, *s, **store, opt.digest_to, opt.since, out);
    return by_ids(ctx, opt, *s, **store, in);
}

} // namespace

int run_challenge(Context& ctx, const ChallengeOptions& opt, std::istream& in, std::ostream& out, std::ostream& err) {
    (void)err;
    Result<int> r = Error{ErrorKind::software, "internal error"};
    try {
        r = dispatch(ctx, opt, in, out);
    } catch (const std::exception& e) {
        r = Error{ErrorKind::tempfail, std::string("internal error: ") + e.what()};
    }
    if (!r) {
        Error e = r.error();
        // A delivery agent that fails must leave the message with the MTA.
        if (opt.command.empty() && e.kind != ErrorKind::usage && e.kind != ErrorKind::config &&
            e.kind != ErrorKind::data)
            e.kind = ErrorKind::tempfail;
        return report(ctx.program, e);
    }
    return *r;
}

} // namespace mail
