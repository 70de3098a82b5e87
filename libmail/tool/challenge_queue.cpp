// mchallenge's queue of held messages: see challenge_queue.hpp.
#include "libmail/tool/challenge_queue.hpp"

#include "libmail/mail/address.hpp"
#include "libmail/policy/challenge.hpp"
#include "libmail/base/clock.hpp"
#include "libmail/io/deliver.hpp"
#include "libmail/mail/dsn.hpp"
#include "libmail/base/duration.hpp"
#include "libmail/base/limits.hpp"
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

const std::vector<HeldState> live_states{HeldState::held, HeldState::pending, HeldState::quiet, HeldState::deletable};

std::string dirname_of(const std::string& p) {
    auto s = p.rfind('/');
    return s == std::string::npos ? std::string(".") : s == 0 ? std::string("/") : p.substr(0, s);
}

Result<std::unique_ptr<Delivery>> delivery_of(const ChallengeSetup& s) {
    if (s.deliver_spec.empty())
        return Error{ErrorKind::usage, "where does mail go? give --deliver maildir:PATH, sendmail, lmtp:... or pipe:..."};
    auto t = parse_delivery_target(s.deliver_spec);
    if (!t) return Error{ErrorKind::usage, "--deliver " + t.error().text};
    // The message as it came (mchallenge reads it after an MDA that wrote the envelope fields already).
    if (t->kind == DeliveryTarget::Kind::maildir) return raw_maildir_delivery(t->dir);
    return make_delivery(*t, host_name(), std::chrono::seconds(120), nullptr, {XclientMode::no, ProxyProtocol::none},
                         s.deliver_sendmail);
}

std::string random_id() {
    unsigned char b[8];
    if (RAND_bytes(b, sizeof b) != 1) return "";
    return hex_encode(std::string_view(reinterpret_cast<char*>(b), sizeof b));
}


// The whole message from in, into a spool; over max is kind data.
Result<void> read_all(std::istream& in, Spool& raw, std::size_t max) {
    char buf[65536];
    while (in.read(buf, sizeof buf) || in.gcount() > 0) {
        if (raw.size() + static_cast<std::size_t>(in.gcount()) > max)
            return Error{ErrorKind::data, "message larger than " + std::to_string(max) + " octets"};
        if (auto w = raw.write(std::string_view(buf, static_cast<std::size_t>(in.gcount()))); !w) return w;
    }
    if (in.bad()) return Error{ErrorKind::tempfail, "read error on standard input"};
    return {};
}

// The first max octets of a spool (notices are small; what they quote past that is not needed).
std::string prefix_of(const Spool& raw, std::size_t max) {
    std::string text;
    char buf[65536];
    for (std::size_t off = 0; off < raw.size() && text.size() < max;) {
        auto n = raw.read_at(off, buf, sizeof buf);
        if (!n || *n == 0) break;
        text.append(buf, *n);
        off += *n;
    }
    return text;
}

Result<void> read_file_into(const std::string& path, Spool& sp) {
    return read_file(path, [&](std::string_view piece) { return sp.write(piece); });
}

// Octets of the header section MessageReader took (mbox line, fields, blank line): the body starts there.
std::size_t header_octets(const MessageReader& msg) {
    std::size_t n = msg.mbox_from().size() + msg.separator().size();
    for (const auto& f : msg.fields()) n += f.raw.size();
    return n;
}

// The key of this delivery (held_find's msg_key): the envelope and every octet of the message, streamed.
Result<std::string> delivery_key(const Envelope& env, const Spool& raw) {
    DeliveryDigest dd(env.sender.value_or(""), env.rcpts);
    if (auto r = raw.each([&](std::string_view piece) -> Result<void> {
            dd.update(piece);
            return {};
        });
        !r)
        return r.error();
    return dd.finish();
}

std::string header_text(const MessageReader& msg) {
    std::string h;
    for (const auto& f : msg.fields()) h += f.raw;
    return h;
}

Result<void> HeldQueue::ensure_dir() {
    std::string parent = dirname_of(s_.hold_dir);
    ::mkdir(parent.c_str(), 0700);
    if (::mkdir(s_.hold_dir.c_str(), 0700) != 0 && errno != EEXIST)
        return Error{ErrorKind::tempfail, s_.hold_dir + ": " + std::strerror(errno)};
    return {};
}

// Writes raw into the hold directory under id (fsync, rename): the path.
Result<std::string> HeldQueue::store_file(const std::string& id, const Spool& raw) {
    if (auto d = ensure_dir(); !d) return d.error();
    std::string fin = s_.hold_dir + "/" + id;
    auto w = write_atomically(s_.hold_dir + "/." + id + ".tmp", fin, s_.hold_dir,
                              [&](const std::function<Result<void>(std::string_view)>& wr) { return raw.each(wr); });
    if (!w) return w.error();
    return fin;
}

Result<Held> HeldQueue::hold(const MessageReader& msg, const Envelope& env, const Spool& raw, HeldState state,
                             const std::string& note, const std::string& parent, std::int64_t t) {
    auto key = delivery_key(env, raw);
    if (!key) return key.error();
    return hold(msg, env, raw, *key, state, note, parent, t);
}

// Holds raw under the delivery key the caller computed.
Result<Held> HeldQueue::hold(const MessageReader& msg, const Envelope& env, const Spool& raw, const std::string& key,
                             HeldState state, const std::string& note, const std::string& parent, std::int64_t t) {
    Held h;
    h.id = random_id();
    if (h.id.empty()) return Error{ErrorKind::tempfail, "random source failed"};
    h.state = state;
    h.sender = env.sender.value_or("");
    h.rcpts = env.rcpts;
    h.subject = scrub(msg.get("Subject").value_or(""), 200);
    h.message_id = scrub(msg.get("Message-ID").value_or(""), 400);
    h.msg_key = key;
    h.size = static_cast<std::int64_t>(raw.size());
    h.received = h.changed = t;
    h.expires = t + s_.hold_time;
    h.note = note;
    h.parent = parent;
    if (state != HeldState::match && !h.rcpts.empty()) {
        // The confirm address lives as long as the hold; the challenge's envelope sender a week longer,
        // for late notices.
        TokenRequest cr{h.rcpts.front(), token_flag::once, h.expires, "", s_.delimiter};
        auto c = issue_token(store_, cr, t);
        if (!c) return c.error();
        TokenRequest br{h.rcpts.front(), 0, h.expires + 7 * 86400, "", s_.delimiter};
        auto b = issue_token(store_, br, t);
        if (!b) return b.error();
        h.confirm = parse_token(*c, s_.delimiter)->payload;
        h.bounce = parse_token(*b, s_.delimiter)->payload;
        confirm_address_ = *c;
        bounce_address_ = *b;
    }
    auto path = store_file(h.id, raw);
    if (!path) return path.error();
    h.path = *path;
    auto added = store_.held_add(h);
    if (!added) {
        ::unlink(h.path.c_str());
        return added.error();
    }
    ctx_.log_event("hold", {{"id", h.id}, {"state", to_string(h.state)}, {"sender", h.sender}, {"size", h.size},
                            {"note", h.note}, {"parent", h.parent}});
    return h;
}

// The token addresses of a row: rebuilt from the first recipient and the stored payloads.
std::string HeldQueue::address_of(const Held& h, const std::string& payload) const {
    if (h.rcpts.empty()) return "";
    const std::string& r = h.rcpts.front();
    auto at = r.rfind('@');
    return r.substr(0, at) + s_.delimiter + payload + r.substr(at);
}

Result<void> send_mail(const ChallengeSetup& s, const std::string& from, const std::vector<std::string>& rcpts,
                       const std::string& text) {
    auto src = [&](const std::function<Result<void>(std::string_view)>& w) { return w(text); };
    if (s.relay) {
        auto c = SmtpClient::open(*s.relay, s.hostname, std::chrono::seconds(60));
        if (!c) return c.error();
        auto r = (*c)->send(from, rcpts, src);
        if (!r) return r.error();
        (*c)->quit();
        if (!r->accepted)
            return Error{ErrorKind::tempfail, "message refused: " + std::to_string(r->reply.code) + " " +
                                                  (r->reply.lines.empty() ? "" : r->reply.lines.front())};
        return {};
    }
    std::vector<std::string> argv{s.sendmail, "-i", "-f", from, "--"};
    argv.insert(argv.end(), rcpts.begin(), rcpts.end());
    auto rc = run_program(argv, src, std::chrono::seconds(60));
    if (!rc) return rc.error();
    if (*rc != 0) return Error{ErrorKind::tempfail, s.sendmail + " exited " + std::to_string(*rc)};
    return {};
}

Result<void> HeldQueue::send_challenge(const Held& h, const std::string& headers, std::int64_t t) {
    ChallengeInfo ci;
    ci.id = h.id;
    ci.sender = h.sender;
    ci.recipient = h.rcpts.empty() ? "" : h.rcpts.front();
    ci.confirm_address = address_of(h, h.confirm);
    ci.subject = h.subject;
    ci.message_id = h.message_id;
    ci.headers = headers;
    ci.received = h.received;
    ci.hold_seconds = h.expires - h.received;
    ci.hostname = s_.hostname;
    std::string text = compose_challenge(ci, s_.tmpl, t);
    std::string from = address_of(h, h.bounce);
    if (auto r = send_mail(s_, from, {h.sender}, text); !r) return r;
    if (auto c = store_.held_set_challenged(h.id, t); !c) return c;
    auto moved = store_.held_transition(h.id, {HeldState::held}, HeldState::pending, t, "challenged");
    if (!moved) return moved.error();
    ctx_.log_event("challenge", {{"id", h.id}, {"to", h.sender}, {"from", from}});
    return {};
}

// Releases h to delivery with one field added; false when another process got there first.
Result<bool> HeldQueue::release(const Held& h, Delivery& d, const std::string& why, std::int64_t t,
                                const std::vector<HeldState>& from) {
    auto mine = store_.held_transition(h.id, from, HeldState::releasing, t, why);
    if (!mine) return mine.error();
    if (!*mine) return false;
    Spool body;
    Result<void> loaded = read_file_into(h.path, body);
    Result<DeliveryResult> r = Error{ErrorKind::tempfail, ""};
    if (loaded) {
        // The added field takes the line end of the message's first line.
        std::string eol = "\n";
        char first[4096];
        auto n = body.read_at(0, first, sizeof first);
        if (n) {
            std::string_view fv(first, *n);
            auto nl = fv.find('\n');
            if (nl != std::string_view::npos && nl > 0 && fv[nl - 1] == '\r') eol = "\r\n";
        }
        OutMessage m;
        m.sender = h.sender;
        m.rcpts = h.rcpts;
        m.header = "X-Mailstamp-Released: " + scrub(why, 200) + "; " + rfc5322_date(t) + eol;
        m.body = &body;
        r = d.deliver(m);
    } else {
        r = loaded.error();
    }
    if (!r || !r->accepted) {
        (void)store_.held_transition(h.id, {HeldState::releasing}, h.state, t, "");
        if (!r) return r.error();
        return Error{ErrorKind::tempfail, "delivery refused: " + std::to_string(r->reply.code)};
    }
    (void)store_.held_transition(h.id, {HeldState::releasing}, HeldState::ended, t, why);
    ::unlink(h.path.c_str());
    ctx_.log_event("release", {{"id", h.id}, {"sender", h.sender}, {"why", why}, {"where", r->where}});
    return true;
}

Result<void> HeldQueue::whitelist_sender(const std::string& sender, std::int64_t t) {
    if (sender.empty()) return {};
    WlEntry e;
    e.kind = WlKind::address;
    e.value = sender;
    e.source = "confirmed";
    e.created = t;
    auto r = store_.wl_insert(e);
    if (!r) return r.error();
    return {};
}

// Releases every live message held from sender for rcpt ("" = for any recipient): each row is taken by its own
// compare-and-set, so what a concurrent confirmation, whitelist or expiry takes first is theirs to deliver.
// One that cannot be delivered now stays as it was, and the others are still tried; then the first error.
Result<long> HeldQueue::release_from(const std::string& sender, const std::string& rcpt, Delivery& d,
                                     const std::string& why, std::int64_t t) {
    if (sender.empty()) return 0L;  // nobody to match ("" in a HeldFilter is any sender)
    std::vector<Held> rows;
    auto listed = store_.held_each(HeldFilter{INT64_MAX, sender, live_states}, [&](const Held& x) {
        if (rcpt.empty() || std::find(x.rcpts.begin(), x.rcpts.end(), rcpt) != x.rcpts.end()) rows.push_back(x);
    });
    if (!listed) return listed.error();
    long n = 0;
    std::optional<Error> first;
    for (const auto& x : rows) {
        auto r = release(x, d, why, t);
        if (r && *r) ++n;
        if (!r) {
            ctx_.logger().warning("release", {{"id", x.id}, {"sender", sender}, {"error", r.error().text}});
            if (!first) first = r.error();
        }
    }
    if (first) return *first;
    return n;
}

// Whether sender is whitelisted now for one of rcpts (a read; no hit is counted).
Result<bool> HeldQueue::whitelisted(const std::string& sender, const std::vector<std::string>& rcpts) {
    if (sender.empty()) return false;
    for (const auto& r : rcpts) {
        auto m = wl_match(store_, sender, r);
        if (!m) return m.error();
        if (*m) return true;
    }
    return false;
}

// Ends a row: its file goes; the row stays (state ended) until expiry so a late confirmation is known.
Result<bool> HeldQueue::end(const Held& h, const std::string& why, std::int64_t t) {
    auto moved = store_.held_transition(h.id, {HeldState::held, HeldState::pending, HeldState::quiet, HeldState::deletable, HeldState::match}, HeldState::ended, t, why);
    if (!moved) return moved.error();
    if (*moved) ::unlink(h.path.c_str());
    if (*moved && h.state == HeldState::match) (void)store_.held_remove(h.id);
    return *moved;
}

// Delivers msg (header edited) with raw's body, which starts body_at octets in, tagged with category letter.
Result<int> deliver_marked(Context& ctx, const ChallengeSetup& s, Delivery& d, MessageReader& msg, const Spool& raw,
                           std::size_t body_at, const Envelope& env, const std::optional<Verdict>& v, char letter) {
    if (v) add_verdict_fields(msg, *v, s.authserv_id);
    if (letter == 'R')
        msg.prepend("X-Mailstamp-Class",
                    "R (Response: a confirmation whose held message is no longer held) by " + s.authserv_id);
    if (s.tag) {
        std::string tag = letter == 'R' ? ctx.settings().get(std::nullopt, nullptr, "tag-response", "[R]").value
                                        : tag_for(ctx, parse_category(std::string(1, letter)).value_or(Category::unknown));
        if (!tag.empty()) msg.tag_subject(tag);
    }
    std::ostringstream hdr;
    if (auto w = msg.write_header(hdr); !w) return w.error();
    OutMessage m;
    m.sender = env.sender.value_or("");
    m.rcpts = env.rcpts;
    m.header = hdr.str();
    m.body = &raw;
    m.body_offset = body_at;
    auto r = d.deliver(m);
    if (!r) return r.error();
    if (!r->accepted) return Error{ErrorKind::tempfail, "delivery refused: " + std::to_string(r->reply.code)};
    ctx.log_event("deliver", {{"class", letter}, {"sender", m.sender}, {"where", r->where}});
    return ex_ok;
}

} // namespace mail
