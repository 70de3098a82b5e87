#include "libmail/auth/dmarc.hpp"

#include "t/unit/fake_dns.hpp"

#include <catch2/catch.hpp>

#include <map>
#include <string>
#include <utility>
#include <vector>

using namespace mail;
using mail::test::FakeDns;

namespace {

spf::Outcome spf_pass(const std::string& domain) {
    spf::Outcome o;
    o.result = spf::SpfResult::pass;
    o.domain = domain;
    o.identity = "mailfrom";
    return o;
}

dkim::SignatureResult sig(const std::string& d, dkim::Status st = dkim::Status::pass, bool testing = false) {
    dkim::SignatureResult s;
    s.status = st;
    s.domain = d;
    s.selector = "sel";
    s.testing = testing;
    return s;
}

} // namespace

TEST_CASE("organizational domains come from the Public Suffix List", "[dmarc]") {
    CHECK(dmarc::organizational_domain("example.com") == "example.com");
    CHECK(dmarc::organizational_domain("a.b.example.com") == "example.com");
    CHECK(dmarc::organizational_domain("mail.example.co.uk") == "example.co.uk");
    CHECK(dmarc::organizational_domain("example.co.uk") == "example.co.uk");
    CHECK(dmarc::organizational_domain("Mail.Example.COM.") == "example.com");
    // A public suffix itself has no registrable domain: the name itself.
    CHECK(dmarc::organizational_domain("co.uk") == "co.uk");
    // An unlisted TLD falls under the default rule "*".
    CHECK(dmarc::organizational_domain("x.y.example.test") == "example.test");
}

TEST_CASE("alignment, relaxed and strict", "[dmarc]") {
    CHECK(dmarc::aligned("example.com", "example.com", true));
    CHECK(dmarc::aligned("Example.COM", "example.com.", true));
    CHECK_FALSE(dmarc::aligned("mail.example.com", "example.com", true));
    CHECK(dmarc::aligned("mail.example.com", "example.com", false));
    CHECK(dmarc::aligned("a.b.example.com", "c.example.com", false));
    CHECK_FALSE(dmarc::aligned("example.net", "example.com", false));
    CHECK(dmarc::aligned("bounce.example.co.uk", "example.co.uk", false));
    CHECK_FALSE(dmarc::aligned("other.co.uk", "example.co.uk", false));
    CHECK_FALSE(dmarc::aligned("", "example.com", false));
}

TEST_CASE("parse_record: tags, defaults, errors", "[dmarc]") {
    auto r = dmarc::parse_record("v=DMARC1; p=reject; sp=quarantine; pct=50; adkim=s; aspf=s; rua=mailto:d@example.com");
    REQUIRE(r);
    CHECK(r->p == "reject");
    CHECK(r->sp == "quarantine");
    CHECK(r->pct == 50);
    CHECK(r->strict_dkim);
    CHECK(r->strict_spf);

    auto d = dmarc::parse_record("v=DMARC1;p=none");
    REQUIRE(d);
    CHECK(d->p == "none");
    CHECK(d->sp.empty());
    CHECK(d->pct == 100);
    CHECK_FALSE(d->strict_dkim);
    CHECK_FALSE(d->strict_spf);

    // WSP around tags and '=', case of values, unknown tags ignored.
    auto w = dmarc::parse_record("v = DMARC1 ;  P = Quarantine ; foo=bar; fo=1; ri=3600 ;");
    REQUIRE(w);
    CHECK(w->p == "quarantine");

    // Bad optional values take their defaults.
    auto b = dmarc::parse_record("v=DMARC1; p=reject; pct=150; adkim=x; aspf=");
    REQUIRE(b);
    CHECK(b->pct == 100);
    CHECK_FALSE(b->strict_dkim);
    CHECK_FALSE(b->strict_spf);
    CHECK(dmarc::parse_record("v=DMARC1; p=reject; pct=-1")->pct == 100);
    CHECK(dmarc::parse_record("v=DMARC1; p=reject; pct=0")->pct == 0);
    CHECK(dmarc::parse_record("v=DMARC1; p=reject; pct=5x")->pct == 100);

    // The first tag must be v=DMARC1.
    CHECK_FALSE(dmarc::parse_record("p=reject; v=DMARC1"));
    CHECK_FALSE(dmarc::parse_record("v=DMARC2; p=reject"));
    CHECK_FALSE(dmarc::parse_record("v=dmarc1; p=reject"));
    CHECK_FALSE(dmarc::parse_record("v=DMARC1x; p=reject"));
    CHECK_FALSE(dmarc::parse_record(""));
    // p= is required and must be valid; an invalid sp= discards the record too (§6.6.3 step 6)...
    CHECK(dmarc::parse_record("v=DMARC1").error().kind == ErrorKind::data);
    CHECK_FALSE(dmarc::parse_record("v=DMARC1; p=block"));
    CHECK_FALSE(dmarc::parse_record("v=DMARC1; sp=reject"));
    CHECK_FALSE(dmarc::parse_record("v=DMARC1; p=reject; sp=maybe"));
    // ... unless rua= holds a valid URI: then it is p=none.
    auto rua = dmarc::parse_record("v=DMARC1; rua=mailto:dmarc@example.com");
    REQUIRE(rua);
    CHECK(rua->p == "none");
    CHECK(rua->sp.empty());
    CHECK(dmarc::parse_record("v=DMARC1; p=nonsense; rua=bogus, mailto:x@example.com!10m")->p == "none");
    CHECK_FALSE(dmarc::parse_record("v=DMARC1; p=nonsense; rua=bogus"));
    // The first of a repeated tag counts.
    CHECK(dmarc::parse_record("v=DMARC1; p=none; p=reject")->p == "none");
}

TEST_CASE("check: pass by aligned SPF or DKIM, fail otherwise", "[dmarc]") {
    FakeDns dns;
    dns.txts("_dmarc.example.com", {"v=DMARC1; p=reject"});

    auto o = dmarc::check(dns, "example.com", spf_pass("bounces.example.com"), {});
    CHECK(o.status == dmarc::Status::pass);
    CHECK(o.spf_aligned);
    CHECK_FALSE(o.dkim_aligned);
    CHECK(o.policy == "reject");
    CHECK(o.policy_domain == "example.com");
    REQUIRE(o.record);

    o = dmarc::check(dns, "example.com", spf_pass("evil.example"), {sig("mail.example.com")});
    CHECK(o.status == dmarc::Status::pass);
    CHECK_FALSE(o.spf_aligned);
    CHECK(o.dkim_aligned);

    // A failing, a testing and an unaligned signature do not count.
    o = dmarc::check(dns, "example.com", spf_pass("evil.example"),
                     {sig("example.com", dkim::Status::fail), sig("example.com", dkim::Status::pass, true),
                      sig("example.net")});
    CHECK(o.status == dmarc::Status::fail);
    CHECK(o.policy == "reject");
    CHECK_FALSE(o.spf_aligned);
    CHECK_FALSE(o.dkim_aligned);

    // SPF softfail for an aligned domain is no pass.
    spf::Outcome soft = spf_pass("example.com");
    soft.result = spf::SpfResult::softfail;
    CHECK(dmarc::check(dns, "example.com", soft, {}).status == dmarc::Status::fail);
}

TEST_CASE("check: strict alignment", "[dmarc]") {
    FakeDns dns;
    dns.txts("_dmarc.example.com", {"v=DMARC1; p=quarantine; adkim=s; aspf=s"});
    auto o = dmarc::check(dns, "example.com", spf_pass("bounces.example.com"), {sig("mail.example.com")});
    CHECK(o.status == dmarc::Status::fail);
    o = dmarc::check(dns, "example.com", spf_pass("example.com"), {});
    CHECK(o.status == dmarc::Status::pass);
    o = dmarc::check(dns, "example.com", spf::Outcome{}, {sig("example.com")});
    CHECK(o.status == dmarc::Status::pass);
    // Only one of them strict.
    dns.txts("_dmarc.example.com", {"v=DMARC1; p=quarantine; aspf=s"});
    CHECK(dmarc::check(dns, "example.com", spf_pass("bounces.example.com"), {}).status == dmarc::Status::fail);
    CHECK(dmarc::check(dns, "example.com", spf::Outcome{}, {sig("mail.example.com")}).status == dmarc::Status::pass);
}

TEST_CASE("check: the organizational domain's record and sp for subdomains", "[dmarc]") {
    FakeDns dns;
    dns.txts("_dmarc.example.co.uk", {"v=DMARC1; p=reject; sp=quarantine"});
    auto o = dmarc::check(dns, "news.example.co.uk", spf_pass("example.co.uk"), {});
    CHECK(o.status == dmarc::Status::pass);
    CHECK(o.policy_domain == "example.co.uk");
    CHECK(o.policy == "quarantine");
    CHECK(dns.asked == std::vector<std::string>{"_dmarc.news.example.co.uk", "_dmarc.example.co.uk"});

    // The org domain itself: p.
    o = dmarc::check(dns, "example.co.uk", spf::Outcome{}, {});
    CHECK(o.status == dmarc::Status::fail);
    CHECK(o.policy == "reject");

    // Without sp, p applies to subdomains.
    FakeDns dns2;
    dns2.txts("_dmarc.example.com", {"v=DMARC1; p=reject"});
    o = dmarc::check(dns2, "a.b.example.com", spf::Outcome{}, {sig("example.com")});
    CHECK(o.status == dmarc::Status::pass);
    CHECK(o.policy == "reject");
    CHECK(o.policy_domain == "example.com");

    // A record of the subdomain's own wins; its p applies (sp is for names below it).
    dns2.txts("_dmarc.a.b.example.com", {"v=DMARC1; p=none; sp=reject"});
    o = dmarc::check(dns2, "a.b.example.com", spf::Outcome{}, {});
    CHECK(o.policy_domain == "a.b.example.com");
    CHECK(o.policy == "none");
    CHECK(o.status == dmarc::Status::fail);
}

TEST_CASE("check: none, several records, invalid records, non-DMARC TXT", "[dmarc]") {
    FakeDns dns;
    auto o = dmarc::check(dns, "example.org", spf_pass("example.org"), {});
    CHECK(o.status == dmarc::Status::none);
    CHECK_FALSE(o.record);
    CHECK(o.policy.empty());
    CHECK(o.spf_aligned);  // alignment is known even without a policy

    // Other TXT records at _dmarc are dropped; then the org domain is asked.
    dns.txts("_dmarc.mail.example.org", {"google-site-verification=abc"});
    dns.txts("_dmarc.example.org", {"v=DMARC1; p=quarantine"});
    o = dmarc::check(dns, "mail.example.org", spf::Outcome{}, {});
    CHECK(o.status == dmarc::Status::fail);
    CHECK(o.policy == "quarantine");

    // Several DMARC records: no policy, and no fallback to the org domain.
    dns.txts("_dmarc.mail.example.org", {"v=DMARC1; p=reject", "v=DMARC1; p=none"});
    o = dmarc::check(dns, "mail.example.org", spf::Outcome{}, {});
    CHECK(o.status == dmarc::Status::none);
    CHECK_FALSE(o.record);

    // One invalid record: none, no fallback.
    dns.txts("_dmarc.mail.example.org", {"v=DMARC1; p=bogus"});
    o = dmarc::check(dns, "mail.example.org", spf::Outcome{}, {});
    CHECK(o.status == dmarc::Status::none);
    CHECK(o.reason.find("invalid") != std::string::npos);

    // A From that is not one domain: permerror; a literal: none, nothing asked.
    CHECK(dmarc::check(dns, "", spf::Outcome{}, {}).status == dmarc::Status::permerror);
    std::size_t before = dns.asked.size();
    CHECK(dmarc::check(dns, "[192.0.2.1]", spf::Outcome{}, {}).status == dmarc::Status::none);
    CHECK(dns.asked.size() == before);
}

TEST_CASE("check: temporary DNS failures are temperror", "[dmarc]") {
    for (auto st : {dns::Status::servfail, dns::Status::timeout, dns::Status::error}) {
        FakeDns dns;
        dns.fail("_dmarc.example.com", st);
        auto o = dmarc::check(dns, "example.com", spf_pass("example.com"), {});
        CHECK(o.status == dmarc::Status::temperror);
        // At the organizational domain too.
        FakeDns dns2;
        dns2.fail("_dmarc.example.com", st);
        CHECK(dmarc::check(dns2, "www.example.com", spf::Outcome{}, {}).status == dmarc::Status::temperror);
    }
    CHECK(dmarc::to_string(dmarc::Status::temperror) == "temperror");
}
