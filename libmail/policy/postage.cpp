// Signed postage: see postage.hpp and mstamp(1).
//
// Book certificate (one line):
//   mailstamp-book-1 id=HEX32 owner=B64 count=N expires=UNIX authority=B64 sig=B64
// signed by the authority over
//   "mailstamp-book-1" 0x00 id(16) owner(32) count(8, big-endian) expires(8, big-endian) authority(32)
// Mailstamp-Postage value (one line, fields in this order, "; " between them), version 2:
//   v=2; b=BASE64(certificate); i=INDEX; r=RECIPIENT; d=UNIX; m=BASE64(Message-ID); h=BASE64(body hash);
//   f=BASE64(header hash); s=BASE64(sig)
// signed by the book's owner over
//   "mailstamp-postage-2" 0x00 id(16) index(8) date(8) len(4)|recipient len(4)|message-id body-hash(32) header-hash(32)
// Version 1 (still read, never written) has no f= and signs
//   "mailstamp-postage-1" 0x00 id(16) index(8) date(8) len(4)|recipient len(4)|message-id body-hash(32)
#include "libmail/policy/postage.hpp"

#include "libmail/base/text.hpp"

#include <openssl/evp.h>
#include <openssl/rand.h>

#include <charconv>
#include <cstring>
#include <fstream>
#include <memory>

namespace mail {

// ---- relaxed header hash ----

namespace {
bool name_is(std::string_view raw, std::string_view name) {
    std::size_t colon = raw.find(':');
    if (colon == std::string_view::npos) return false;
    return iequals(rtrim(raw.substr(0, colon)), name);
}

std::string sha256(std::string_view data) {
    unsigned char d[EVP_MAX_MD_SIZE];
    unsigned n = 0;
    if (EVP_Digest(data.data(), data.size(), d, &n, EVP_sha256(), nullptr) != 1) std::abort();
    return std::string(reinterpret_cast<char*>(d), n);
}
} // namespace

std::string postage_header_hash(const std::vector<std::string_view>& raw_fields) {
    std::string canon;
    for (std::string_view name : postage_signed_fields)
        for (std::string_view raw : raw_fields)
            if (name_is(raw, name)) canon += relaxed_header_field(raw);
    return sha256(canon);
}

// ---- Ed25519 ----

namespace {

using PKey = std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)>;
using MdCtx = std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)>;

const unsigned char* u8(std::string_view s) { return reinterpret_cast<const unsigned char*>(s.data()); }

} // namespace

Result<KeyPair> ed25519_generate() {
    unsigned char seed[32];
    if (RAND_bytes(seed, sizeof seed) != 1) return Error{ErrorKind::tempfail, "random source failed"};
    KeyPair k;
    k.priv.assign(reinterpret_cast<char*>(seed), sizeof seed);
    auto pub = ed25519_public(k.priv);
    if (!pub) return pub.error();
    k.pub = *pub;
    return k;
}

Result<std::string> ed25519_public(std::string_view priv) {
    if (priv.size() != 32) return Error{ErrorKind::data, "an Ed25519 private key is 32 octets"};
    PKey key(EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, nullptr, u8(priv), priv.size()), EVP_PKEY_free);
    if (!key) return Error{ErrorKind::software, "Ed25519 key rejected by OpenSSL"};
    unsigned char pub[32];
    std::size_t n = sizeof pub;
    if (EVP_PKEY_get_raw_public_key(key.get(), pub, &n) != 1 || n != 32)
        return Error{ErrorKind::software, "Ed25519 public key not available"};
    return std::string(reinterpret_cast<char*>(pub), n);
}

Result<std::string> ed25519_sign(std::string_view priv, std::string_view data) {
    if (priv.size() != 32) return Error{ErrorKind::data, "an Ed25519 private key is 32 octets"};
    PKey key(EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, nullptr, u8(priv), priv.size()), EVP_PKEY_free);
    MdCtx ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
    unsigned char sig[64];
    std::size_t n = sizeof sig;
    if (!key || !ctx || EVP_DigestSignInit(ctx.get(), nullptr, nullptr, nullptr, key.get()) != 1 ||
        EVP_DigestSign(ctx.get(), sig, &n, u8(data), data.size()) != 1 || n != 64)
        return Error{ErrorKind::software, "Ed25519 signing failed"};
    return std::string(reinterpret_cast<char*>(sig), n);
}

bool ed25519_verify(std::string_view pub, std::string_view data, std::string_view sig) {
    if (pub.size() != 32 || sig.size() != 64) return false;
    PKey key(EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, nullptr, u8(pub), pub.size()), EVP_PKEY_free);
    MdCtx ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
    if (!key || !ctx || EVP_DigestVerifyInit(ctx.get(), nullptr, nullptr, nullptr, key.get()) != 1) return false;
    return EVP_DigestVerify(ctx.get(), u8(sig), sig.size(), u8(data), data.size()) == 1;
}

namespace {
std::optional<std::int64_t> number(std::string_view s) {
    std::int64_t v = 0;
    if (s.empty() || s.size() > 19 || s[0] == '-' || s[0] == '+') return std::nullopt;
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec != std::errc() || p != s.data() + s.size()) return std::nullopt;
    return v;
}

void be64(std::string& out, std::int64_t v) {
    for (int s = 56; s >= 0; s -= 8) out += static_cast<char>((static_cast<std::uint64_t>(v) >> s) & 0xff);
}

void lp(std::string& out, std::string_view s) {
    std::uint32_t n = static_cast<std::uint32_t>(s.size());
    for (int sh = 24; sh >= 0; sh -= 8) out += static_cast<char>((n >> sh) & 0xff);
    out += s;
}


constexpr std::int64_t max_count = std::int64_t(1) << 31;
} // namespace

std::string format_public_key(std::string_view pub) { return base64_encode(pub); }

std::optional<std::string> parse_public_key(std::string_view text) {
    auto k = base64_decode(trim(text));
    if (!k || k->size() != 32) return std::nullopt;
    return k;
}

Result<std::vector<std::string>> read_public_keys(const std::string& path) {
    std::ifstream in(path);
    if (!in) return Error{ErrorKind::noinput, path + ": cannot read: " + std::strerror(errno)};
    std::vector<std::string> keys;
    std::string line;
    int n = 0;
    while (std::getline(in, line)) {
        ++n;
        if (line.size() > 1024) return Error{ErrorKind::config, path + ":" + std::to_string(n) + ": line too long"};
        if (!line.empty() && line.back() == '\r') line.pop_back();
        std::string_view t = trim(line);
        if (t.empty() || t[0] == '#') continue;
        auto k = parse_public_key(t);
        if (!k) return Error{ErrorKind::config, path + ":" + std::to_string(n) + ": not an Ed25519 public key"};
        keys.push_back(*k);
    }
    if (in.bad()) return Error{ErrorKind::noinput, path + ": read error"};
    return keys;
}

// ---- books ----

std::string BookCert::id_hex() const { return hex_encode(id); }

namespace {
std::string book_signed_bytes(const BookCert& b) {
    std::string s = "mailstamp-book-1";
    s += '\0';
    s += b.id;
    s += b.owner;
    be64(s, b.count);
    be64(s, b.expires);
    s += b.authority;
    return s;
}

std::string book_text(const BookCert& b) {
    return "mailstamp-book-1 id=" + hex_encode(b.id) + " owner=" + base64_encode(b.owner) +
           " count=" + std::to_string(b.count) + " expires=" + std::to_string(b.expires) +
           " authority=" + base64_encode(b.authority) + " sig=" + base64_encode(b.sig);
}
} // namespace

Result<BookCert> issue_book_with_id(const KeyPair& authority, std::string_view owner_pub, std::int64_t count,
                                    std::int64_t expires, std::string_view id) {
    if (owner_pub.size() != 32) return Error{ErrorKind::usage, "the owner's public key must be 32 octets"};
    if (count <= 0 || count > max_count) return Error{ErrorKind::usage, "count must be 1 to 2147483648"};
    if (expires < 0) return Error{ErrorKind::usage, "expiry must not be before 1970"};
    if (id.size() != 16) return Error{ErrorKind::software, "a book id is 16 octets"};
    BookCert b;
    b.id = std::string(id);
    b.owner = std::string(owner_pub);
    b.count = count;
    b.expires = expires;
    b.authority = authority.pub;
    auto sig = ed25519_sign(authority.priv, book_signed_bytes(b));
    if (!sig) return sig.error();
    b.sig = *sig;
    b.text = book_text(b);
    return b;
}

Result<BookCert> issue_book(const KeyPair& authority, std::string_view owner_pub, std::int64_t count,
                            std::int64_t expires) {
    unsigned char id[16];
    if (RAND_bytes(id, sizeof id) != 1) return Error{ErrorKind::tempfail, "random source failed"};
    return issue_book_with_id(authority, owner_pub, count, expires,
                              std::string_view(reinterpret_cast<char*>(id), sizeof id));
}

std::optional<BookCert> parse_book(std::string_view text) {
    text = trim(text);
    if (text.size() > 1024) return std::nullopt;
    constexpr std::string_view magic = "mailstamp-book-1 ";
    if (text.substr(0, magic.size()) != magic) return std::nullopt;
    text.remove_prefix(magic.size());
    static const char* const keys[] = {"id", "owner", "count", "expires", "authority", "sig"};
    std::string_view val[6];
    for (int k = 0; k < 6; ++k) {
        std::size_t sp = text.find(' ');
        std::string_view item = text.substr(0, sp);
        text = sp == std::string_view::npos ? std::string_view() : text.substr(sp + 1);
        std::size_t eq = item.find('=');
        if (eq == std::string_view::npos || item.substr(0, eq) != keys[k]) return std::nullopt;
        val[k] = item.substr(eq + 1);
    }
    if (!text.empty()) return std::nullopt;
    BookCert b;
    auto id = hex_decode(val[0]);
    auto owner = base64_decode(val[1]);
    auto count = number(val[2]);
    auto expires = number(val[3]);
    auto auth = base64_decode(val[4]);
    auto sig = base64_decode(val[5]);
    if (!id || id->size() != 16 || !owner || owner->size() != 32 || !count || *count <= 0 || *count > max_count ||
        !expires || !auth || auth->size() != 32 || !sig || sig->size() != 64)
        return std::nullopt;
    b.id = *id;
    b.owner = *owner;
    b.count = *count;
    b.expires = *expires;
    b.authority = *auth;
    b.sig = *sig;
    b.text = book_text(b);
    return b;
}

bool book_signature_ok(const BookCert& b) { return ed25519_verify(b.authority, book_signed_bytes(b), b.sig); }

// ---- stamps ----

std::string PostageStamp::spend_key() const { return "book:" + book.id_hex() + ":" + std::to_string(index); }

namespace {
std::string stamp_signed_bytes(const PostageStamp& p) {
    std::string s = p.version == 1 ? "mailstamp-postage-1" : "mailstamp-postage-2";
    s += '\0';
    s += p.book.id;
    be64(s, p.index);
    be64(s, p.date);
    lp(s, p.recipient);
    lp(s, p.message_id);
    s += p.body_hash;
    if (p.version != 1) s += p.header_hash;
    return s;
}

// A recipient as it may appear in the header: an addr-spec without controls, spaces or ';'.
bool plain_recipient(std::string_view r) {
    if (r.empty() || r.size() > 320 || r.find('@') == std::string_view::npos) return false;
    for (char c : r)
        if (static_cast<unsigned char>(c) <= ' ' || c == ';' || c == 0x7f) return false;
    return true;
}
} // namespace

Result<std::string> make_postage(const BookCert& book, std::string_view owner_priv, std::int64_t index,
                                 std::string_view recipient, std::int64_t date, std::string_view message_id,
                                 std::string_view body_hash, std::string_view header_hash) {
    if (index < 0 || index >= book.count) return Error{ErrorKind::software, "stamp index outside the book"};
    if (!plain_recipient(recipient)) return Error{ErrorKind::data, "recipient '" + std::string(recipient) + "' cannot be stamped"};
    if (body_hash.size() != 32) return Error{ErrorKind::software, "body hash must be 32 octets"};
    if (header_hash.size() != 32) return Error{ErrorKind::software, "header hash must be 32 octets"};
    if (message_id.size() > 998) return Error{ErrorKind::data, "Message-ID too long to stamp"};
    PostageStamp p;
    p.version = postage_version;
    p.book = book;
    p.index = index;
    p.recipient = std::string(recipient);
    p.date = date;
    p.message_id = std::string(message_id);
    p.body_hash = std::string(body_hash);
    p.header_hash = std::string(header_hash);
    auto sig = ed25519_sign(owner_priv, stamp_signed_bytes(p));
    if (!sig) return sig.error();
    p.sig = *sig;
    return format_postage(p);
}

std::string format_postage(const PostageStamp& p) {
    std::string out = "v=" + std::to_string(p.version == 1 ? 1 : 2) + "; b=" + base64_encode(p.book.text) +
                      "; i=" + std::to_string(p.index) + "; r=" + p.recipient + "; d=" + std::to_string(p.date) +
                      "; m=" + base64_encode(p.message_id) + "; h=" + base64_encode(p.body_hash);
    if (p.version != 1) out += "; f=" + base64_encode(p.header_hash);
    return out + "; s=" + base64_encode(p.sig);
}

std::optional<PostageStamp> parse_postage(std::string_view value) {
    if (value.size() > 8192) return std::nullopt;
    static const char* const keys1[] = {"v", "b", "i", "r", "d", "m", "h", "s"};
    static const char* const keys2[] = {"v", "b", "i", "r", "d", "m", "h", "f", "s"};
    std::string_view val[9];
    std::string_view rest = value;
    int version = 0, n = 9;
    for (int k = 0; k < n; ++k) {
        std::size_t semi = rest.find(';');
        std::string_view item = trim(rest.substr(0, semi));
        rest = semi == std::string_view::npos ? std::string_view() : rest.substr(semi + 1);
        std::size_t eq = item.find('=');
        if (eq == std::string_view::npos) return std::nullopt;
        val[k] = trim(item.substr(eq + 1));
        if (k == 0) {
            if (val[0] == "1") {
                version = 1;
                n = 8;
            } else if (val[0] == "2") {
                version = 2;
            } else {
                return std::nullopt;
            }
        }
        if (trim(item.substr(0, eq)) != (version == 1 ? keys1 : keys2)[k]) return std::nullopt;
        if (k < n - 1 && semi == std::string_view::npos) return std::nullopt;
    }
    if (!trim(rest).empty()) return std::nullopt;
    std::string_view sig_text = val[n - 1];
    auto cert = base64_decode(val[1]);
    if (!cert) return std::nullopt;
    auto book = parse_book(*cert);
    auto index = number(val[2]);
    auto date = number(val[4]);
    auto mid = base64_decode(val[5]);
    auto hash = base64_decode(val[6]);
    std::optional<std::string> fields = version == 1 ? std::optional<std::string>("") : base64_decode(val[7]);
    auto sig = base64_decode(sig_text);
    if (!book || !index || !date || !mid || !hash || hash->size() != 32 || !fields ||
        (version != 1 && fields->size() != 32) || !sig || sig->size() != 64 || !plain_recipient(val[3]))
        return std::nullopt;
    PostageStamp s;
    s.version = version;
    s.book = *book;
    s.index = *index;
    s.recipient = std::string(val[3]);
    s.date = *date;
    s.message_id = *mid;
    s.body_hash = *hash;
    s.header_hash = *fields;
    s.sig = *sig;
    return s;
}

std::string_view to_string(PostageCheck c) {
    switch (c) {
    case PostageCheck::ok: return "ok";
    case PostageCheck::malformed: return "malformed";
    case PostageCheck::untrusted: return "untrusted authority";
    case PostageCheck::bad_book: return "bad book signature";
    case PostageCheck::book_expired: return "book expired";
    case PostageCheck::bad_index: return "index outside the book";
    case PostageCheck::wrong_recipient: return "wrong recipient";
    case PostageCheck::wrong_message: return "wrong message";
    case PostageCheck::wrong_header: return "wrong header";
    case PostageCheck::bad_signature: return "bad signature";
    case PostageCheck::expired: return "expired";
    case PostageCheck::future: return "dated in the future";
    }
    return "malformed";
}

PostageCheck check_stamp_signatures(const PostageStamp& s, const std::vector<std::string>& trusted) {
    bool known = false;
    for (const auto& k : trusted) known = known || k == s.book.authority;
    if (!known) return PostageCheck::untrusted;
    if (!book_signature_ok(s.book)) return PostageCheck::bad_book;
    if (s.index < 0 || s.index >= s.book.count) return PostageCheck::bad_index;
    if (!ed25519_verify(s.book.owner, stamp_signed_bytes(s), s.sig)) return PostageCheck::bad_signature;
    return PostageCheck::ok;
}

PostageCheck check_postage(const PostageStamp& s, std::string_view recipient, std::string_view message_id,
                           std::string_view body_hash, std::string_view header_hash,
                           const std::vector<std::string>& trusted, std::int64_t now) {
    bool known = false;
    for (const auto& k : trusted) known = known || k == s.book.authority;
    if (!known) return PostageCheck::untrusted;
    if (!book_signature_ok(s.book)) return PostageCheck::bad_book;
    if (now > s.book.expires || s.date > s.book.expires) return PostageCheck::book_expired;
    if (s.index < 0 || s.index >= s.book.count) return PostageCheck::bad_index;
    if (!iequals(s.recipient, recipient)) return PostageCheck::wrong_recipient;
    if (s.message_id != message_id || s.body_hash != body_hash) return PostageCheck::wrong_message;
    if (s.version != 1 && s.header_hash != header_hash) return PostageCheck::wrong_header;
    if (!ed25519_verify(s.book.owner, stamp_signed_bytes(s), s.sig)) return PostageCheck::bad_signature;
    if (s.date < now - postage_validity - postage_grace) return PostageCheck::expired;
    if (s.date > now + postage_grace) return PostageCheck::future;
    return PostageCheck::ok;
}

} // namespace mail
