// DKIM and ARC verification (libmail/auth/dkim*.cpp, arc.cpp): canonicalisation (RFC 6376 §3.4.5), tag lists
// (§3.2), and messages signed here with keys made by OpenSSL, their keys served by a fake resolver.
#include "libmail/auth/dkim.hpp"
#include "libmail/auth/dkim_internal.hpp"
#include "libmail/base/codec.hpp"
#include "libmail/base/text.hpp"

#include "t/unit/fake_dns.hpp"

#include <catch2/catch.hpp>
#include <openssl/evp.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include <map>

using namespace mail;
using namespace mail::dkim;
using mail::test::FakeDns;

namespace {

std::string sha256(std::string_view s) {
    unsigned char md[32];
    unsigned int n = 0;
    EVP_Digest(s.data(), s.size(), md, &n, EVP_sha256(), nullptr);
    return std::string(reinterpret_cast<char*>(md), n);
}

std::string body_canon_hash(std::string_view body, bool relaxed, long long l = -1) {
    detail::BodyHash h(relaxed, EVP_sha256(), l);
    // fed in two pieces so a CRLF split over chunks is covered
    h.update(body.substr(0, body.size() / 2));
    h.update(body.substr(body.size() / 2));
    h.finish();
    return h.digest();
}

struct Key {
    EVP_PKEY* pkey = nullptr;
    bool ed = false;
    explicit Key(bool ed25519, int bits = 1024) : ed(ed25519) {
        pkey = ed ? EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519")
                  : EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", static_cast<size_t>(bits));
        REQUIRE(pkey);
    }
    ~Key() { EVP_PKEY_free(pkey); }
    Key(const Key&) = delete;
    Key& operator=(const Key&) = delete;
    std::string p() const {
        if (ed) {
            unsigned char raw[32];
            size_t n = sizeof raw;
            EVP_PKEY_get_raw_public_key(pkey, raw, &n);
            return base64_encode(std::string(reinterpret_cast<char*>(raw), n));
        }
        unsigned char* der = nullptr;
        int n = i2d_PUBKEY(pkey, &der);
        std::string out(reinterpret_cast<char*>(der), static_cast<std::size_t>(n));
        OPENSSL_free(der);
        return base64_encode(out);
    }
    std::string sign(std::string_view data) const {
        EVP_MD_CTX* ctx = EVP_MD_CTX_new();
        std::string in = ed ? sha256(data) : std::string(data);
        EVP_DigestSignInit(ctx, nullptr, ed ? nullptr : EVP_sha256(), nullptr, pkey);
        size_t n = 0;
        EVP_DigestSign(ctx, nullptr, &n, reinterpret_cast<const unsigned char*>(in.data()), in.size());
        std::string sig(n, '\0');
        EVP_DigestSign(ctx, reinterpret_cast<unsigned char*>(sig.data()), &n,
                       reinterpret_cast<const unsigned char*>(in.data()), in.size());
        sig.resize(n);
        EVP_MD_CTX_free(ctx);
        return sig;
    }
};

// A signer of the test's own: the DKIM-Signature field for fields + body with the given tags.
struct SignSpec {
    std::string c = "relaxed/relaxed";
    std::string h = "from:to:subject";
    std::string s = "sel";
    std::string d = "example.org";
    std::string extra;  // more tags, "; l=10" etc.
    long long l = -1;
    std::string name = "DKIM-Signature";
    std::string a;
    bool b_middle = false;  // b= before bh= instead of last
};

std::string sign(const Key& key, const std::vector<HeaderField>& fields, std::string_view body, const SignSpec& sp) {
    bool hrel = sp.c.substr(0, sp.c.find('/')) == "relaxed";
    bool brel = sp.c.substr(sp.c.find('/') + 1) == "relaxed";
    detail::BodyHash bh(brel, EVP_sha256(), sp.l);
    bh.update(body);
    bh.finish();
    std::string a = !sp.a.empty() ? sp.a : key.ed ? "ed25519-sha256" : "rsa-sha256";
    std::string field = sp.name + ": v=1; a=" + a + "; c=" + sp.c + "; d=" + sp.d + "; s=" + sp.s +
                        "; h=" + sp.h + sp.extra + ";\r\n\tbh=" + base64_encode(bh.digest()) + "; b=";
    std::string tail;
    if (sp.b_middle) {
        field = sp.name + ": v=1; a=" + a + "; b=";
        tail = ";\r\n\tc=" + sp.c + "; d=" + sp.d + "; s=" + sp.s + "; h=" + sp.h + sp.extra +
               "; bh=" + base64_encode(bh.digest());
        field += tail;
    }
    std::string data;
    std::map<std::string, std::size_t> used;
    for (std::string_view rest = sp.h; !rest.empty();) {
        auto e = rest.find(':');
        std::string n(rest.substr(0, e));
        rest = e == std::string_view::npos ? std::string_view{} : rest.substr(e + 1);
        std::size_t seen = 0, want = used[lower(n)]++;
        for (std::size_t k = fields.size(); k-- > 0;)
            if (fields[k].is(n) && seen++ == want) {
                data += detail::canon_header(fields[k].raw, hrel);
                break;
            }
    }
    std::string self = detail::canon_header(field, hrel);
    self.resize(self.size() - 2);
    data += self;
    if (sp.b_middle) {
        std::string head = field.substr(0, field.size() - tail.size());
        return head + base64_encode(key.sign(data)) + tail + "\r\n";
    }
    return field + base64_encode(key.sign(data)) + "\r\n";
}

std::vector<HeaderField> parse_fields(std::initializer_list<std::string> raws) {
    std::vector<HeaderField> out;
    for (const auto& r : raws) out.push_back(HeaderField{r});
    return out;
}

std::vector<HeaderField> base_fields() {
    return parse_fields({"From: Alice <alice@example.org>\r\n", "To: bob@example.net\r\n",
                         "Subject: Lunch  on\r\n  Friday\r\n"});
}
const std::string base_body = "Hi Bob,\r\n\r\nnoon?  \r\n Alice\r\n\r\n";

std::vector<SignatureResult> run(std::vector<HeaderField> fields, std::string_view body, dns::Resolver& r,
                                 Options o = {}) {
    Verifier v(fields, o);
    for (std::size_t k = 0; k < body.size(); k += 7) v.body(body.substr(k, 7));
    v.end_body();
    return v.verify(r);
}

std::vector<HeaderField> with(std::string sig, std::vector<HeaderField> f) {
    f.insert(f.begin(), HeaderField{std::move(sig)});
    return f;
}

} // namespace

TEST_CASE("dkim: relaxed and simple header canonicalisation (RFC 6376 3.4.5)") {
    CHECK(detail::canon_header("A: X\r\n", true) == "a:X\r\n");
    CHECK(detail::canon_header("B : Y\t\r\n\tZ  \r\n", true) == "b:Y Z\r\n");
    CHECK(detail::canon_header("A: X\r\n", false) == "A: X\r\n");
    CHECK(detail::canon_header("B : Y\t\r\n\tZ  \r\n", false) == "B : Y\t\r\n\tZ  \r\n");
    CHECK(detail::canon_header("B : Y\n\tZ\n", false) == "B : Y\r\n\tZ\r\n");  // bare LF taken as CRLF
}

TEST_CASE("dkim: relaxed and simple body canonicalisation (RFC 6376 3.4.5)") {
    std::string body = " C \r\nD \t E\r\n\r\n\r\n";
    CHECK(body_canon_hash(body, true) == sha256(" C\r\nD E\r\n"));
    CHECK(body_canon_hash(body, false) == sha256(" C \r\nD \t E\r\n"));
    // LF line ends are read as CRLF
    CHECK(body_canon_hash(" C \nD \t E\n\n\n", false) == sha256(" C \r\nD \t E\r\n"));
    // empty bodies: simple is one CRLF, relaxed nothing (RFC 6376 3.4.3, 3.4.4 and its erratum)
    CHECK(body_canon_hash("", false) == sha256("\r\n"));
    CHECK(body_canon_hash("\r\n\r\n", false) == sha256("\r\n"));
    CHECK(body_canon_hash("", true) == sha256(""));
    CHECK(body_canon_hash("  \r\n\t\r\n", true) == sha256(""));
    // a last line without its line end gets one
    CHECK(body_canon_hash("abc", false) == sha256("abc\r\n"));
    CHECK(body_canon_hash("a\rb\r\n", false) == sha256("a\rb\r\n"));  // a lone CR is data
    // l= counts canonical octets
    CHECK(body_canon_hash(" C \r\nD \t E\r\n", true, 4) == sha256(" C\r\n"));
    CHECK(body_canon_hash("abc\r\n", false, 0) == sha256(""));
}

TEST_CASE("dkim: tag lists (RFC 6376 3.2)") {
    auto t = detail::parse_tags(" v = 1 ;a=rsa-sha256;\r\n\tb=ab\r\n cd ; ");
    REQUIRE(t);
    REQUIRE(t->size() == 3);
    CHECK(*detail::find_tag(*t, "v") == "1");
    CHECK(*detail::find_tag(*t, "a") == "rsa-sha256");
    CHECK(detail::strip_ws(*detail::find_tag(*t, "b")) == "abcd");
    CHECK(detail::find_tag(*t, "bh") == nullptr);
    CHECK(detail::parse_tags(""));
    std::string why;
    CHECK_FALSE(detail::parse_tags("a=1; a=2", &why));
    CHECK(why == "duplicate tag a");
    CHECK_FALSE(detail::parse_tags("a=1;; b=2"));
    CHECK_FALSE(detail::parse_tags("1a=1"));
    CHECK_FALSE(detail::parse_tags("novalue"));
    CHECK_FALSE(detail::parse_tags("a=\x01"));
    CHECK(detail::parse_tags("a=;b=")->size() == 2);
    // At most 64 tags (the duplicate check is quadratic); 64 are taken.
    std::string many;
    for (int k = 0; k < 64; ++k) many += "t" + std::to_string(k) + "=1;";
    CHECK(detail::parse_tags(many)->size() == 64);
    CHECK_FALSE(detail::parse_tags(many + "t64=1", &why));
    CHECK(why == "more than 64 tags");
}

TEST_CASE("dkim: signed messages pass, tampered ones fail") {
    Key rsa(false);
    FakeDns r;
    r.txts("sel._domainkey.example.org", {"v=DKIM1; k=rsa; p=" + rsa.p()});
    for (std::string c : {"relaxed/relaxed", "simple/simple", "relaxed/simple", "simple/relaxed"}) {
        SignSpec sp;
        sp.c = c;
        INFO(c);
        std::string sig = sign(rsa, base_fields(), base_body, sp);
        auto res = run(with(sig, base_fields()), base_body, r);
        REQUIRE(res.size() == 1);
        CHECK(res[0].status == Status::pass);
        CHECK(res[0].domain == "example.org");
        CHECK(res[0].selector == "sel");
        CHECK(res[0].identity == "@example.org");
        CHECK(res[0].algorithm == "rsa-sha256");
        CHECK_FALSE(res[0].testing);

        auto body = run(with(sig, base_fields()), "Hi Eve,\r\n", r);
        CHECK(body[0].status == Status::fail);
        CHECK(body[0].reason == "body hash did not verify");

        auto f = base_fields();
        f[2].raw = "Subject: Dinner\r\n";
        auto head = run(with(sig, f), base_body, r);
        CHECK(head[0].status == Status::fail);
        CHECK(head[0].reason == "signature did not verify");

        // b= before other tags: only its value is emptied for the hash (RFC 6376 3.7)
        SignSpec mid = sp;
        mid.b_middle = true;
        std::string sigm = sign(rsa, base_fields(), base_body, mid);
        CHECK(sigm.find("; b=") < sigm.find("bh="));
        CHECK(run(with(sigm, base_fields()), base_body, r)[0].status == Status::pass);
        CHECK(run(with(sigm, base_fields()), base_body + "x\r\n", r)[0].status == Status::fail);

        // whitespace: relaxed survives, simple does not
        auto fw = base_fields();
        fw[2].raw = "Subject:  Lunch on \r\n Friday\r\n";
        auto ws = run(with(sig, fw), "Hi Bob, \r\n\r\nnoon? \r\n  Alice\r\n", r);
        CHECK((ws[0].status == Status::pass) == (c == "relaxed/relaxed"));
    }
}

TEST_CASE("dkim: l= ignores what follows, oversigning refuses added fields") {
    Key rsa(false);
    FakeDns r;
    r.txts("sel._domainkey.example.org", {"p=" + rsa.p()});
    SignSpec sp;
    sp.l = 10;
    sp.extra = "; l=10";
    std::string sig = sign(rsa, base_fields(), base_body, sp);
    CHECK(run(with(sig, base_fields()), base_body, r)[0].status == Status::pass);
    CHECK(run(with(sig, base_fields()), base_body + "appended\r\n", r)[0].status == Status::pass);
    CHECK(run(with(sig, base_fields()), "Hi Eve,\r\n" + base_body, r)[0].status == Status::fail);

    SignSpec over;
    over.h = "from:subject:subject:to:x-missing";
    std::string sig2 = sign(rsa, base_fields(), base_body, over);
    CHECK(run(with(sig2, base_fields()), base_body, r)[0].status == Status::pass);
    auto added = base_fields();
    added.insert(added.begin(), HeaderField{"Subject: another\r\n"});
    CHECK(run(with(sig2, added), base_body, r)[0].status == Status::fail);
    auto xadded = base_fields();
    xadded.push_back(HeaderField{"X-Missing: now here\r\n"});
    CHECK(run(with(sig2, xadded), base_body, r)[0].status == Status::fail);
    // without oversigning, a Subject added above the signed one is not seen (bottom-up selection)
    std::string sig3 = sign(rsa, base_fields(), base_body, SignSpec{});
    CHECK(run(with(sig3, added), base_body, r)[0].status == Status::pass);
}

TEST_CASE("dkim: key records: revoked, testing, missing, temporary, small, wrong type") {
    Key rsa(false);
    Key small(false, 768);
    Key ed(true);
    FakeDns r;
    r.txts("revoked._domainkey.example.org", {"v=DKIM1; k=rsa; p="});
    r.txts("test._domainkey.example.org", {"v=DKIM1; t=y; p=" + rsa.p()});
    r.txts("small._domainkey.example.org", {"v=DKIM1; p=" + small.p()});
    r.txts("ed._domainkey.example.org", {"v=DKIM1; k=ed25519; p=" + ed.p()});
    r.txts("edasrsa._domainkey.example.org", {"v=DKIM1; p=" + ed.p()});
    r.txts("sha1only._domainkey.example.org", {"v=DKIM1; h=sha1; p=" + rsa.p()});
    r.txts("web._domainkey.example.org", {"v=DKIM1; s=tlsrpt; p=" + rsa.p()});
    r.txts("badv._domainkey.example.org", {"v=DKIM2; p=" + rsa.p()});
    r.fail("temp._domainkey.example.org", dns::Status::servfail);
    r.fail("slow._domainkey.example.org", dns::Status::timeout);
    auto check = [&](const Key& k, std::string sel, Status want, std::string reason = "") {
        SignSpec sp;
        sp.s = sel;
        auto res = run(with(sign(k, base_fields(), base_body, sp), base_fields()), base_body, r);
        INFO(sel << ": " << res[0].reason);
        CHECK(res[0].status == want);
        if (!reason.empty()) CHECK(res[0].reason == reason);
        return res[0];
    };
    check(rsa, "revoked", Status::fail, "key revoked");
    CHECK(check(rsa, "test", Status::pass).testing);
    check(rsa, "nosuch", Status::permerror, "no key record at nosuch._domainkey.example.org");
    check(rsa, "temp", Status::temperror);
    check(rsa, "slow", Status::temperror);
    check(small, "small", Status::fail, "RSA key under 1024 bits (RFC 8301)");
    check(ed, "ed", Status::pass);
    check(ed, "edasrsa", Status::permerror);
    check(rsa, "sha1only", Status::permerror);
    check(rsa, "web", Status::permerror);
    check(rsa, "badv", Status::permerror);
    // ed25519 tampered
    SignSpec sp;
    sp.s = "ed";
    auto res = run(with(sign(ed, base_fields(), base_body, sp), base_fields()), base_body + "x\r\n", r);
    CHECK(res[0].status == Status::fail);
}

TEST_CASE("dkim: signatures that cannot be accepted") {
    Key rsa(false);
    FakeDns r;
    r.txts("sel._domainkey.example.org", {"p=" + rsa.p()});
    auto status = [&](SignSpec sp) {
        auto res = run(with(sign(rsa, base_fields(), base_body, sp), base_fields()), base_body, r);
        return res[0];
    };
    SignSpec nofrom;
    nofrom.h = "to:subject";
    CHECK(status(nofrom).status == Status::permerror);
    CHECK(status(nofrom).reason == "From is not signed");
    SignSpec sha1;
    sha1.a = "rsa-sha1";
    CHECK(status(sha1).status != Status::pass);
    SignSpec ident;
    ident.extra = "; i=alice@mail.example.org";
    CHECK(status(ident).status == Status::pass);
    CHECK(status(ident).identity == "alice@mail.example.org");
    SignSpec other;
    other.extra = "; i=alice@example.com";
    CHECK(status(other).status == Status::permerror);
    SignSpec expired;
    expired.extra = "; t=1000; x=2000";
    Options o;
    o.now = 3000;
    CHECK(run(with(sign(rsa, base_fields(), base_body, expired), base_fields()), base_body, r, o)[0].status ==
          Status::permerror);
    o.now = 1500;
    CHECK(run(with(sign(rsa, base_fields(), base_body, expired), base_fields()), base_body, r, o)[0].status ==
          Status::pass);
    // malformed fields: one permerror result each, no lookup
    r.queries = 0;
    auto bad = run(with("DKIM-Signature: v=1; a=rsa-sha256; a=rsa-sha256\r\n",
                        with("DKIM-Signature: garbage\r\n", with("DKIM-Signature: v=2; a=x\r\n", base_fields()))),
                   base_body, r);
    REQUIRE(bad.size() == 3);
    for (const auto& b : bad) CHECK(b.status == Status::permerror);
    CHECK(r.queries == 0);
}

TEST_CASE("dkim: several signatures, one result each, bounded by max_signatures") {
    Key rsa(false);
    Key ed(true);
    FakeDns r;
    r.txts("sel._domainkey.example.org", {"p=" + rsa.p()});
    r.txts("ed._domainkey.example.net", {"k=ed25519; p=" + ed.p()});
    SignSpec e;
    e.s = "ed";
    e.d = "example.net";
    e.c = "simple/simple";
    auto f = with(sign(rsa, base_fields(), base_body, SignSpec{}), base_fields());
    f = with(sign(ed, base_fields(), base_body, e), f);
    f = with("DKIM-Signature: v=1; a=rsa-sha256; d=example.org; s=sel; h=from; bh=AAAA; b=AAAA\r\n", f);
    auto res = run(f, base_body, r);
    REQUIRE(res.size() == 3);
    CHECK(res[0].status == Status::fail);
    CHECK(res[1].status == Status::pass);
    CHECK(res[1].domain == "example.net");
    CHECK(res[1].algorithm == "ed25519-sha256");
    CHECK(res[2].status == Status::pass);
    Options o;
    o.max_signatures = 2;
    CHECK(run(f, base_body, r, o).size() == 2);
}

TEST_CASE("dkim: ARC chain of one and two sets, and broken ones") {
    Key k1(false);
    Key k2(true);
    FakeDns r;
    r.txts("a1._domainkey.list.example", {"p=" + k1.p()});
    r.txts("a2._domainkey.fwd.example", {"k=ed25519; p=" + k2.p()});
    // one hop: AAR, AMS, AS (the seal over AAR, AMS, then itself)
    auto seal = [&](const Key& key, std::vector<HeaderField> f, int i, std::string d, std::string s,
                    std::string cv) {
        std::string aar = "ARC-Authentication-Results: i=" + std::to_string(i) + "; " + d + "; dmarc=pass\r\n";
        f.insert(f.begin(), HeaderField{aar});
        SignSpec ams;
        ams.name = "ARC-Message-Signature";
        ams.d = d;
        ams.s = s;
        ams.h = "from:to:subject";
        std::string amsfield = sign(key, f, base_body, ams);
        // sign() writes "v=1; " at the front: ARC-Message-Signature has i= instead
        amsfield.replace(amsfield.find("v=1"), 3, "i=" + std::to_string(i));
        // re-sign with the right field
        {
            std::string unsigned_field = amsfield.substr(0, amsfield.find("; b=") + 4);
            std::string data;
            std::map<std::string, std::size_t> used;
            for (std::string n : {"from", "to", "subject"})
                for (std::size_t k = f.size(); k-- > 0;)
                    if (f[k].is(n)) {
                        data += detail::canon_header(f[k].raw, true);
                        break;
                    }
            std::string self = detail::canon_header(unsigned_field, true);
            self.resize(self.size() - 2);
            amsfield = unsigned_field + base64_encode(key.sign(data + self)) + "\r\n";
        }
        f.insert(f.begin(), HeaderField{amsfield});
        std::string as = "ARC-Seal: i=" + std::to_string(i) + "; a=" + (key.ed ? "ed25519-sha256" : "rsa-sha256") +
                         "; cv=" + cv + "; d=" + d + "; s=" + s + "; b=";
        std::string data;
        for (int j = 1; j <= i; ++j)
            for (std::string n : {"ARC-Authentication-Results", "ARC-Message-Signature", "ARC-Seal"})
                for (const auto& fld : f)
                    if (fld.is(n) && fld.raw.find("i=" + std::to_string(j) + ";") != std::string::npos)
                        data += detail::canon_header(fld.raw, true);
        std::string self = detail::canon_header(as, true);
        self.resize(self.size() - 2);
        f.insert(f.begin(), HeaderField{as + base64_encode(key.sign(data + self)) + "\r\n"});
        return f;
    };
    auto arc_of = [&](const std::vector<HeaderField>& f, std::string_view body) {
        Verifier v(f);
        v.body(body);
        v.end_body();
        return v.arc(r);
    };
    CHECK(arc_of(base_fields(), base_body).status == ArcStatus::none);
    auto one = seal(k1, base_fields(), 1, "list.example", "a1", "none");
    auto a1 = arc_of(one, base_body);
    INFO(a1.reason);
    CHECK(a1.status == ArcStatus::pass);
    CHECK(a1.instances == 1);
    CHECK(a1.sealer == "list.example");
    CHECK(a1.sealed_results == "list.example; dmarc=pass");
    auto two = seal(k2, one, 2, "fwd.example", "a2", "pass");
    auto a2 = arc_of(two, base_body);
    INFO(a2.reason);
    CHECK(a2.status == ArcStatus::pass);
    CHECK(a2.instances == 2);
    CHECK(a2.sealer == "fwd.example");
    CHECK(a2.sealers == std::vector<std::string>{"list.example", "fwd.example"});
    // broken: body changed, an AAR of an older set changed, a set missing, cv wrong
    CHECK(arc_of(two, "changed\r\n").status == ArcStatus::fail);
    auto t = two;
    for (auto& fld : t)
        if (fld.is("ARC-Authentication-Results") && fld.raw.find("i=1;") != std::string::npos)
            fld.raw = "ARC-Authentication-Results: i=1; list.example; dmarc=fail\r\n";
    CHECK(arc_of(t, base_body).status == ArcStatus::fail);
    auto gap = two;
    gap.erase(gap.begin());  // the AS of i=2
    CHECK(arc_of(gap, base_body).status == ArcStatus::fail);
    auto badcv = seal(k2, one, 2, "fwd.example", "a2", "none");
    CHECK(arc_of(badcv, base_body).status == ArcStatus::fail);
}
