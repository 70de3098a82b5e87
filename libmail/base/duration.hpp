// Durations as written in options and the config file: "90", "10m", "10d",
// "1d12h". Units s m h d w (lower case); each at most once, largest first; a
// bare number means seconds and must stand alone.
#pragma once
#include "libmail/base/error.hpp"

#include <cstdint>
#include <string>
#include <string_view>

namespace mail {

/// Seconds in "1d12h"-style text; kind usage on junk, a sign, or int64 overflow (callers re-kind).
Result<std::int64_t> parse_duration(std::string_view text);

/// Shortest text parse_duration reads back as `seconds`: 0 → "0s", 864000 → "10d", 1209600 → "2w".
std::string format_duration(std::int64_t seconds);

/// Octets in "1048576", "64K", "100M", "1G" (binary units, either case); kind usage on junk, a sign, or overflow.
Result<std::int64_t> parse_size(std::string_view text);

} // namespace mail
