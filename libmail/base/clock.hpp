// Time: the one place programs read the clock, and ISO 8601 formatting.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace mail {

/// Seconds since the epoch. MAILSTAMP_TEST_NOW (an integer), when set,
/// replaces the clock so tests of expiry need no sleeping.
std::int64_t now();

/// UTC time as 2026-11-22T10:00:00Z; "" for 0.
std::string format_time(std::int64_t t);

/// The time as an RFC 5322 date in UTC: "Tue, 01 Dec 2026 21:48:25 +0000".
std::string rfc5322_date(std::int64_t t);

/// Parses 2026-11-22T10:00:00Z, 2026-11-22 (midnight UTC) or plain epoch seconds.
std::optional<std::int64_t> parse_time(std::string_view s);

} // namespace mail
