// RFC 6376 relaxed canonicalisation (DKIM's, used by signed postage): the
// body fed in chunks and hashed with SHA-256, and one header field at a time.
#pragma once
#include <string>
#include <string_view>

namespace mail {

/// RFC 6376 §3.4.4 relaxed body canonicalisation fed in chunks, hashed with SHA-256.
/// LF and CRLF both end a line (a bare LF counts as CRLF), so line-ending rewrites do not change the hash.
class RelaxedBodyHash {
public:
    RelaxedBodyHash();
    ~RelaxedBodyHash();
    RelaxedBodyHash(const RelaxedBodyHash&) = delete;
    RelaxedBodyHash& operator=(const RelaxedBodyHash&) = delete;
    /// Feeds the next octets of the body.
    void update(std::string_view chunk);
    /// The 32-octet digest; the object is spent afterwards.
    std::string finish();

private:
    struct Impl;
    Impl* impl_;
};

/// One raw header field (name, colon, value, folds, line end) under RFC 6376 §3.4.2 relaxed
/// canonicalisation: "name:value" CRLF, name in lowercase, unfolded, whitespace runs one SP, none at the ends.
std::string relaxed_header_field(std::string_view raw);

} // namespace mail
