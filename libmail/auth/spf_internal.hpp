// Helpers shared by the SPF sources (spf.cpp, spf_parse.cpp, spf_macro.cpp); not an interface.
#pragma once
#include "libmail/auth/spf.hpp"
#include "libmail/base/text.hpp"

#include <array>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace mail::spf {

/// One piece of a macro-string: a literal character, or a macro (%{...}, %%, %_, %-).
struct MacroToken {
    bool macro = false;
    char letter = 0;          ///< %{letter...}: as written (upper case means URL-escape); 0 for %%, %_, %-
    std::string literal;      ///< the literal character, or what %%, %_, %- stand for
    int keep = 0;             ///< digit transformer (0: all parts)
    bool reverse = false;
    std::string delimiters;   ///< "" means "."
};

/// Splits a macro-string (§7.1) into tokens; kind data on a syntax error. exp allows c, r, t and spaces.
Result<std::vector<MacroToken>> tokenize_macro(std::string_view s, bool exp);

/// A client or network address; an IPv4-mapped IPv6 address is IPv4.
struct Ip {
    bool v6 = false;
    std::array<unsigned char, 16> bytes{};
};

std::optional<Ip> parse_ip(std::string_view text);
/// %{i}: dotted quad, or dot-separated nibbles (lower case) for IPv6.
std::string dotted_ip(const Ip& ip);
/// %{c}: the usual text form (RFC 5952 for IPv6).
std::string printable_ip(const Ip& ip);
/// True when a and b (same family) agree in their first bits bits.
bool cidr_match(const Ip& a, const Ip& b, int bits);

/// A domain-spec ends with a macro or with "." toplabel ["."] (§4.6.1, §12 domain-end).
bool valid_domain_end(std::string_view domain_spec);

} // namespace mail::spf
