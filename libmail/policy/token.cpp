// Token addresses: see token.hpp for the format.
#include "libmail/policy/token.hpp"

#include "libmail/mail/address.hpp"
#include "libmail/base/limits.hpp"
#include "libmail/base/text.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include <algorithm>

namespace mail {

namespace {

constexpr std::string_view alphabet = "abcdefghijklmnopqrstuvwxyz234567";
constexpr std::size_t head_len = 9;     // version/flags, key, expiry, nonce
constexpr std::size_t sender_len = 5;   // sender MAC
constexpr std::size_t mac_len = 6;      // 48-bit MAC (DESIGN §6: at least 40)
constexpr std::size_t secret_len = 32;

std::string hmac(std::string_view key, std::string_view label, std::string_view a, std::string_view b) {
    std::string msg;
    msg.reserve(label.size() + 1 + a.size() + b.size());
    msg.append(label);
    msg.push_back('\0');
    msg.append(a);
    msg.append(b);
    unsigned char out[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()), reinterpret_cast<const unsigned char*>(msg.data()),
         msg.size(), out, &n);
    return std::string(reinterpret_cast<char*>(out), n);
}

bool equal_ct(std::string_view a, std::string_view b) {
    return a.size() == b.size() && CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

// Normalised form used inside MACs and records: see address.hpp.
std::string norm_addr(std::string_view s, bool strip_tags) {
    auto a = parse_addr_spec(s);
    if (!a) {
        return lower(s);
    }
    return normalize_address(strip_tags ? strip_sender_tags(*a) : *a);
}

const Secret* find_key(const std::vector<Secret>& keys, int key_byte) {
    for (const auto& k : keys)  // newest first: a wrapped key byte means the newest key
        if (key_byte_of(k.key_id) == key_byte) return &k;
    return nullptr;
}

} // namespace

std::string_view to_string(TokenCheck c) {
    switch (c) {
    case TokenCheck::ok: return "ok";
    case TokenCheck::invalid: return "invalid";
    case TokenCheck::expired: return "expired";
    case TokenCheck::wrong_sender: return "wrong sender";
    case TokenCheck::revoked: return "revoked";
    case TokenCheck::used: return "used";
    case TokenCheck::reserved: return "reserved";
    }
    return "invalid";
}

std::string Token::recipient() const { return local + "@" + domain; }

int key_byte_of(int key_id) { return ((key_id - 1) % 255 + 255) % 255 + 1; }

std::string base32_encode(std::string_view bytes) {
    std::string out;
    unsigned buffer = 0;
    int bits = 0;
    for (unsigned char c : bytes) {
        buffer = (buffer << 8) | c;
        bits += 8;
        while (bits >= 5) {
            out.push_back(alphabet[(buffer >> (bits - 5)) & 31]);
            bits -= 5;
        }
    }
    if (bits > 0) out.push_back(alphabet[(buffer << (5 - bits)) & 31]);
    return out;
}

std::optional<std::string> base32_decode(std::string_view text) {
    std::string out;
    unsigned buffer = 0;
    int bits = 0;
    for (char ch : text) {
        char c = lower(ch);
        auto pos = alphabet.find(c);
        if (pos == std::string_view::npos) return std::nullopt;
        buffer = (buffer << 5) | static_cast<unsigned>(pos);
        bits += 5;
        if (bits >= 8) {
            out.push_back(static_cast<char>((buffer >> (bits - 8)) & 0xff));
            bits -= 8;
        }
    }
    // Leftover bits must be zero padding, else the text is not canonical:
    // two spellings of one token would get two consumption records.
    if (bits >= 5 || (buffer & ((1u << bits) - 1)) != 0) return std::nullopt;
    return out;
}

Result<std::string> make_token(const TokenRequest& req, const Secret& key, std::string_view nonce) {
    auto a = parse_addr_spec(req.recipient);
    if (!a) return Error{ErrorKind::data, "recipient " + req.recipient + ": " + a.error().text};
    if (nonce.size() < 3) return Error{ErrorKind::software, "token nonce too short"};
    if (req.expires <= 0 || req.expires > 0xffffffffLL) return Error{ErrorKind::usage, "token expiry out of range"};
    if ((req.flags & token_flag::sender) && req.sender.empty())
        return Error{ErrorKind::usage, "a sender-bound token needs a sender"};
    if (key.bytes.size() < 16) return Error{ErrorKind::software, "token secret too short"};
    // A token address must itself be a plain address: no quoted local parts.
    if (normalize_local(a->local).front() == '"' || !is_valid_domain(a->domain))
        return Error{ErrorKind::data, "recipient " + req.recipient + ": not a plain address"};
    std::string recipient = normalize_address(*a);

    std::string bin;
    bin.push_back(static_cast<char>(0x10 | (req.flags & 0x0f)));
    bin.push_back(static_cast<char>(key_byte_of(key.key_id)));
    auto e = static_cast<std::uint32_t>(req.expires);
    for (int shift = 24; shift >= 0; shift -= 8) bin.push_back(static_cast<char>((e >> shift) & 0xff));
    bin.append(nonce.substr(0, 3));
    if (req.flags & token_flag::sender)
        bin.append(hmac(key.bytes, "mailstamp-token-sender", bin, norm_addr(req.sender, true)).substr(0, sender_len));
    bin.append(hmac(key.bytes, "mailstamp-token-v1", bin, recipient).substr(0, mac_len));

    std::string local = a->local;
    std::string addr = local + req.delimiter + base32_encode(bin);
    if (addr.size() > limits::local_part_length)
        return Error{ErrorKind::data, "token local part for " + recipient + " would exceed " +
                                          std::to_string(limits::local_part_length) + " octets"};
    return addr + "@" + a->domain;
}

std::optional<Token> parse_token(std::string_view address, char delimiter) {
    auto a = parse_addr_spec(address);
    if (!a) return std::nullopt;
    std::string local = a->local;
    auto d = local.rfind(delimiter);
    if (d == std::string::npos || d == 0) return std::nullopt;
    std::string payload = local.substr(d + 1);
    if (payload.size() != 24 && payload.size() != 32) return std::nullopt;
    auto bin = base32_decode(payload);
    if (!bin) return std::nullopt;
    auto u = [&](std::size_t i) { return static_cast<unsigned char>((*bin)[i]); };
    if ((u(0) >> 4) != 1) return std::nullopt;
    Token t;
    t.flags = u(0) & 0x0f;
    std::size_t want = head_len + mac_len + ((t.flags & token_flag::sender) ? sender_len : 0);
    if (bin->size() != want || (t.flags & ~(token_flag::once | token_flag::sender | token_flag::postage)))
        return std::nullopt;
    t.key_byte = u(1);
    t.expires = (std::int64_t{u(2)} << 24) | (u(3) << 16) | (u(4) << 8) | u(5);
    t.local = normalize_local(local.substr(0, d));
    t.domain = normalize_domain(a->domain);
    t.payload = lower(payload);
    return t;
}

TokenCheck verify_token(const Token& t, std::string_view sender, const std::vector<Secret>& keys, std::int64_t now) {
    auto bin = base32_decode(t.payload);
    if (!bin) return TokenCheck::invalid;
    const Secret* key = find_key(keys, t.key_byte);
    if (!key) return TokenCheck::invalid;
    std::string_view b = *bin;
    std::string_view signed_part = b.substr(0, b.size() - mac_len);
    std::string mac = hmac(key->bytes, "mailstamp-token-v1", signed_part, t.recipient()).substr(0, mac_len);
    if (!equal_ct(mac, b.substr(b.size() - mac_len))) return TokenCheck::invalid;
    if (t.expires < now) return TokenCheck::expired;
    if (t.flags & token_flag::sender) {
        if (sender.empty()) return TokenCheck::wrong_sender;
        std::string want = hmac(key->bytes, "mailstamp-token-sender", b.substr(0, head_len), norm_addr(sender, true))
                               .substr(0, sender_len);
        if (!equal_ct(want, b.substr(head_len, sender_len))) return TokenCheck::wrong_sender;
    }
    return TokenCheck::ok;
}

Result<Secret> current_token_secret(Store& store, std::int64_t now) {
    auto keys = store.secrets(token_secret_purpose);
    if (!keys) return keys.error();
    if (!keys->empty()) return keys->front();
    auto id = rotate_token_secret(store, now);
    if (!id) return id.error();
    auto again = store.secrets(token_secret_purpose);
    if (!again) return again.error();
    if (again->empty()) return Error{ErrorKind::software, "token secret vanished after creation"};
    return again->front();
}

Result<int> rotate_token_secret(Store& store, std::int64_t now) {
    unsigned char buf[secret_len];
    if (RAND_bytes(buf, sizeof buf) != 1) return Error{ErrorKind::tempfail, "random source failed"};
    return store.secret_add(token_secret_purpose, std::string_view(reinterpret_cast<char*>(buf), sizeof buf), now);
}

Result<std::string> issue_token(Store& store, TokenRequest req, std::int64_t now) {
    auto key = current_token_secret(store, now);
    if (!key) return key.error();
    unsigned char nonce[3];
    if (RAND_bytes(nonce, sizeof nonce) != 1) return Error{ErrorKind::tempfail, "random source failed"};
    return make_token(req, *key, std::string_view(reinterpret_cast<char*>(nonce), sizeof nonce));
}

namespace {

Result<TokenVerdict> verify_with_store(Store& store, std::string_view address, std::string_view sender, char delimiter,
                                       std::int64_t now, std::optional<Token>& t) {
    TokenVerdict v;
    t = parse_token(address, delimiter);
    if (!t) return v;
    v.recipient = t->recipient();
    v.expires = t->expires;
    auto keys = store.secrets(token_secret_purpose);
    if (!keys) return keys.error();
    v.check = verify_token(*t, sender, *keys, now);
    if (v.check == TokenCheck::invalid) v.recipient.clear();
    return v;
}

TokenCheck check_of(TokenState s) {
    switch (s) {
    case TokenState::revoked: return TokenCheck::revoked;
    case TokenState::reserved: return TokenCheck::reserved;
    case TokenState::used: break;
    }
    return TokenCheck::used;
}

} // namespace

Result<TokenVerdict> reserve_token(Store& store, std::string_view address, std::string_view sender,
                                   std::string_view holder, std::int64_t until, char delimiter, std::int64_t now,
                                   std::optional<TokenRecord>& record) {
    record.reset();
    std::optional<Token> t;
    auto v = verify_with_store(store, address, sender, delimiter, now, t);
    if (!v || v->check != TokenCheck::ok) return v;
    if (!(t->flags & token_flag::once)) return check_token(store, address, sender, false, delimiter, now);
    TokenRecord r{t->payload, TokenState::used, t->recipient(), t->expires, now};
    auto prior = store.token_reserve(r, holder, until);
    if (!prior) return prior.error();
    if (prior->has_value()) v->check = check_of(**prior);
    else record = r;
    return v;
}

Result<TokenVerdict> check_token(Store& store, std::string_view address, std::string_view sender, bool consume,
                                 char delimiter, std::int64_t now) {
    std::optional<Token> t;
    auto v = verify_with_store(store, address, sender, delimiter, now, t);
    if (!v || v->check != TokenCheck::ok) return v;
    if (consume && (t->flags & token_flag::once)) {
        TokenRecord r{t->payload, TokenState::used, t->recipient(), t->expires, now};
        auto prior = store.token_consume(r);
        if (!prior) return prior.error();
        if (prior->has_value()) v->check = check_of(**prior);
        return v;
    }
    auto rec = store.token_get(t->payload);
    if (!rec) return rec.error();
    if (rec->has_value()) {
        if ((*rec)->state == TokenState::revoked) v->check = TokenCheck::revoked;
        else if (t->flags & token_flag::once) v->check = TokenCheck::used;
    }
    return v;
}

Result<TokenVerdict> revoke_token(Store& store, std::string_view address, char delimiter, std::int64_t now) {
    std::optional<Token> t;
    auto v = verify_with_store(store, address, {}, delimiter, now, t);
    if (!v) return v;
    // A sender-bound token is genuine if its recipient MAC holds; the sender
    // does not matter for revoking it.
    if (v->check == TokenCheck::wrong_sender) v->check = TokenCheck::ok;
    if (v->check != TokenCheck::ok) return v;
    TokenRecord r{t->payload, TokenState::revoked, t->recipient(), t->expires, now};
    if (auto w = store.token_revoke(r); !w) return w.error();
    return v;
}

} // namespace mail
