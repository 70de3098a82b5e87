// The one set of small ASCII text helpers every part of libmail uses.
//
// - lower(): ASCII letters A-Z folded to a-z; every other octet (UTF-8 too)
//   unchanged, whatever the locale.
// - trim(): SP, HTAB, CR and LF taken off both ends (never from inside);
//   rtrim() the same at the end only.
// - iequals()/istarts_with(): equality and prefix ignoring ASCII case only.
// - scrub(): untrusted text made safe for an SMTP reply, a header field we
//   write, a diagnostic or a log line: HTAB becomes SP, every other C0
//   control (CR and LF above all) and DEL becomes '?', octets >= 0x80 (UTF-8)
//   are kept. Optionally bounded to max octets in all: cut at a character
//   boundary, "..." marks the cut (so scrub(scrub(s, n), n) == scrub(s, n)). (Structured log values are escaped reversibly by log.hpp.)
#pragma once
#include <cstddef>
#include <string>
#include <string_view>

namespace mail {

/// c with A-Z folded to a-z; every other octet unchanged.
constexpr char lower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

/// s with A-Z folded to a-z; every other octet (UTF-8 included) unchanged.
std::string lower(std::string_view s);

/// True for the octets trim() removes: SP, HTAB, CR, LF.
constexpr bool is_trim_space(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

/// s without leading and trailing SP, HTAB, CR and LF.
std::string_view trim(std::string_view s);

/// s without trailing SP, HTAB, CR and LF (where leading white space matters).
std::string_view rtrim(std::string_view s);

/// True when a and b are equal ignoring ASCII case.
bool iequals(std::string_view a, std::string_view b);

/// True when s starts with prefix, ignoring ASCII case.
bool istarts_with(std::string_view s, std::string_view prefix);

/// True for a C0 control (0x00-0x1F) or DEL (0x7F).
constexpr bool is_control(char c) { return static_cast<unsigned char>(c) < 0x20 || c == 0x7f; }

/// True when s holds a C0 control or DEL (HTAB, CR and LF included).
bool has_control(std::string_view s);

/// The largest cut <= n (n < s.size()) that leaves no UTF-8 sequence half: backs off at most 3 continuation octets.
std::size_t utf8_cut(std::string_view s, std::size_t n);

/// No limit for scrub().
inline constexpr std::size_t unbounded = std::string_view::npos;

/// s on one line for a reply, header field or log line: HTAB → SP, other controls and DEL → '?',
/// octets >= 0x80 kept; longer than max octets: cut at a UTF-8 boundary, "..." added, at most max in all.
std::string scrub(std::string_view s, std::size_t max = unbounded);

} // namespace mail
