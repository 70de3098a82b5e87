// Internals of the DKIM and ARC verifier shared by its files (dkim.cpp,
// dkim_tags.cpp, dkim_canon.cpp, dkim_key.cpp, arc.cpp): tag lists (RFC 6376
// §3.2), canonicalisation (§3.4), the running body hashes, key records (§3.6.1)
// and the signature check. Not for use outside libmail/auth.
#pragma once
#include "libmail/auth/dkim.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

typedef struct evp_md_ctx_st EVP_MD_CTX;
typedef struct evp_md_st EVP_MD;

namespace mail::dkim::detail {

/// One tag=value of a tag list, with where its value sits in the parsed text.
struct Tag {
    std::string name;
    std::string value;            ///< unfolded, outer whitespace removed
    std::size_t value_begin = 0;  ///< offset of the first octet after '='
    std::size_t value_end = 0;    ///< offset of the ';' ending it, or the end of the text
};
using Tags = std::vector<Tag>;

/// Parses a tag list (RFC 6376 §3.2); nullopt (with why) on a syntax error or a duplicate tag.
std::optional<Tags> parse_tags(std::string_view text, std::string* why = nullptr);
/// The value of tag name, or nullptr.
const std::string* find_tag(const Tags& tags, std::string_view name);
/// value with every whitespace octet (SP, HTAB, CR, LF) removed (b=, bh=, p=).
std::string strip_ws(std::string_view value);

/// One raw header field canonicalised for hashing (with its CRLF).
std::string canon_header(std::string_view raw, bool relaxed);

/// A running body hash: canonicalisation (§3.4.3, §3.4.4), then at most limit octets (l=) into the digest.
class BodyHash {
public:
    BodyHash(bool relaxed, const EVP_MD* md, long long limit);
    ~BodyHash();
    BodyHash(const BodyHash&) = delete;
    BodyHash& operator=(const BodyHash&) = delete;
    void update(std::string_view chunk);
    void finish();
    bool relaxed() const { return relaxed_; }
    const EVP_MD* md() const { return md_; }
    long long limit() const { return limit_; }
    const std::string& digest() const { return digest_; }
    /// Canonical octets in all (not only those hashed).
    std::uint64_t length() const { return total_; }

private:
    void put(const char* p, std::size_t n);
    void end_line();
    void text(char c);
    bool relaxed_;
    const EVP_MD* md_;
    long long limit_;
    EVP_MD_CTX* ctx_ = nullptr;
    std::uint64_t total_ = 0;
    std::uint64_t empty_lines_ = 0;
    bool line_has_text_ = false;
    bool pending_space_ = false;
    bool cr_ = false;
    bool done_ = false;
    std::string digest_;
};

/// A parsed signature field: DKIM-Signature, ARC-Message-Signature or ARC-Seal.
struct Sig {
    enum class Kind { dkim, ams, seal } kind = Kind::dkim;
    std::size_t field = 0;   ///< index in the header fields
    std::string error;       ///< non-empty: permerror, why
    Tags tags;
    std::string d, s, i, a, b_text;
    std::string b, bh;       ///< decoded
    bool sha1 = false;
    bool ed25519 = false;
    bool hrelaxed = false, brelaxed = false;
    long long l = -1, t = -1, x = -1;
    int instance = 0;        ///< ARC i=
    std::string cv;          ///< ARC-Seal cv=
    std::vector<std::string> h;
    int body = -1;           ///< index of its BodyHash
    std::string self;        ///< the field itself, canonicalised, b= emptied, no final CRLF
};

/// Parses field fields[index] as a signature of kind; sets error when it cannot be checked.
Sig parse_sig(const std::vector<HeaderField>& fields, std::size_t index, Sig::Kind kind);

/// The outcome of checking a signature over its header data against the key in DNS.
struct Check {
    Status status = Status::pass;
    std::string reason;
    bool testing = false;
};
/// Looks up s._domainkey.d (RFC 6376 §6.1.2), then, with a usable key, fails with body_mismatch when that
/// is not empty (§6.1.3: the body hash), else verifies sig.b over data (the canonical header octets).
Check check_signature(const Sig& sig, std::string_view data, dns::Resolver& resolver,
                      const std::string& body_mismatch);

} // namespace mail::dkim::detail

#include <memory>

namespace mail::dkim {

/// The verifier's state, shared by dkim.cpp (DKIM) and arc.cpp (ARC).
struct Verifier::Impl {
    std::vector<HeaderField> fields;
    Options options;
    std::vector<detail::Sig> dkim;   ///< the first max_signatures DKIM-Signature fields, top first
    std::vector<detail::Sig> ams;    ///< every ARC-Message-Signature (up to the cap)
    std::vector<detail::Sig> seals;  ///< every ARC-Seal (up to the cap)
    std::vector<std::size_t> aar;    ///< indexes of the ARC-Authentication-Results fields
    bool arc_too_many = false;
    std::vector<std::unique_ptr<detail::BodyHash>> bodies;
    bool ended = false;

    /// Starts (or shares) the body hash sig needs.
    void attach_body(detail::Sig& sig);
    /// The canonical header octets sig covers: the fields its h= names (bottom up, oversigned names
    /// contributing nothing), then the field itself with b= emptied.
    std::string header_data(const detail::Sig& sig) const;
    /// The body hash check of sig: empty when it matches, else why not.
    std::string body_mismatch(const detail::Sig& sig) const;
};

} // namespace mail::dkim
