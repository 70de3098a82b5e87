// Stamping outgoing mail (mstamp(1), msmtp-proxy --stamp): see stamp.hpp.
#include "libmail/app/stamp.hpp"

#include "libmail/mail/address.hpp"
#include "libmail/mail/banner.hpp"
#include "libmail/policy/book.hpp"
#include "libmail/base/clock.hpp"
#include "libmail/policy/hashcash.hpp"
#include "libmail/base/limits.hpp"
#include "libmail/mail/message.hpp"
#include "libmail/policy/postage.hpp"
#include "libmail/mail/spool.hpp"
#include "libmail/policy/whitelist.hpp"

#include <openssl/rand.h>

#include <algorithm>
#include <charconv>
#include <fstream>
#include <iostream>
#include <stdexcept>
#include <map>
#include <set>
#include <sstream>
#include <streambuf>

namespace mail {

Result<std::vector<std::string>> outgoing_recipients(const std::vector<std::string>& envelope, const MessageReader& msg) {
    std::vector<std::string> out;
    std::set<std::string> seen;
    auto add = [&](const Address& a) {
        std::string n = normalize_address(a);
        if (seen.insert(n).second) out.push_back(n);
    };
    if (!envelope.empty()) {
        for (const auto& r : envelope) {
            auto a = parse_path(r);
            if (!a || a->empty()) return Error{ErrorKind::usage, "--rcpt '" + r + "': not an address"};
            add(*a);
        }
    } else {
        for (const char* name : {"To", "Cc", "Bcc"}) {
            for (const auto& value : msg.get_all(name)) {
                auto list = parse_address_list(value);
                if (!list) return Error{ErrorKind::data, std::string(name) + ": " + list.error().text};
                for (const auto& a : *list) add(a);
            }
        }
    }
    if (out.empty()) return Error{ErrorKind::data, "no recipients: give --rcpt, or To, Cc or Bcc in the message"};
    if (out.size() > limits::recipients)
        return Error{ErrorKind::data, "more than " + std::to_string(limits::recipients) + " recipients"};
    return out;
}

namespace {

Result<std::string> banner_file(const std::string& path) {
    std::ifstream f(path, std::ios::binary);
    if (!f) return Error{ErrorKind::noinput, path + ": cannot read"};
    std::string text;
    char buf[4096];
    while (f.read(buf, sizeof buf) || f.gcount() > 0) {
        text.append(buf, static_cast<std::size_t>(f.gcount()));
        if (text.size() >= 64 * 1024) return Error{ErrorKind::data, path + ": a banner must be under 64 KB"};
    }
    return text;
}

} // namespace

Result<std::optional<std::string>> resolve_banner(const Context& ctx, const std::optional<std::string>& cli) {
    auto file = ctx.settings().find(cli, nullptr, "banner");
    if (!file || file->value.empty()) return std::optional<std::string>();
    auto text = banner_file(file->value);
    if (!text) return text.error();
    return std::optional<std::string>(std::move(*text));
}

Result<void> banner_message(std::string_view banner, std::istream& in, std::ostream& out) {
    MessageReader msg(in);
    if (auto r = msg.read_header(); !r) return r.error();
    Spool spool;
    ChunkWriter sink([&](std::string_view d) { return spool.write(d); });
    std::ostream body(&sink);
    if (auto r = append_banner(msg, banner, body); !r) return r.error();
    body.flush();
    if (!sink.status) return sink.status.error();
    return write_message(msg, &spool, out);
}

int TimedRule::bits_for(std::int64_t volume) const {
    std::int64_t extra = step > 0 ? volume / step : 0;
    return static_cast<int>(std::min<std::int64_t>(max_bits, base_bits + std::min<std::int64_t>(extra, 64)));
}

namespace {

Result<int> int_setting(const Context& ctx, const std::optional<std::string>& cli, std::string_view key, int dflt,
                        int lo, int hi) {
    Setting s = ctx.settings().get(cli, nullptr, key, std::to_string(dflt));
    int v = 0;
    auto [p, ec] = std::from_chars(s.value.data(), s.value.data() + s.value.size(), v);
    if (ec != std::errc() || p != s.value.data() + s.value.size() || v < lo || v > hi)
        return Error{cli ? ErrorKind::usage : ErrorKind::config,
                     s.origin + ": " + std::string(key) + " must be " + std::to_string(lo) + " to " + std::to_string(hi)};
    return v;
}

Result<TimedRule> timed_rule(const Context& ctx) {
    TimedRule r;
    auto base = int_setting(ctx, std::nullopt, "timed-base-bits", r.base_bits, 0, 40);
    if (!base) return base.error();
    auto max = int_setting(ctx, std::nullopt, "timed-max-bits", r.max_bits, 0, 40);
    if (!max) return max.error();
    auto step = int_setting(ctx, std::nullopt, "timed-step", static_cast<int>(r.step), 1, 1000000);
    if (!step) return step.error();
    auto window = ctx.settings().duration(std::nullopt, nullptr, "timed-window", r.window);
    if (!window) return window.error();
    if (*window <= 0) return Error{ErrorKind::config, "timed-window must be positive"};
    r.base_bits = *base;
    r.max_bits = std::max(*max, *base);
    r.step = *step;
    r.window = *window;
    return r;
}

Result<StampKind> kind_of(const Context& ctx, const StampOptions& opt) {
    if (opt.kind) return *opt.kind;
    Setting k = ctx.settings().get(std::nullopt, nullptr, "kind", "hashcash");
    if (k.value == "hashcash") return StampKind::hashcash;
    if (k.value == "timed") return StampKind::timed;
    if (k.value == "paid") return StampKind::paid;
    return Error{ErrorKind::config, k.origin + ": kind must be hashcash, timed or paid"};
}

// The sender whose volume prices timed stamps: --sender, else the first From address.
Result<std::string> sender_of(const StampOptions& opt, const MessageReader& msg) {
    if (!opt.sender.empty()) {
        auto a = parse_path(opt.sender);
        if (!a || a->empty()) return Error{ErrorKind::usage, "--sender '" + opt.sender + "': not an address"};
        return normalize_address(*a);
    }
    if (auto from = msg.get("From")) {
        auto list = parse_address_list(*from);
        if (list && !list->empty()) return normalize_address(list->front());
    }
    return Error{ErrorKind::data, "timed stamps need the sender: give --sender, or From in the message"};
}

// Hashcash stamps for each recipient not already holding a good one.
Result<std::vector<std::string>> mint_for(const MessageReader& msg, const std::vector<std::string>& rcpts, int bits,
                                          std::int64_t t, unsigned threads) {
    std::set<std::string> stamped;
    for (const auto& v : msg.get_all("X-Hashcash"))
        for (const auto& r : rcpts)
            if (check_hashcash(v, r, bits, t) == HashcashCheck::ok) stamped.insert(r);
    std::vector<std::string> stamps;
    for (const auto& r : rcpts) {
        if (stamped.count(r)) continue;
        auto s = mint_hashcash(r, bits, t, threads);
        if (!s) return s.error();
        stamps.push_back("X-Hashcash\n" + *s);
    }
    return stamps;
}

} // namespace

Result<int> stamp_message(Context& ctx, const StampOptions& opt, std::istream& in, std::ostream& out,
                          std::ostream& err) {
    auto kind = kind_of(ctx, opt);
    if (!kind) return kind.error();
    auto bits = int_setting(ctx, opt.bits, "bits", hashcash_default_bits, 0, 40);
    if (!bits) return bits.error();
    std::optional<std::string> banner = opt.banner_text;
    if (!banner) {
        auto b = resolve_banner(ctx, opt.banner);
        if (!b) return b.error();
        banner = std::move(*b);
    }
    if (banner && banner->empty()) banner.reset();
    MessageReader msg(in);
    if (auto r = msg.read_header(); !r) return r.error();
    auto rcpts = outgoing_recipients(opt.rcpts, msg);
    if (!rcpts) return rcpts.error();
    std::int64_t t = now();
    auto store = ctx.open_store();
    if (!store) return store.error();
    Store& s = **store;

    // The body goes through a spool when it changes (banner) or must be hashed before the header is written.
    Spool spool;
    bool spooled = false;
    std::string body_hash;
    if (banner) {
        // What the banner writes goes to the body hash and the spool, in 64 KB batches.
        RelaxedBodyHash hash;
        ChunkWriter sink([&](std::string_view d) {
            hash.update(d);
            return spool.write(d);
        });
        std::ostream body(&sink);
        if (auto r = append_banner(msg, *banner, body); !r) return r.error();
        body.flush();
        if (!sink.status) return sink.status.error();
        body_hash = hash.finish();
        spooled = true;
    } else if (*kind == StampKind::paid) {
        auto h = spool_body(msg, spool);
        if (!h) return h.error();
        body_hash = std::move(*h);
        spooled = true;
    }

    std::vector<std::string> fields;  // "Name\nvalue", in recipient order
    std::string used = "hashcash";
    int minted_bits = *bits;
    StampKind k = *kind;
    std::int64_t left = -1;
    if (k == StampKind::paid) {
        auto taken = s.book_take(static_cast<std::int64_t>(rcpts->size()), t);
        if (!taken) return taken.error();
        if (taken->empty()) {
            Setting fb = ctx.settings().get(std::nullopt, nullptr, "paid-fallback", "timed");
            if (fb.value == "fail")
                return Error{ErrorKind::tempfail, "the stamp books hold fewer than " + std::to_string(rcpts->size()) +
                                                      " stamps (paid-fallback = fail)"};
            if (fb.value != "timed") return Error{ErrorKind::config, fb.origin + ": paid-fallback must be timed or fail"};
            err << ctx.program << ": warning: stamp books empty; timed stamps instead\n";
            k = StampKind::timed;
        } else {
            std::string msgid = msg.get("Message-ID").value_or("");
            if (msgid.empty()) {
                unsigned char r[12];
                if (RAND_bytes(r, sizeof r) != 1) return Error{ErrorKind::tempfail, "random source failed"};
                msgid = "<" + hex_encode(std::string_view(reinterpret_cast<char*>(r), sizeof r)) + ".mstamp@" +
                        host_name() + ">";
                msg.prepend("Message-ID", msgid);
            }
            // The stamp signs Date: one added later by the submission MTA would break it, so add it now.
            if (!msg.get("Date")) msg.prepend("Date", rfc5322_date(t));
            std::vector<std::string_view> raw;
            for (const auto& f : msg.fields()) raw.push_back(f.raw);
            std::string header_hash = postage_header_hash(raw);
            auto books = s.book_list();
            if (!books) return books.error();
            std::map<std::string, BookCert> certs;
            for (const auto& b : *books)
                if (auto c = parse_book(b.cert)) certs.emplace(b.id, *c);
            for (std::size_t i = 0; i < rcpts->size(); ++i) {
                const BookStamp& bs = (*taken)[i];
                auto c = certs.find(bs.book);
                if (c == certs.end()) return Error{ErrorKind::software, "book " + bs.book + " has a broken certificate"};
                auto key = owner_key_for(s, c->second.owner);
                if (!key) return key.error();
                if (!*key) return Error{ErrorKind::config, "no owner key for book " + bs.book};
                auto v = make_postage(c->second, **key, bs.index, (*rcpts)[i], t, msgid, body_hash, header_hash);
                if (!v) return v.error();
                fields.push_back("Mailstamp-Postage\n" + *v);
            }
            used = "paid";
            auto bal = book_balance(s, t);
            if (!bal) return bal.error();
            left = *bal;
        }
    }
    if (k == StampKind::timed) {
        auto rule = timed_rule(ctx);
        if (!rule) return rule.error();
        auto sender = sender_of(opt, msg);
        if (!sender) return sender.error();
        auto volume = s.volume_add(*sender, 1, t, rule->window);
        if (!volume) return volume.error();
        minted_bits = rule->bits_for(*volume);
        used = "timed";
        auto st = mint_for(msg, *rcpts, minted_bits, t, opt.threads);
        if (!st) return st.error();
        fields = std::move(*st);
    } else if (k == StampKind::hashcash) {
        auto st = mint_for(msg, *rcpts, minted_bits, t, opt.threads);
        if (!st) return st.error();
        fields = std::move(*st);
    }

    // Whitelist the recipients before anything is written: a store that
    // cannot take them fails the filter (exit 75) with nothing on stdout.
    // They are people the sender writes to, so they are whitelisted for the
    // sender when it is one of ours, not for everybody.
    // In a site store (one with protected domains) a sender that is none of ours whitelists nobody: for
    // every recipient, it would open every mailbox of the site. A personal store has one user: all of them.
    std::string scope;
    bool whitelist = true;
    if (opt.whitelist_scope) {
        scope = *opt.whitelist_scope;
    } else {
        auto who = sender_of(opt, msg);
        if (!who && !opt.sender.empty()) return who.error();
        auto domains = s.domain_list();
        if (!domains) return domains.error();
        if (who) scope = wl_outgoing_scope(*who, *domains);
        whitelist = domains->empty() || !scope.empty();
    }
    auto entries = whitelist ? wl_outgoing_entries(*rcpts, scope, t) : std::vector<WlEntry>{};
    auto w = s.transaction([&]() -> Result<void> {
        for (const auto& e : entries)
            if (auto ins = s.wl_insert(e); !ins) return ins.error();
        return {};
    });
    if (!w) return w.error();

    // Stamps go on top in recipient order.
    for (auto it = fields.rbegin(); it != fields.rend(); ++it) {
        auto nl = it->find('\n');
        msg.prepend(it->substr(0, nl), it->substr(nl + 1));
    }
    if (auto r = write_message(msg, spooled ? &spool : nullptr, out); !r) return r.error();
    if (left >= 0) {
        auto warn = int_setting(ctx, std::nullopt, "paid-warn", 10, 0, 1 << 30);
        int threshold = warn ? *warn : 10;
        if (left < threshold)
            err << ctx.program << ": warning: only " << left << " stamps left (mstamp book import)\n";
        else
            err << ctx.program << ": " << left << " stamps left\n";
    }
    ctx.log_event("stamp", {{"kind", used},
                            {"bits", used == "paid" ? 0 : minted_bits},
                            {"recipients", static_cast<long>(rcpts->size())},
                            {"stamps", static_cast<long>(fields.size())},
                            {"left", static_cast<long>(left)}});
    return ex_ok;
}

} // namespace mail
