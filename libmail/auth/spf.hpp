// SPF (RFC 7208): check_host() for the MAIL FROM and HELO identities over
// the project's resolver (io/dns): every mechanism (all, include, a, mx, ptr,
// ip4, ip6, exists) and modifier (redirect, exp, unknown ones ignored),
// macros (§7), the limit of 10 DNS-querying terms and of 2 void lookups
// (§4.6.4), MX/PTR name limits, temperror and permerror as §2.6 says.
// Record parsing and macro expansion are pure, for unit tests and the fuzzer.
#pragma once
#include "libmail/base/error.hpp"
#include "libmail/io/dns.hpp"

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace mail::spf {

/// The results of check_host() (RFC 7208 §2.6).
enum class SpfResult { none, neutral, pass, fail, softfail, temperror, permerror };

/// The result word as RFC 7208 and RFC 8601 spell it ("pass", "softfail", ...).
std::string_view to_string(SpfResult r);

/// What check_host() is asked.
struct Query {
    std::string ip;        ///< the client's numeric address (IPv4, IPv6, or IPv4-mapped IPv6)
    std::string helo;      ///< the HELO/EHLO name as given
    std::string sender;    ///< the MAIL FROM address ("" for the null sender)
    std::string receiver = "unknown";  ///< %{r}: our host name
};

/// The outcome of one check.
struct Outcome {
    SpfResult result = SpfResult::none;
    std::string domain;       ///< the domain checked (the sender's, or the HELO name)
    std::string identity;     ///< "mailfrom" or "helo"
    std::string mechanism;    ///< the term that matched ("ip4:192.0.2.0/24", "default" when none did)
    std::string explanation;  ///< fail: the expanded exp= text when there is one and it worked, else
                              ///< "" ; temperror/permerror: what went wrong, one line
    int lookups = 0;          ///< DNS-querying terms evaluated
    int void_lookups = 0;
};

/// check_host(ip, domain, sender) (§4): the full evaluation. Never throws; every DNS failure is temperror,
/// every syntax or limit error permerror.
Outcome check_host(dns::Resolver& resolver, const Query& q, std::string_view domain, std::string_view sender);

/// The MAIL FROM identity (§2.4): the sender's domain; for the null sender, postmaster@HELO. A sender or
/// HELO that is not a domain name (§4.3) gives none.
Outcome check_mailfrom(dns::Resolver& resolver, const Query& q);

/// The HELO identity (§2.3): postmaster@HELO; an address literal or a name that is not a FQDN gives none.
Outcome check_helo(dns::Resolver& resolver, const Query& q);

// ---- pure parts ----

/// One term of a record.
struct Term {
    enum class Kind { mechanism, modifier } kind = Kind::mechanism;
    char qualifier = '+';   ///< '+', '-', '~', '?' (mechanisms)
    std::string name;       ///< lower-case: "all", "include", "a", "mx", "ptr", "ip4", "ip6", "exists",
                            ///< "redirect", "exp", or an unknown modifier's name
    std::string domain_spec;  ///< the macro-string after ':' or '=' (may be empty)
    int cidr4 = -1;         ///< "/n" on a, mx, ip4; -1 when absent
    int cidr6 = -1;         ///< "//n" on a, mx, ip6; -1 when absent
};

/// A parsed "v=spf1 ..." record: its terms, in order. Kind data (a permerror) for a syntax error (§4.6):
/// an unknown mechanism, a bad CIDR length, a repeated redirect= or exp=, a malformed macro-string.
Result<std::vector<Term>> parse_record(std::string_view record);

/// True when txt starts a record of version 1 ("v=spf1" then a space or its end, case-insensitive).
bool is_spf_record(std::string_view txt);

/// What macros expand to (§7.2).
struct MacroContext {
    std::string sender;    ///< %{s}: the sender address (postmaster@helo for the null sender)
    std::string domain;    ///< %{d}: the current domain
    std::string ip;        ///< %{i}, %{c}, %{v}: the client address
    std::string helo;      ///< %{h}
    std::string receiver;  ///< %{r} (exp only)
    std::string validated; ///< %{p}: the validated name ("unknown" when none); filled lazily by the caller
    long long timestamp = 0;  ///< %{t} (exp only)
};

/// Expands a macro-string (§7); exp selects the explanation-only letters c, r, t. Kind data for a syntax
/// error (an unknown letter, a lone '%', a bad transformer). The result is not checked as a domain.
Result<std::string> expand(std::string_view macro_string, const MacroContext& ctx, bool exp = false);

} // namespace mail::spf
