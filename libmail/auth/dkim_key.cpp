// Key records (RFC 6376 §3.6.1, RFC 8463 §4) and the signature check with OpenSSL: rsa-sha256 over the
// canonical header data, ed25519-sha256 over its SHA-256 hash (RFC 8463 §3); RSA keys under 1024 bits and
// rsa-sha1 are failures (RFC 8301 §3.1, §3.2).
#include "libmail/auth/dkim_internal.hpp"

#include "libmail/base/codec.hpp"
#include "libmail/base/text.hpp"

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

namespace mail::dkim::detail {

namespace {

struct PkeyFree {
    void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
};
struct CtxFree {
    void operator()(EVP_MD_CTX* p) const { EVP_MD_CTX_free(p); }
};
using Pkey = std::unique_ptr<EVP_PKEY, PkeyFree>;

Check result(Status s, std::string why, bool testing = false) { return Check{s, std::move(why), testing}; }

// True when the colon-separated list holds word (case-insensitive), or holds "*" and star is allowed.
bool list_has(std::string_view list, std::string_view word, bool star = false) {
    while (true) {
        auto e = list.find(':');
        std::string_view one = trim(list.substr(0, e));
        if (iequals(one, word) || (star && one == "*")) return true;
        if (e == std::string_view::npos) return false;
        list = list.substr(e + 1);
    }
}

} // namespace

namespace {
Check check_key(const Sig& sig, std::string_view data, dns::Resolver& resolver, const std::string& body);
}

Check check_signature(const Sig& sig, std::string_view data, dns::Resolver& resolver, const std::string& body) {
    Check c = check_key(sig, data, resolver, body);
    ERR_clear_error();  // nothing of a failed parse or verification is left for the next OpenSSL caller
    return c;
}

namespace {
Check check_key(const Sig& sig, std::string_view data, dns::Resolver& resolver, const std::string& body) {
    std::string name = sig.s + "._domainkey." + sig.d;
    dns::Answer ans = resolver.query(name, dns::Type::txt);
    if (ans.temporary()) return result(Status::temperror, "key lookup " + name + ": " + ans.detail);
    if (ans.empty()) return result(Status::permerror, "no key record at " + name);
    const std::string& rec = ans.records.front().text;
    if (rec.size() > 8192) return result(Status::permerror, "key record too long");
    std::string why;
    auto tags = parse_tags(rec, &why);
    if (!tags) return result(Status::permerror, "key record syntax: " + why);
    const std::string* v = find_tag(*tags, "v");
    if (v && *v != "DKIM1") return result(Status::permerror, "key record v= is not DKIM1");
    bool testing = false, strict = false;
    if (const std::string* t = find_tag(*tags, "t")) {
        testing = list_has(*t, "y");
        strict = list_has(*t, "s");
    }
    const std::string* k = find_tag(*tags, "k");
    std::string ktype = k ? lower(*k) : std::string("rsa");
    if (ktype != "rsa" && ktype != "ed25519") return result(Status::permerror, "unknown key type k=" + ktype, testing);
    if ((ktype == "ed25519") != sig.ed25519)
        return result(Status::permerror, "key type k=" + ktype + " does not match a=" + sig.a, testing);
    if (const std::string* h = find_tag(*tags, "h"))
        if (!list_has(*h, sig.sha1 ? "sha1" : "sha256"))
            return result(Status::permerror, "key does not allow the hash of a=" + sig.a, testing);
    if (const std::string* s = find_tag(*tags, "s"))
        if (!list_has(*s, "email", true)) return result(Status::permerror, "key is not for email (s=)", testing);
    if (strict && sig.kind == Sig::Kind::dkim) {
        auto at = sig.i.rfind('@');
        if (!iequals(std::string_view(sig.i).substr(at + 1), sig.d))
            return result(Status::permerror, "key says t=s and i= is a subdomain of d=", testing);
    }
    const std::string* p = find_tag(*tags, "p");
    if (!p) return result(Status::permerror, "key record without p=", testing);
    std::string p64 = strip_ws(*p);
    if (p64.empty()) return result(Status::fail, "key revoked", testing);
    auto der = base64_decode(p64);
    if (!der) return result(Status::permerror, "key p= is not base64", testing);

    Pkey key;
    if (ktype == "ed25519") {
        if (der->size() != 32) return result(Status::permerror, "ed25519 key is not 32 octets", testing);
        key.reset(EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, nullptr,
                                              reinterpret_cast<const unsigned char*>(der->data()), 32));
    } else {
        const auto* q = reinterpret_cast<const unsigned char*>(der->data());
        key.reset(d2i_PUBKEY(nullptr, &q, static_cast<long>(der->size())));
        if (!key) {  // some publish the bare RSAPublicKey (PKCS#1)
            q = reinterpret_cast<const unsigned char*>(der->data());
            key.reset(d2i_PublicKey(EVP_PKEY_RSA, nullptr, &q, static_cast<long>(der->size())));
        }
        if (key && EVP_PKEY_base_id(key.get()) != EVP_PKEY_RSA) key.reset();
    }
    if (!key) return result(Status::permerror, "key p= is not a valid " + ktype + " key", testing);
    if (ktype == "rsa" && EVP_PKEY_get_bits(key.get()) < 1024)
        return result(Status::fail, "RSA key under 1024 bits (RFC 8301)", testing);
    if (sig.sha1) return result(Status::fail, "rsa-sha1 is not accepted (RFC 8301)", testing);
    if (!body.empty()) return result(Status::fail, body, testing);

    std::unique_ptr<EVP_MD_CTX, CtxFree> ctx(EVP_MD_CTX_new());
    if (!ctx) return result(Status::temperror, "out of memory", testing);
    const auto* sigp = reinterpret_cast<const unsigned char*>(sig.b.data());
    int ok = 0;
    if (sig.ed25519) {
        unsigned char hash[EVP_MAX_MD_SIZE];
        unsigned int n = 0;
        if (EVP_Digest(data.data(), data.size(), hash, &n, EVP_sha256(), nullptr) != 1)
            return result(Status::temperror, "hash failed", testing);
        if (EVP_DigestVerifyInit(ctx.get(), nullptr, nullptr, nullptr, key.get()) == 1)
            ok = EVP_DigestVerify(ctx.get(), sigp, sig.b.size(), hash, n);
    } else {
        if (EVP_DigestVerifyInit(ctx.get(), nullptr, EVP_sha256(), nullptr, key.get()) == 1)
            ok = EVP_DigestVerify(ctx.get(), sigp, sig.b.size(), reinterpret_cast<const unsigned char*>(data.data()),
                                  data.size());
    }
    if (ok != 1) return result(Status::fail, "signature did not verify", testing);
    return result(Status::pass, "", testing);
}
} // namespace

} // namespace mail::dkim::detail
