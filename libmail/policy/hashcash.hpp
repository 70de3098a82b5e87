// Hashcash version 1 stamps (as minted and checked by hashcash(1)):
//   1:BITS:DATE:RESOURCE:EXT:RAND:COUNTER
// DATE is YYMMDD[hhmm[ss]] in UTC; the stamp is worth BITS when the SHA-1
// of its text starts with at least BITS zero bits. Defaults follow
// hashcash(1): 20 bits, 28 days valid, 2 days grace for clock skew.
#pragma once
#include "libmail/base/error.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace mail {

/// Default bits to mint and to require.
inline constexpr int hashcash_default_bits = 20;
/// How long a stamp stays good, and the allowance for clock skew.
inline constexpr std::int64_t hashcash_validity = 28 * 86400;
inline constexpr std::int64_t hashcash_grace = 2 * 86400;

/// A stamp taken apart.
struct HashcashStamp {
    std::string text;      ///< the whole stamp
    int bits = 0;          ///< the value claimed
    std::int64_t time = 0; ///< DATE as Unix seconds
    std::string resource;
};

/// Parses a version-1 stamp; nothing when malformed.
std::optional<HashcashStamp> parse_hashcash(std::string_view text);
/// Leading zero bits of SHA-1(text).
int hashcash_value(std::string_view text);
/// YYMMDD[hhmm[ss]] (UTC) to Unix seconds.
std::optional<std::int64_t> parse_hashcash_date(std::string_view date);
/// Unix seconds to YYMMDD (UTC), as hashcash(1) writes by default.
std::string format_hashcash_date(std::int64_t t);

/// Outcomes of checking a stamp.
enum class HashcashCheck { ok, malformed, wrong_resource, too_few_bits, expired, future };
/// The word for an outcome.
std::string_view to_string(HashcashCheck c);

/// Checks a stamp for resource (case-insensitive), min_bits and the date window at now.
HashcashCheck check_hashcash(std::string_view text, std::string_view resource, int min_bits, std::int64_t now,
                             std::int64_t validity = hashcash_validity, std::int64_t grace = hashcash_grace);

/// Mints a stamp for resource worth bits, dated now, using threads workers (0: every core).
Result<std::string> mint_hashcash(std::string_view resource, int bits, std::int64_t now, unsigned threads = 0);

} // namespace mail
