// DMARC (RFC 7489): policy discovery (the From domain, then its
// organizational domain from the Public Suffix List through libpsl and
// Debian's publicsuffix data), record parsing (p, sp, pct, adkim, aspf, and
// the rest kept), and identifier alignment (relaxed and strict) of the SPF
// and DKIM results against the RFC5322.From domain.
#pragma once
#include "libmail/auth/dkim.hpp"
#include "libmail/auth/spf.hpp"
#include "libmail/base/error.hpp"
#include "libmail/io/dns.hpp"

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace mail::dmarc {

/// The organizational domain of a (lower-case) domain name (RFC 7489 §3.2): the registrable domain by the
/// Public Suffix List; the name itself when the list knows nothing better.
std::string organizational_domain(std::string_view domain);

/// A parsed DMARC record.
struct Record {
    std::string p;            ///< "none", "quarantine", "reject"
    std::string sp;           ///< for subdomains; "" when absent (p applies)
    int pct = 100;
    bool strict_dkim = false; ///< adkim=s
    bool strict_spf = false;  ///< aspf=s
};

/// Parses "v=DMARC1; p=...; ..." (§6.3): kind data when it is not a valid DMARC record (no v=DMARC1 first,
/// no valid p=). Unknown tags are ignored; bad values of known optional tags take their defaults (§6.3).
Result<Record> parse_record(std::string_view txt);

/// Results (RFC 8601 / RFC 7489 §11.2).
enum class Status { none, pass, fail, temperror, permerror };

/// The result word.
std::string_view to_string(Status s);

/// The outcome of the DMARC check of one message.
struct Outcome {
    Status status = Status::none;
    std::string from_domain;        ///< header.from
    std::string policy_domain;      ///< where the record was found ("" : none)
    std::optional<Record> record;
    std::string policy;             ///< the policy that applies: p, or sp for a subdomain; "" when none
    bool spf_aligned = false;       ///< SPF pass for an aligned MAIL FROM domain
    bool dkim_aligned = false;      ///< a DKIM pass for an aligned d=
    std::string reason;             ///< one line
};

/// Checks the message whose single RFC5322.From domain is from_domain against the SPF (MAIL FROM) result
/// and the DKIM results. A From with zero or several domains is a permerror (§6.6.1) — the caller passes ""
/// for that. DNS failures while finding the record are temperror.
Outcome check(dns::Resolver& resolver, std::string_view from_domain, const spf::Outcome& spf_mailfrom,
              const std::vector<dkim::SignatureResult>& dkim);

/// True when the two domains are aligned: equal (strict), or with the same organizational domain (relaxed).
bool aligned(std::string_view a, std::string_view b, bool strict);

} // namespace mail::dmarc
