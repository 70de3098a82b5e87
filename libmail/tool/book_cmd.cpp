// mstamp book and mstamp authority: see mstamp(1).
#include "libmail/tool/book_cmd.hpp"

#include "libmail/base/clock.hpp"
#include "libmail/base/duration.hpp"
#include "libmail/policy/spend.hpp"
#include "libmail/policy/whitelist.hpp"

#include <charconv>
#include <fstream>
#include <iostream>

namespace mail {

namespace {

Result<std::optional<KeyPair>> newest_key(Store& store, std::string_view purpose) {
    auto keys = store.secrets(purpose);
    if (!keys) return keys.error();
    if (keys->empty()) return std::optional<KeyPair>();
    KeyPair k;
    k.priv = keys->front().bytes;
    auto pub = ed25519_public(k.priv);
    if (!pub) return pub.error();
    k.pub = *pub;
    return std::optional<KeyPair>(k);
}

// keygen and init: a key pair under purpose; refuses to replace one unless forced.
Result<int> make_key(Context& ctx, Store& store, std::string_view purpose, bool force, std::ostream& out,
                     std::string_view what) {
    auto old = newest_key(store, purpose);
    if (!old) return old.error();
    if (*old && !force)
        return Error{ErrorKind::usage, std::string(what) + " key exists already (public key " +
                                           format_public_key((*old)->pub) + "); --force makes a new one"};
    auto k = ed25519_generate();
    if (!k) return k.error();
    auto id = store.secret_add(purpose, k->priv, now());
    if (!id) return id.error();
    out << format_public_key(k->pub) << '\n';
    ctx.log_event("key_made", {{"purpose", std::string(purpose)}, {"key_id", static_cast<long>(*id)}});
    return ex_ok;
}

Result<std::string> read_cert_text(const std::string& file, std::istream& in) {
    std::ifstream f;
    std::istream* src = &in;
    if (file != "-") {
        f.open(file);
        if (!f) return Error{ErrorKind::noinput, file + ": cannot read"};
        src = &f;
    }
    std::string line;
    while (std::getline(*src, line)) {
        if (line.size() > 4096) return Error{ErrorKind::data, file + ": line too long"};
        if (!line.empty() && line.back() == '\r') line.pop_back();
        if (line.empty() || line[0] == '#') continue;
        return line;
    }
    return Error{ErrorKind::data, file + ": no certificate"};
}

Result<std::int64_t> parse_count(const std::optional<std::string>& s) {
    std::int64_t n = 0;
    if (!s) return Error{ErrorKind::usage, "issue: give --count N"};
    auto [p, ec] = std::from_chars(s->data(), s->data() + s->size(), n);
    if (ec != std::errc() || p != s->data() + s->size() || n <= 0 || n > (std::int64_t(1) << 31))
        return Error{ErrorKind::usage, "--count '" + *s + "': want 1 to 2147483648"};
    return n;
}

// An expiry: an ISO 8601 date or time, or a duration from now (365d).
Result<std::int64_t> parse_expiry(const std::optional<std::string>& s, std::int64_t t) {
    if (!s) return t + 365 * 86400;
    if (auto d = parse_duration(*s)) return t + *d;
    if (auto at = parse_time(*s)) return *at;
    if (auto day = parse_time(*s + "T00:00:00Z")) return *day;
    return Error{ErrorKind::usage, "--expires '" + *s + "': want a date (2027-12-31), a time, or a duration (365d)"};
}

Result<int> book(Context& ctx, const BookOptions& opt, std::istream& in, std::ostream& out, std::ostream& err) {
    auto store = ctx.open_store(store_use(opt.command, {"keygen", "import"}));
    if (!store) return store.error();
    Store& s = **store;
    std::int64_t t = now();
    if (opt.command == "keygen") return make_key(ctx, s, owner_key_purpose, opt.force, out, "an owner");
    if (opt.command == "import") {
        auto text = read_cert_text(opt.file, in);
        if (!text) return text.error();
        auto cert = parse_book(*text);
        if (!cert) return Error{ErrorKind::data, opt.file + ": not a stamp book certificate"};
        if (!book_signature_ok(*cert)) return Error{ErrorKind::data, opt.file + ": the authority's signature does not verify"};
        if (cert->expires <= t) return Error{ErrorKind::data, opt.file + ": the book expired on " + format_time(cert->expires)};
        auto key = owner_key_for(s, cert->owner);
        if (!key) return key.error();
        if (!*key)
            return Error{ErrorKind::data, opt.file + ": the book belongs to owner key " + format_public_key(cert->owner) +
                                              ", not to one of ours (mstamp book keygen)"};
        Book b{cert->id_hex(), cert->text, cert->count, 0, cert->expires, t};
        auto added = s.book_add(b);
        if (!added) return added.error();
        out << (*added ? "imported " : "already imported ") << b.id << ": " << b.count << " stamps until "
            << format_time(b.expires) << '\n';
        ctx.log_event("book_import", {{"book", b.id}, {"count", static_cast<long>(b.count)}, {"new", *added ? "yes" : "no"}});
        return ex_ok;
    }
    if (opt.command == "balance") {
        auto n = book_balance(s, t);
        if (!n) return n.error();
        out << *n << '\n';
        return ex_ok;
    }
    if (opt.command == "list") {
        auto books = s.book_list();
        if (!books) return books.error();
        if (opt.json) out << '[';
        bool first = true;
        for (const auto& b : *books) {
            std::int64_t left = b.expires > t ? b.count - b.next : 0;
            if (opt.json) {
                out << (first ? "" : ",") << "{\"id\":" << json_string(b.id) << ",\"count\":" << b.count
                    << ",\"used\":" << b.next << ",\"left\":" << left << ",\"expires\":" << json_string(format_time(b.expires))
                    << ",\"expired\":" << (b.expires <= t ? "true" : "false") << '}';
            } else {
                out << b.id << "  count " << b.count << "  used " << b.next << "  left " << left << "  expires "
                    << format_time(b.expires) << (b.expires <= t ? " (expired)" : "") << '\n';
            }
            first = false;
        }
        if (opt.json) out << "]\n";
        return ex_ok;
    }
    (void)err;
    return Error{ErrorKind::usage, "book: unknown command '" + opt.command + "'"};
}

Result<int> authority(Context& ctx, const BookOptions& opt, std::ostream& out, std::ostream& err) {
    auto store = ctx.open_store(store_use(opt.command, {"init"}));
    if (!store) return store.error();
    Store& s = **store;
    if (opt.command == "init") return make_key(ctx, s, authority_key_purpose, opt.force, out, "an authority");
    auto key = newest_key(s, authority_key_purpose);
    if (!key) return key.error();
    if (!*key) return Error{ErrorKind::config, "this store has no authority key: run mstamp authority init"};
    if (opt.command == "pubkey") {
        out << "# mailstamp stamp authority key, for mverify --authority-key\n" << format_public_key((*key)->pub) << '\n';
        return ex_ok;
    }
    if (opt.command == "issue") {
        auto owner = parse_public_key(opt.owner);
        if (!owner) return Error{ErrorKind::usage, "--owner '" + opt.owner + "': not a public key (mstamp book keygen prints one)"};
        auto count = parse_count(opt.count);
        if (!count) return count.error();
        std::int64_t t = now();
        auto expires = parse_expiry(opt.expires, t);
        if (!expires) return expires.error();
        if (*expires <= t) return Error{ErrorKind::usage, "--expires: the book would be expired already"};
        auto cert = issue_book(**key, *owner, *count, *expires);
        if (!cert) return cert.error();
        out << cert->text << '\n';
        ctx.log_event("book_issue", {{"book", cert->id_hex()}, {"count", static_cast<long>(*count)}});
        return ex_ok;
    }
    if (opt.command == "serve") {
        SpendServerOptions so;
        so.listen = opt.listen;
        so.max_requests = opt.max_requests;
        so.on_listen = [&err, &ctx](const std::string& a) {
            err << ctx.program << ": spend check listening on " << a << std::endl;
        };
        // Every authority key the store kept: books issued before a key change stay spendable.
        auto secrets = s.secrets(authority_key_purpose);
        if (!secrets) return secrets.error();
        std::vector<KeyPair> keys;
        for (const auto& sec : *secrets) {
            auto pub = ed25519_public(sec.bytes);
            if (!pub) return pub.error();
            keys.push_back(KeyPair{sec.bytes, *pub});
        }
        if (auto r = serve_spend(s, keys, so, err); !r) return r.error();
        return ex_ok;
    }
    return Error{ErrorKind::usage, "authority: unknown command '" + opt.command + "'"};
}

int finish(Context& ctx, Result<int> r) {
    if (r) return *r;
    Error e = r.error();
    return report(ctx.program, e);
}

} // namespace

int run_book(Context& ctx, const BookOptions& opt, std::istream& in, std::ostream& out, std::ostream& err) {
    return finish(ctx, book(ctx, opt, in, out, err));
}

int run_authority(Context& ctx, const BookOptions& opt, std::istream& in, std::ostream& out, std::ostream& err) {
    (void)in;
    return finish(ctx, authority(ctx, opt, out, err));
}

} // namespace mail
