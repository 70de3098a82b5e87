// Token addresses (DESIGN §6): local<delim>payload@domain, self-checking.
//
// The payload is lowercase base32 (RFC 4648 alphabet, lower case, no padding)
// so an MTA that folds case cannot break it; decoding accepts either case.
// Binary layout, 15 octets (24 characters), or 20 (32) when sender-bound:
//   0      version (high nibble, 1) | flags (low nibble: 1 one-time, 2 sender-bound, 4 postage: a message to
//          the token must carry a hashcash stamp for the token address, msmtp-proxy --unknown token-postage)
//   1      key id (1..255; store key ids wrap modulo 255)
//   2..5   expiry, Unix seconds, big-endian
//   6..8   nonce, random (makes every one-time token distinct)
//   9..13  (sender-bound only) HMAC-SHA256(key, "mailstamp-token-sender" | 0x00 | 0..8 | sender)[0..5)
//   last 6 HMAC-SHA256(key, "mailstamp-token-v1" | 0x00 | all preceding octets | recipient)[0..6)
// where sender and recipient are in the normal form of address.hpp (the
// sender with BATV/SRS tags stripped).
// The 48-bit MAC is compared in constant time. Issued tokens are never stored;
// only used (one-time) and revoked tokens are, until they expire.
#pragma once
#include "libmail/base/error.hpp"
#include "libmail/store/store.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace mail {

/// Flags carried in a token.
namespace token_flag {
inline constexpr std::uint8_t once = 1;
inline constexpr std::uint8_t sender = 2;
inline constexpr std::uint8_t postage = 4;
} // namespace token_flag

/// The outcome of checking a token address.
enum class TokenCheck { ok, invalid, expired, wrong_sender, revoked, used, reserved };

/// The word printed for an outcome ("invalid", "expired", "wrong sender", ...).
std::string_view to_string(TokenCheck c);

/// A token address taken apart (syntax and decoding only; nothing verified).
struct Token {
    std::string local;      ///< the base local part, before the delimiter
    std::string domain;     ///< normalised domain
    std::string payload;    ///< lower case
    std::uint8_t flags = 0;
    int key_byte = 0;
    std::int64_t expires = 0;
    std::string recipient() const;  ///< local@domain, normalised
};

/// What to make.
struct TokenRequest {
    std::string recipient;  ///< the address the token stands for (local@domain)
    std::uint8_t flags = 0;
    std::int64_t expires = 0;
    std::string sender;     ///< for sender-bound tokens
    char delimiter = '+';
};

/// Lowercase base32 (RFC 4648 alphabet, no padding).
std::string base32_encode(std::string_view bytes);
/// Decodes base32 in either case; nothing on a bad character or length.
std::optional<std::string> base32_decode(std::string_view text);

/// Makes a token address with key (its store key id) and nonce bytes (3 octets).
Result<std::string> make_token(const TokenRequest& req, const Secret& key, std::string_view nonce);

/// Takes a token address apart; nothing when it is not shaped like one.
std::optional<Token> parse_token(std::string_view address, char delimiter);

/// Verifies MACs and expiry against keys (no store records consulted).
TokenCheck verify_token(const Token& t, std::string_view sender, const std::vector<Secret>& keys, std::int64_t now);

/// The key byte a store key id is written as.
int key_byte_of(int key_id);

// ---- store-backed operations (mtoken, and later the proxy and filters) ----

/// The purpose under which token secrets are stored.
inline constexpr std::string_view token_secret_purpose = "token";

/// The newest token secret, creating the first one if the store has none.
Result<Secret> current_token_secret(Store& store, std::int64_t now);
/// Adds a new token secret; older ones stay for checking.
Result<int> rotate_token_secret(Store& store, std::int64_t now);

/// Makes a token address with the store's current secret and fresh randomness.
Result<std::string> issue_token(Store& store, TokenRequest req, std::int64_t now);

/// Result of a store-backed check.
struct TokenVerdict {
    TokenCheck check = TokenCheck::invalid;
    std::string recipient;  ///< set when the token parsed
    std::int64_t expires = 0;
};

/// Checks address as a token; with consume, marks a one-time token used atomically.
Result<TokenVerdict> check_token(Store& store, std::string_view address, std::string_view sender, bool consume,
                                 char delimiter, std::int64_t now);

/// Checks address as check_token does and, when it is a good one-time token, reserves it for holder until
/// `until` (store token_reserve): ok with record set to what claiming it will record, or used, revoked or
/// reserved (another transaction holds it). Other tokens are only checked (record stays empty).
Result<TokenVerdict> reserve_token(Store& store, std::string_view address, std::string_view sender,
                                   std::string_view holder, std::int64_t until, char delimiter, std::int64_t now,
                                   std::optional<TokenRecord>& record);

/// Records the token as revoked until it expires; invalid tokens are refused.
Result<TokenVerdict> revoke_token(Store& store, std::string_view address, char delimiter, std::int64_t now);

} // namespace mail
