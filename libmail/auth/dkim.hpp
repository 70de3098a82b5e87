// DKIM verification (RFC 6376, RFC 8463) and ARC chain validation (RFC
// 8617), with OpenSSL directly: rsa-sha256 (rsa-sha1 is verified too but
// reported as a failure per RFC 8301), ed25519-sha256; simple and relaxed
// canonicalisation; l=, h= with oversigning, several signatures; key records
// with k=, h=, s=, t=y and an empty p= (revoked). ARC shares the
// canonicalisation and the signature code.
//
// Memory stays flat as messages grow: the header section is in memory (it is
// bounded), the body streams through body() once, into one running hash per
// distinct (canonicalisation, hash, l=) among the signatures.
#pragma once
#include "libmail/base/error.hpp"
#include "libmail/io/dns.hpp"
#include "libmail/mail/message.hpp"

#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace mail::dkim {

/// Results (RFC 8601 §2.7.1).
enum class Status { none, pass, fail, policy, neutral, temperror, permerror };

/// The result word ("pass", "fail", ...).
std::string_view to_string(Status s);

/// The result for one DKIM-Signature field.
struct SignatureResult {
    Status status = Status::none;
    std::string domain;      ///< d= (lower-case)
    std::string selector;    ///< s=
    std::string identity;    ///< i= (or "@" + d= when absent)
    std::string algorithm;   ///< a=
    std::string b;           ///< the b= value (for header.b, RFC 6008: a prefix of it)
    bool testing = false;    ///< the key says t=y
    std::string reason;      ///< one line: why it did not pass ("body hash did not verify", "key revoked", ...)
};

/// ARC chain validation result (RFC 8617 §4.2.2 cv).
enum class ArcStatus { none, pass, fail };

/// The ARC result.
struct ArcResult {
    ArcStatus status = ArcStatus::none;
    int instances = 0;                  ///< highest i= seen
    std::string reason;                 ///< why fail
    bool temporary = false;             ///< failed because a key lookup failed temporarily (RFC 8617 has no
                                        ///< temperror for arc: the result says fail, the caller may retry)
    std::string sealer;                 ///< d= of the last (highest instance) ARC-Seal, lower-case
    std::vector<std::string> sealers;   ///< d= of every ARC-Seal, instance 1 first
    std::string sealed_results;         ///< the ARC-Authentication-Results value of the highest instance
                                        ///< (without "i=N;"), as the sealer wrote it
};

/// Options.
struct Options {
    std::size_t max_signatures = 8;   ///< DKIM-Signature fields looked at (the first ones, from the top)
    long long now = 0;                ///< Unix time for x= (expiry); 0: not checked
};

/// Verifies the DKIM signatures and the ARC chain of one message, fed as it is read.
class Verifier {
public:
    /// Set up from the header section (fields as read, in order): parses every DKIM-Signature and
    /// ARC-Message-Signature, and starts the body hashes they need.
    Verifier(const std::vector<HeaderField>& fields, const Options& options = {});
    ~Verifier();
    Verifier(const Verifier&) = delete;
    Verifier& operator=(const Verifier&) = delete;

    /// Body octets as read from the message (LF or CRLF line ends; bare LF is taken as CRLF).
    void body(std::string_view chunk);
    /// The body is complete.
    void end_body();

    /// One result per DKIM-Signature field (top first), after end_body(); looks the keys up through resolver.
    std::vector<SignatureResult> verify(dns::Resolver& resolver);
    /// The ARC chain's result, after end_body(); keys through resolver.
    ArcResult arc(dns::Resolver& resolver);

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

} // namespace mail::dkim
