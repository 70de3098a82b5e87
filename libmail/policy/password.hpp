// Password hashes for SMTP AUTH users (msmtp-proxy): scrypt (RFC 7914) under
// a random salt, slow on purpose, written as one line of text:
//   $scrypt$ln=L,r=R,p=P$SALT$HASH
// L is log2 of the cost N, R the block size, P the parallelism; SALT (16
// octets) and HASH (32 octets, the scrypt output) are standard base64
// (RFC 4648 §4) with padding, the encoding of postage.hpp, canonical only.
// Anything else (another field order, leading zeros, a parameter outside
// ln 10..20, r 1..16, p 1..4, another salt or hash length) is malformed:
// the bounds keep a hash planted in the store from costing unbounded memory
// or time (ln=20, r=16 is 2 GiB, refused by most systems, and so false).
#pragma once
#include "libmail/base/error.hpp"

#include <cstddef>
#include <string>
#include <string_view>

namespace mail {

/// The cost hash_password uses by default: N = 2^14, 16 MiB and some tens of milliseconds.
inline constexpr int password_default_log2_n = 14;

/// Hashes password with scrypt under a fresh 16-octet random salt (RAND_bytes): "$scrypt$ln=14,r=8,p=1$<salt b64>$<hash b64>", 32-octet hash; kind usage for log2_n outside 10..20, tempfail if OpenSSL fails.
Result<std::string> hash_password(std::string_view password, int log2_n = password_default_log2_n);

/// True when password matches hash (the parameters are read from hash, bounded: ln 10..20, r 1..16, p 1..4); compared in constant time (CRYPTO_memcmp); false for a malformed hash.
bool verify_password(std::string_view password, std::string_view hash);

/// At most n password hashes (hash_password, verify_password) run at once in this process, the others wait
/// their turn: memory stays flat however many clients try passwords together. 0: no bound; default
/// limits::auth_hashes.
void set_password_hash_limit(std::size_t n);

} // namespace mail
