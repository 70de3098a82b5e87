// DKIM verification (RFC 6376, RFC 8463): the Verifier; ARC is in arc.cpp, tag lists and signature fields
// in dkim_tags.cpp, canonicalisation in dkim_canon.cpp, keys and OpenSSL in dkim_key.cpp.
//
// Why OpenSSL directly and not libopendkim: the project already links OpenSSL 3, which gives rsa-sha256 and
// ed25519 (EVP_DigestVerify, raw 32-octet keys) in a few calls, while libopendkim brings its own DNS code
// (we must ask through our one resolver, with its timeouts and test server), a callback API built around a
// milter's life cycle, and a slow upstream (its ed25519 support and RFC 8301 rules lag behind). Owning the
// canonicalisation lets the body stream once through one running hash per (canonicalisation, hash, l=) for
// every DKIM and ARC signature together, so memory stays flat however large the message.
#include "libmail/auth/dkim_internal.hpp"

#include "libmail/base/text.hpp"

#include <openssl/evp.h>

#include <map>

namespace mail::dkim {

using detail::BodyHash;
using detail::Sig;

std::string_view to_string(Status s) {
    switch (s) {
    case Status::none: return "none";
    case Status::pass: return "pass";
    case Status::fail: return "fail";
    case Status::policy: return "policy";
    case Status::neutral: return "neutral";
    case Status::temperror: return "temperror";
    case Status::permerror: return "permerror";
    }
    return "none";
}

namespace {
constexpr std::size_t max_arc_fields = 50;  // per kind (RFC 8617 §4.2.1: at most 50 instances)
}

void Verifier::Impl::attach_body(Sig& sig) {
    if (!sig.error.empty() || sig.kind == Sig::Kind::seal) return;
    const EVP_MD* md = sig.sha1 ? EVP_sha1() : EVP_sha256();
    for (std::size_t k = 0; k < bodies.size(); ++k) {
        const BodyHash& b = *bodies[k];
        if (b.relaxed() == sig.brelaxed && b.md() == md && b.limit() == sig.l) {
            sig.body = static_cast<int>(k);
            return;
        }
    }
    bodies.push_back(std::make_unique<BodyHash>(sig.brelaxed, md, sig.l));
    sig.body = static_cast<int>(bodies.size() - 1);
}

std::string Verifier::Impl::header_data(const Sig& sig) const {
    std::string out;
    std::map<std::string, std::size_t> used;  // lower-case name -> instances taken from the bottom
    for (const std::string& name : sig.h) {
        std::string key = lower(name);
        std::size_t& n = used[key];
        std::size_t seen = 0;
        for (std::size_t k = fields.size(); k-- > 0;) {
            if (!fields[k].is(name)) continue;
            if (seen++ == n) {
                out += detail::canon_header(fields[k].raw, sig.hrelaxed);
                break;
            }
        }
        ++n;  // an oversigned name (no further instance) contributes nothing
    }
    out += sig.self;
    return out;
}

std::string Verifier::Impl::body_mismatch(const Sig& sig) const {
    if (sig.body < 0 || !ended) return "body not hashed";
    const BodyHash& b = *bodies[static_cast<std::size_t>(sig.body)];
    if (b.digest() != sig.bh) return "body hash did not verify";
    return {};
}

Verifier::Verifier(const std::vector<HeaderField>& fields, const Options& options) : impl_(std::make_unique<Impl>()) {
    Impl& m = *impl_;
    m.fields = fields;
    m.options = options;
    for (std::size_t k = 0; k < m.fields.size(); ++k) {
        const HeaderField& f = m.fields[k];
        if (f.is("DKIM-Signature")) {
            if (m.dkim.size() < options.max_signatures) m.dkim.push_back(detail::parse_sig(m.fields, k, Sig::Kind::dkim));
        } else if (f.is("ARC-Message-Signature")) {
            if (m.ams.size() < max_arc_fields) m.ams.push_back(detail::parse_sig(m.fields, k, Sig::Kind::ams));
            else m.arc_too_many = true;
        } else if (f.is("ARC-Seal")) {
            if (m.seals.size() < max_arc_fields) m.seals.push_back(detail::parse_sig(m.fields, k, Sig::Kind::seal));
            else m.arc_too_many = true;
        } else if (f.is("ARC-Authentication-Results")) {
            if (m.aar.size() < max_arc_fields) m.aar.push_back(k);
            else m.arc_too_many = true;
        }
    }
    for (Sig& s : m.dkim) m.attach_body(s);
    for (Sig& s : m.ams) m.attach_body(s);
}

Verifier::~Verifier() = default;

void Verifier::body(std::string_view chunk) {
    if (impl_->ended) return;
    for (auto& b : impl_->bodies) b->update(chunk);
}

void Verifier::end_body() {
    if (impl_->ended) return;
    for (auto& b : impl_->bodies) b->finish();
    impl_->ended = true;
}

std::vector<SignatureResult> Verifier::verify(dns::Resolver& resolver) {
    Impl& m = *impl_;
    std::vector<SignatureResult> out;
    for (const Sig& sig : m.dkim) {
        SignatureResult r;
        r.domain = sig.d;
        r.selector = sig.s;
        r.identity = sig.i.empty() && !sig.d.empty() ? "@" + sig.d : sig.i;
        r.algorithm = sig.a;
        r.b = sig.b_text;
        if (!sig.error.empty()) {
            r.status = Status::permerror;
            r.reason = sig.error;
        } else if (m.options.now > 0 && sig.x >= 0 && sig.x < m.options.now) {
            r.status = Status::permerror;
            r.reason = "signature expired";
        } else {
            detail::Check c = detail::check_signature(sig, m.header_data(sig), resolver, m.body_mismatch(sig));
            r.status = c.status;
            r.reason = c.reason;
            r.testing = c.testing;
        }
        out.push_back(std::move(r));
    }
    return out;
}

} // namespace mail::dkim
