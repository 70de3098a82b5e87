// Sender authentication of one message, all methods together: SPF for the
// MAIL FROM and HELO identities, DKIM per signature, DMARC, and ARC for the
// sealers the site trusts; or the results of a trusted upstream
// (Authentication-Results under a listed authserv-id). The admission core
// (policy/admission) asks what is authenticated; the front ends print the
// results as RFC 8601 method results under our authserv-id.
#pragma once
#include "libmail/auth/dkim.hpp"
#include "libmail/auth/dmarc.hpp"
#include "libmail/auth/spf.hpp"
#include "libmail/io/dns.hpp"
#include "libmail/mail/message.hpp"

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace mail::auth {

/// The SMTP client of a message: "" where unknown.
struct Client {
    std::string ip;
    std::string helo;
};

/// The site's settings for authentication.
struct Settings {
    std::vector<std::string> trusted_authserv_ids;  ///< whose Authentication-Results are taken as they are
    std::vector<std::string> trusted_arc_sealers;   ///< domains whose ARC seals count (mailing lists, forwarders)
    std::vector<std::string> trusted_relays;        ///< addresses or CIDR blocks whose Received fields are believed
    std::string receiver = "unknown";               ///< our host name, for SPF's %{r}
    long long now = 0;                              ///< Unix time (DKIM x=), 0: not checked
};

/// Everything known about the authentication of one message.
struct Results {
    bool spf_checked = false;           ///< false: no client known, SPF was not evaluated by us
    spf::Outcome spf_mailfrom;          ///< identity "mailfrom"
    spf::Outcome spf_helo;              ///< identity "helo"
    std::vector<dkim::SignatureResult> dkim;
    dmarc::Outcome dmarc;
    dkim::ArcResult arc;
    bool arc_trusted = false;           ///< arc pass, the last sealer trusted, its sealed results say dmarc=pass
    bool arc_temporary = false;         ///< the chain of a trusted last sealer could not be checked (DNS)
    std::string upstream;               ///< the trusted authserv-id these results came from; "" : checked here
    std::string mail_from;              ///< the envelope sender they were computed for
    std::string from_domain;            ///< the single RFC5322.From domain; "" when none or several

    /// SPF (MAIL FROM) passed for exactly this domain.
    bool spf_pass(std::string_view domain) const;
    /// A DKIM signature with d= equal to domain passed (testing keys count as not passed).
    bool dkim_pass(std::string_view domain) const;
    /// DMARC passed for the From domain, or a trusted ARC chain says it did upstream.
    bool dmarc_pass() const;
    /// Any result that is temperror, where a retry may change the decision (SPF MAIL FROM, DKIM, DMARC).
    bool temporary() const;
    /// RFC 8601 method results, one per element: "spf=pass smtp.mailfrom=a@example.org",
    /// "dkim=pass header.d=example.org header.s=sel header.b=abcdefgh", "dmarc=pass header.from=example.org",
    /// "arc=pass" (with reasons as comments, ptypes as RFC 8601 §2.7 registers them).
    std::vector<std::string> method_results() const;
};

/// The client from the topmost Received field (RFC 5321 §4.4 "from ... ([ip])" forms of Postfix, Sendmail,
/// Exim) written by a trusted relay: the field is believed only when it is the topmost, or every field above
/// it was added by a trusted relay. Nothing when there is no such field.
std::optional<Client> client_from_received(const std::vector<HeaderField>& fields,
                                           const std::vector<std::string>& trusted_relays);

/// Results taken from the topmost Authentication-Results field whose authserv-id is trusted (RFC 8601
/// parsing: comments, quoted strings, ptype.property=value); nothing when there is none.
std::optional<Results> upstream_results(const std::vector<HeaderField>& fields, const Settings& settings);

// ---- RFC 8601 parsing (pure, for tests and ARC's sealed results) ----

/// One resinfo of an Authentication-Results field: "method[/version]=result [reason=...] ptype.property=value...".
struct MethodResult {
    std::string method;   ///< lower-case ("spf", "dkim", ...)
    std::string version;  ///< the method version, "" when absent
    std::string result;   ///< lower-case
    std::string reason;   ///< the reason= value, "" when absent
    std::vector<std::pair<std::string, std::string>> properties;  ///< "ptype.property" (lower-case) and value
    std::vector<std::string> comments;  ///< the comments inside this resinfo, without their parentheses
    /// The first value of "ptype.property" (lower-case), "" when absent.
    std::string property(std::string_view name) const;
};

/// One parsed Authentication-Results field value.
struct AuthResults {
    std::string authserv_id;
    int version = 1;
    std::vector<MethodResult> results;  ///< empty for "none"
};

/// Parses the value of an Authentication-Results (or ARC-Authentication-Results, "i=N;" first) field
/// (RFC 8601 §2.2): comments and quoted strings anywhere CFWS is allowed, a version, "none". A resinfo
/// that does not parse is skipped up to the next ';'; nothing when there is no authserv-id or the
/// version is not 1 (§2.2: unknown versions are ignored).
std::optional<AuthResults> parse_authentication_results(std::string_view value);

/// What a domain publishes: an SPF record, a DMARC record (its own or its organizational domain's).
struct Publishes {
    bool spf = false;
    bool dmarc = false;
    bool temporary = false;  ///< a lookup failed temporarily: the answer is unknown
};
/// Looks up what domain publishes.
Publishes publishes(dns::Resolver& resolver, std::string_view domain);

/// SPF alone at MAIL time (the proxy): the MAIL FROM identity, then HELO when MAIL FROM is the null sender.
spf::Outcome spf_at_mail(dns::Resolver& resolver, const Client& client, std::string_view mail_from,
                         const Settings& settings);

/// Checks one message, fed as it is read: the header section at construction, then the body.
class Checker {
public:
    Checker(dns::Resolver& resolver, const Settings& settings, const std::vector<HeaderField>& fields);
    ~Checker();
    Checker(const Checker&) = delete;
    Checker& operator=(const Checker&) = delete;
    /// Body octets as read.
    void body(std::string_view chunk);
    /// All results: SPF when client.ip is known (else spf_checked false), DKIM, ARC, DMARC; or a trusted
    /// upstream's results when the message carries them and no client is known. spf may pass an outcome
    /// already computed at MAIL time (the proxy) so it is not asked twice.
    Results finish(const Client& client, std::string_view mail_from,
                   const std::optional<spf::Outcome>& spf = std::nullopt);

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

} // namespace mail::auth
