#include "libmail/auth/spf.hpp"

#include "t/unit/fake_dns.hpp"

#include <catch2/catch.hpp>

#include <map>
#include <utility>

using namespace mail;
using mail::test::FakeDns;
using namespace mail::spf;

namespace {

Query query(std::string ip, std::string sender = "user@example.com", std::string helo = "mail.example.net") {
    Query q;
    q.ip = std::move(ip);
    q.sender = std::move(sender);
    q.helo = std::move(helo);
    q.receiver = "mx.receiver.test";
    return q;
}

SpfResult run(FakeDns& r, const std::string& record, const std::string& ip = "192.0.2.3") {
    r.answers.erase({"example.com", dns::Type::txt});
    r.txt("example.com", record);
    return check_mailfrom(r, query(ip)).result;
}

MacroContext rfc_context(bool v6 = false) {
    MacroContext c;
    c.sender = "strong-bad@email.example.com";
    c.domain = "email.example.com";
    c.ip = v6 ? "2001:db8::cb01" : "192.0.2.3";
    c.helo = "mx.example.org";
    c.receiver = "mx.receiver.test";
    c.timestamp = 1234567890;
    return c;
}

std::string ex(std::string_view s, bool v6 = false, bool exp = false) {
    auto r = expand(s, rfc_context(v6), exp);
    return r ? *r : "ERROR: " + r.error().text;
}

} // namespace

TEST_CASE("spf: result words") {
    CHECK(to_string(SpfResult::pass) == "pass");
    CHECK(to_string(SpfResult::fail) == "fail");
    CHECK(to_string(SpfResult::softfail) == "softfail");
    CHECK(to_string(SpfResult::neutral) == "neutral");
    CHECK(to_string(SpfResult::none) == "none");
    CHECK(to_string(SpfResult::temperror) == "temperror");
    CHECK(to_string(SpfResult::permerror) == "permerror");
}

TEST_CASE("spf: record selection (is_spf_record)") {
    CHECK(is_spf_record("v=spf1"));
    CHECK(is_spf_record("v=spf1 -all"));
    CHECK(is_spf_record("V=SPF1 -all"));
    CHECK_FALSE(is_spf_record("v=spf10 -all"));
    CHECK_FALSE(is_spf_record("v=spf1-all"));
    CHECK_FALSE(is_spf_record("spf2.0/pra -all"));
    CHECK_FALSE(is_spf_record(" v=spf1 -all"));
    CHECK_FALSE(is_spf_record(""));
}

TEST_CASE("spf: parse_record terms") {
    auto t = parse_record("v=spf1 +a -mx:mail.%{d}/24//64 ~ip4:192.0.2.0/24 ?ip6:2001:db8::/32 ptr include:x.example exists:%{i}.e.example "
                          "all redirect=r.example exp=e.%{d} foo.bar=baz  ");
    REQUIRE(t);
    REQUIRE(t->size() == 11);
    CHECK((*t)[0].name == "a");
    CHECK((*t)[0].qualifier == '+');
    CHECK((*t)[1].name == "mx");
    CHECK((*t)[1].qualifier == '-');
    CHECK((*t)[1].domain_spec == "mail.%{d}");
    CHECK((*t)[1].cidr4 == 24);
    CHECK((*t)[1].cidr6 == 64);
    CHECK((*t)[2].name == "ip4");
    CHECK((*t)[2].qualifier == '~');
    CHECK((*t)[2].domain_spec == "192.0.2.0");
    CHECK((*t)[2].cidr4 == 24);
    CHECK((*t)[3].cidr6 == 32);
    CHECK((*t)[3].qualifier == '?');
    CHECK((*t)[4].name == "ptr");
    CHECK((*t)[4].domain_spec.empty());
    CHECK((*t)[5].domain_spec == "x.example");
    CHECK((*t)[6].name == "exists");
    CHECK((*t)[7].name == "all");
    CHECK((*t)[8].kind == Term::Kind::modifier);
    CHECK((*t)[8].name == "redirect");
    CHECK((*t)[9].name == "exp");
    CHECK((*t)[10].name == "foo.bar");
    CHECK(parse_record("v=spf1")->empty());
    CHECK(parse_record("V=SPF1 A:Example.COM")->front().name == "a");
    CHECK(parse_record("v=spf1 a//64")->front().cidr6 == 64);
    CHECK(parse_record("v=spf1 a/0")->front().cidr4 == 0);
}

TEST_CASE("spf: parse_record syntax errors are data errors (permerror)") {
    for (const char* bad : {"v=spf1 foo", "v=spf1 -all:x", "v=spf1 a/33", "v=spf1 a//129", "v=spf1 a/024",
                            "v=spf1 ip4:192.0.2.0/33", "v=spf1 ip4:192.0.2", "v=spf1 ip4:192.0.02.1",
                            "v=spf1 ip4:192.0.2.256", "v=spf1 ip6:2001:db8::/129", "v=spf1 ip6:zz::1",
                            "v=spf1 ip6:192.0.2.1", "v=spf1 include", "v=spf1 include:", "v=spf1 exists",
                            "v=spf1 exists:", "v=spf1 a:foo", "v=spf1 a:example.123", "v=spf1 a:example.com-",
                            "v=spf1 redirect=a.example redirect=b.example", "v=spf1 exp=a.example exp=b.example",
                            "v=spf1 redirect=", "v=spf1 exp=", "v=spf1 ptr/24", "v=spf1 ip4:192.0.2.1//64",
                            "v=spf1 a:%{x}.example.com", "v=spf1 a:%{d0}.example.com", "v=spf1 a:%.example.com",
                            "v=spf1 a:example.com%", "v=spf1 unknown=%{z}", "v=spf1 a:%{c}.example.com",
                            "v=spf1 =a", "v=spf1 *a", "v=spf1 a:[192.0.2.1]", "v=spf1\ta", "v=spf1 a:ex\x01.com",
                            "v=spf2 -all", "v=spf1 mx:example.com/"}) {
        INFO(bad);
        auto r = parse_record(bad);
        CHECK_FALSE(r);
        if (!r) CHECK(r.error().kind == ErrorKind::data);
    }
    // Well-formed corner cases.
    for (const char* good : {"v=spf1 a:example.com.", "v=spf1 a:%{d}", "v=spf1 a:foo.%{d}", "v=spf1 a:x.co-m",
                             "v=spf1 a:x.1com", "v=spf1 exists:%{i}.%%", "v=spf1 mx:%{ir}.%{v}._spf.%{d2}/24",
                             "v=spf1 ip6:::ffff:192.0.2.1", "v=spf1 ip6:2001:db8::1", "v=spf1 ip4:0.0.0.0/0",
                             "v=spf1 moo.cow-far_out=man:dog/cat", "v=spf1 exp=%{l}.x.example", "v=spf1 -all "}) {
        INFO(good);
        CHECK(parse_record(good));
    }
}

TEST_CASE("spf: macros, RFC 7208 section 7.4 examples") {
    CHECK(ex("%{s}") == "strong-bad@email.example.com");
    CHECK(ex("%{o}") == "email.example.com");
    CHECK(ex("%{d}") == "email.example.com");
    CHECK(ex("%{d4}") == "email.example.com");
    CHECK(ex("%{d3}") == "email.example.com");
    CHECK(ex("%{d2}") == "example.com");
    CHECK(ex("%{d1}") == "com");
    CHECK(ex("%{dr}") == "com.example.email");
    CHECK(ex("%{d2r}") == "example.email");
    CHECK(ex("%{l}") == "strong-bad");
    CHECK(ex("%{l-}") == "strong.bad");
    CHECK(ex("%{lr}") == "strong-bad");
    CHECK(ex("%{lr-}") == "bad.strong");
    CHECK(ex("%{l1r-}") == "strong");
    CHECK(ex("%{ir}.%{v}._spf.%{d2}") == "3.2.0.192.in-addr._spf.example.com");
    CHECK(ex("%{lr-}.lp._spf.%{d2}") == "bad.strong.lp._spf.example.com");
    CHECK(ex("%{lr-}.lp.%{ir}.%{v}._spf.%{d2}") == "bad.strong.lp.3.2.0.192.in-addr._spf.example.com");
    CHECK(ex("%{ir}.%{v}.%{l1r-}.lp._spf.%{d2}") == "3.2.0.192.in-addr.strong.lp._spf.example.com");
    CHECK(ex("%{d2}.trusted-domains.example.net") == "example.com.trusted-domains.example.net");
    CHECK(ex("%{ir}.%{v}._spf.%{d2}", true) ==
          "1.0.b.c.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6._spf.example.com");
}

TEST_CASE("spf: macros, letters, escapes, URL escaping, delimiters") {
    CHECK(ex("%{h}") == "mx.example.org");
    CHECK(ex("%{i}") == "192.0.2.3");
    CHECK(ex("%{v}") == "in-addr");
    CHECK(ex("%{v}", true) == "ip6");
    CHECK(ex("%{p}") == "unknown");
    CHECK(ex("%%%_%-") == "% %20");
    CHECK(ex("%{S}") == "strong-bad%40email.example.com");
    CHECK(ex("%{L}") == "strong-bad");
    CHECK(ex("%{D2R}") == "example.email");
    CHECK(ex("%{s-}") == "strong.bad@email.example.com");
    CHECK(ex("%{l1-}") == "bad");
    CHECK(ex("%{d.-+,/_=}") == "email.example.com");
    CHECK(ex("%{s=}") == "strong-bad@email.example.com");
    CHECK(ex("%{d99}") == "email.example.com");
    CHECK(ex("%{d123456789012345}") == "email.example.com");
    // exp-only letters.
    CHECK(ex("%{c}", false, true) == "192.0.2.3");
    CHECK(ex("%{c}", true, true) == "2001:db8::cb01");
    CHECK(ex("%{r}", false, true) == "mx.receiver.test");
    CHECK(ex("%{t}", false, true) == "1234567890");
    CHECK(ex("%{i} is not one of %{d}'s designated mail servers.", false, true) ==
          "192.0.2.3 is not one of email.example.com's designated mail servers.");
    // The validated name when the caller has one.
    MacroContext c = rfc_context();
    c.validated = "mx.email.example.com";
    CHECK(*expand("%{p}", c) == "mx.email.example.com");
    // Errors.
    for (const char* bad : {"%{c}", "%{r}", "%{t}", "%{x}", "%{}", "%{d0}", "%{d", "%", "a%b", "%{d2x}", "%{drr}",
                            "%{d r}", "a b", "é"}) {
        INFO(bad);
        CHECK_FALSE(expand(bad, rfc_context()));
    }
    CHECK(expand("a b %{c}", rfc_context(), true));  // spaces are explain-string
}

TEST_CASE("spf: ip4 and ip6 mechanisms, qualifiers, IPv4-mapped clients") {
    FakeDns r;
    CHECK(run(r, "v=spf1 ip4:192.0.2.0/24 -all") == SpfResult::pass);
    CHECK(run(r, "v=spf1 ip4:192.0.2.3 -all") == SpfResult::pass);
    CHECK(run(r, "v=spf1 ip4:192.0.3.0/24 -all") == SpfResult::fail);
    CHECK(run(r, "v=spf1 ip4:192.0.3.0/24 ~all") == SpfResult::softfail);
    CHECK(run(r, "v=spf1 ip4:192.0.3.0/24 ?all") == SpfResult::neutral);
    CHECK(run(r, "v=spf1 ip4:192.0.3.0/24") == SpfResult::neutral);
    CHECK(run(r, "v=spf1 -ip4:192.0.2.0/25 +all") == SpfResult::fail);
    CHECK(run(r, "v=spf1 ip4:0.0.0.0/0 -all") == SpfResult::pass);
    CHECK(run(r, "v=spf1 ip6:::/0 -all") == SpfResult::fail);  // ip6 never matches an IPv4 client
    CHECK(run(r, "v=spf1 ip4:192.0.2.0/24 -all", "::ffff:192.0.2.3") == SpfResult::pass);
    CHECK(run(r, "v=spf1 ip6:2001:db8::/32 -all", "2001:db8::1") == SpfResult::pass);
    CHECK(run(r, "v=spf1 ip6:2001:db9::/32 -all", "2001:db8::1") == SpfResult::fail);
    CHECK(run(r, "v=spf1 ip4:0.0.0.0/0 -all", "2001:db8::1") == SpfResult::fail);
    CHECK(run(r, "v=spf1 ip6:2001:db8::1/127 -all", "2001:db8::0") == SpfResult::pass);
    CHECK(r.queries == 14);  // one TXT per check, nothing else
}

TEST_CASE("spf: a mechanism with CIDR lengths and the current domain") {
    FakeDns r;
    r.a("example.com", "192.0.2.9");
    r.aaaa("example.com", "2001:db8::9");
    r.a("other.example", "198.51.100.1");
    CHECK(run(r, "v=spf1 a -all", "192.0.2.9") == SpfResult::pass);
    CHECK(run(r, "v=spf1 a -all") == SpfResult::fail);
    CHECK(run(r, "v=spf1 a/24 -all") == SpfResult::pass);
    CHECK(run(r, "v=spf1 a//64 -all", "2001:db8::1") == SpfResult::pass);
    CHECK(run(r, "v=spf1 a/24 -all", "2001:db8::1") == SpfResult::fail);
    CHECK(run(r, "v=spf1 a:other.example -all", "198.51.100.1") == SpfResult::pass);
    CHECK(run(r, "v=spf1 a:other.example/16 -all", "198.51.3.3") == SpfResult::pass);
    CHECK(run(r, "v=spf1 -a:%{d} +all", "192.0.2.9") == SpfResult::fail);
}

TEST_CASE("spf: mx mechanism, the 10-name limit, null MX") {
    FakeDns r;
    r.mx("example.com", 20, "mx2.example.com");
    r.mx("example.com", 10, "mx1.example.com");
    r.a("mx1.example.com", "192.0.2.1");
    r.a("mx2.example.com", "192.0.2.2");
    r.aaaa("mx2.example.com", "2001:db8::2");
    CHECK(run(r, "v=spf1 mx -all", "192.0.2.2") == SpfResult::pass);
    CHECK(run(r, "v=spf1 mx -all", "192.0.2.3") == SpfResult::fail);
    CHECK(run(r, "v=spf1 mx/30 -all", "192.0.2.3") == SpfResult::pass);
    CHECK(run(r, "v=spf1 mx -all", "2001:db8::2") == SpfResult::pass);
    CHECK(run(r, "v=spf1 mx//120 -all", "2001:db8::ff") == SpfResult::pass);
    for (int k = 0; k < 11; ++k) r.mx("many.example", k, "h" + std::to_string(k) + ".many.example");
    r.a("h0.many.example", "192.0.2.3");
    CHECK(run(r, "v=spf1 mx:many.example -all") == SpfResult::permerror);
    r.mx("null.example", 0, "");
    CHECK(run(r, "v=spf1 mx:null.example -all") == SpfResult::fail);
}

TEST_CASE("spf: ptr mechanism and %{p}") {
    FakeDns r;
    r.ptr("3.2.0.192.in-addr.arpa", "bogus.other.example");
    r.ptr("3.2.0.192.in-addr.arpa", "mail.example.com");
    r.a("mail.example.com", "192.0.2.3");
    r.a("bogus.other.example", "192.0.2.99");
    CHECK(run(r, "v=spf1 ptr -all") == SpfResult::pass);
    CHECK(run(r, "v=spf1 ptr:example.com -all") == SpfResult::pass);
    CHECK(run(r, "v=spf1 ptr:other.example -all") == SpfResult::fail);  // not validated: A does not match
    CHECK(run(r, "v=spf1 ptr:ample.com -all") == SpfResult::fail);      // suffix on a label boundary only
    CHECK(run(r, "v=spf1 ptr -all", "192.0.2.4") == SpfResult::fail);  // no PTR: no match
    // %{p} in exists.
    r.a("mail.example.com.p.example", "127.0.0.2");
    CHECK(run(r, "v=spf1 exists:%{p}.p.example -all") == SpfResult::pass);
    // IPv6 reverse names.
    r.ptr("1.0.b.c.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa", "v6.example.com");
    r.aaaa("v6.example.com", "2001:db8::cb01");
    CHECK(run(r, "v=spf1 ptr -all", "2001:db8::cb01") == SpfResult::pass);
    // A PTR lookup failure is no match (§5.5), not temperror.
    r.fail("4.2.0.192.in-addr.arpa", dns::Type::ptr, dns::Status::servfail);
    CHECK(run(r, "v=spf1 ptr -all", "192.0.2.4") == SpfResult::fail);
    // More than 10 PTR names: only the first 10 are looked at.
    for (int k = 0; k < 11; ++k) r.ptr("5.2.0.192.in-addr.arpa", "h" + std::to_string(k) + ".example.com");
    r.a("h10.example.com", "192.0.2.5");
    r.a("h9.example.com", "192.0.2.77");
    CHECK(run(r, "v=spf1 ptr -all", "192.0.2.5") == SpfResult::fail);
}

TEST_CASE("spf: exists mechanism asks A whatever the client's family") {
    FakeDns r;
    r.a("3.2.0.192.in-addr.e.example", "127.0.0.2");
    r.a("1.0.b.c.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.e.example", "127.0.0.2");
    CHECK(run(r, "v=spf1 exists:%{ir}.%{v}.e.example -all") == SpfResult::pass);
    CHECK(run(r, "v=spf1 exists:%{ir}.%{v}.e.example -all", "192.0.2.4") == SpfResult::fail);
    CHECK(run(r, "v=spf1 exists:%{ir}.%{v}.e.example -all", "2001:db8::cb01") == SpfResult::pass);
}

TEST_CASE("spf: include maps the included result (section 5.2)") {
    FakeDns r;
    r.txt("pass.example", "v=spf1 +all");
    r.txt("fail.example", "v=spf1 -all");
    r.txt("soft.example", "v=spf1 ~all");
    r.txt("neutral.example", "v=spf1 ?all");
    r.txt("perm.example", "v=spf1 foo");
    r.txt("temp2.example", "v=spf1 a:temp.example");
    r.fail("temp.example", dns::Type::a, dns::Status::servfail);
    r.fail("tempt.example", dns::Type::txt, dns::Status::timeout);
    r.txt("nospf.example", "hello");
    CHECK(run(r, "v=spf1 include:pass.example -all") == SpfResult::pass);
    CHECK(run(r, "v=spf1 -include:pass.example +all") == SpfResult::fail);
    CHECK(run(r, "v=spf1 include:fail.example ~all") == SpfResult::softfail);
    CHECK(run(r, "v=spf1 include:soft.example -all") == SpfResult::fail);
    CHECK(run(r, "v=spf1 include:neutral.example -all") == SpfResult::fail);
    CHECK(run(r, "v=spf1 include:perm.example +all") == SpfResult::permerror);
    CHECK(run(r, "v=spf1 include:temp2.example +all") == SpfResult::temperror);
    CHECK(run(r, "v=spf1 include:tempt.example +all") == SpfResult::temperror);
    CHECK(run(r, "v=spf1 include:nospf.example +all") == SpfResult::permerror);
    CHECK(run(r, "v=spf1 include:nothere.example +all") == SpfResult::permerror);
    // The included record's %{d} is the included domain.
    r.txt("inc.example", "v=spf1 a:%{d} -all");
    r.a("inc.example", "192.0.2.3");
    CHECK(run(r, "v=spf1 include:inc.example -all") == SpfResult::pass);
}

TEST_CASE("spf: redirect (section 6.1)") {
    FakeDns r;
    r.txt("r.example", "v=spf1 ip4:192.0.2.0/24 -all");
    r.txt("rn.example", "v=spf1 a");
    r.txt("nospf.example", "something else");
    CHECK(run(r, "v=spf1 redirect=r.example") == SpfResult::pass);
    CHECK(run(r, "v=spf1 redirect=r.example", "198.51.100.1") == SpfResult::fail);
    CHECK(run(r, "v=spf1 -all redirect=r.example") == SpfResult::fail);       // a match wins: not used
    CHECK(run(r, "v=spf1 redirect=r.example ?all") == SpfResult::neutral);     // anywhere in the record
    CHECK(run(r, "v=spf1 redirect=nospf.example") == SpfResult::permerror);   // none becomes permerror
    CHECK(run(r, "v=spf1 redirect=nothere.example") == SpfResult::permerror);
    CHECK(run(r, "v=spf1 redirect=rn.example") == SpfResult::neutral);
    // %{d} in the target record is the target domain.
    r.txt("d.example", "v=spf1 a:%{d} -all");
    r.a("d.example", "192.0.2.3");
    CHECK(run(r, "v=spf1 redirect=d.example") == SpfResult::pass);
    // Redirect loops end at the lookup limit.
    r.txt("loop.example", "v=spf1 redirect=loop.example");
    CHECK(run(r, "v=spf1 redirect=loop.example") == SpfResult::permerror);
}

TEST_CASE("spf: exp= explanations (section 6.2)") {
    FakeDns r;
    r.txt("why.example.com", "%{i} is not one of %{d}'s designated mail servers.");
    r.txt("two.example", "one");
    r.txt("two.example", "two");
    r.txt("bad.example", "%{x} oops");
    r.fail("temp.example", dns::Type::txt, dns::Status::servfail);
    r.txt("empty.example", "");
    auto exp_of = [&](const std::string& record) {
        r.answers.erase({"example.com", dns::Type::txt});
        r.txt("example.com", record);
        auto o = check_mailfrom(r, query("192.0.2.3"));
        return std::make_pair(o.result, o.explanation);
    };
    CHECK(exp_of("v=spf1 -all exp=why.%{d}") ==
          std::make_pair(SpfResult::fail, std::string("192.0.2.3 is not one of example.com's designated mail servers.")));
    CHECK(exp_of("v=spf1 ~all exp=why.%{d}") == std::make_pair(SpfResult::softfail, std::string()));
    CHECK(exp_of("v=spf1 -all exp=two.example") == std::make_pair(SpfResult::fail, std::string()));
    CHECK(exp_of("v=spf1 -all exp=bad.example") == std::make_pair(SpfResult::fail, std::string()));
    CHECK(exp_of("v=spf1 -all exp=temp.example") == std::make_pair(SpfResult::fail, std::string()));
    CHECK(exp_of("v=spf1 -all exp=nothere.example") == std::make_pair(SpfResult::fail, std::string()));
    CHECK(exp_of("v=spf1 -all exp=empty.example") == std::make_pair(SpfResult::fail, std::string()));
    // An include's exp is not used; a redirect target's is, the original's is not.
    r.txt("inc.example", "v=spf1 -all exp=why.example.com");
    r.txt("red.example", "v=spf1 -all exp=why.example.com");
    r.txt("other.example", "from the original");
    CHECK(exp_of("v=spf1 include:inc.example -all") == std::make_pair(SpfResult::fail, std::string()));
    CHECK(exp_of("v=spf1 exp=other.example redirect=red.example").second ==
          "192.0.2.3 is not one of red.example's designated mail servers.");
}

TEST_CASE("spf: record selection in DNS (section 4.5)") {
    FakeDns r;
    Query q = query("192.0.2.3");
    CHECK(check_mailfrom(r, q).result == SpfResult::none);  // NXDOMAIN
    r.txt("example.com", "not spf");
    CHECK(check_mailfrom(r, q).result == SpfResult::none);  // no SPF record among the TXT
    r.txt("example.com", "v=spf1 +all");
    CHECK(check_mailfrom(r, q).result == SpfResult::pass);
    r.txt("example.com", "v=spf1 -all");
    auto o = check_mailfrom(r, q);
    CHECK(o.result == SpfResult::permerror);  // two records
    CHECK_FALSE(o.explanation.empty());
    // Several strings of one TXT record are joined (the resolver's text).
    FakeDns s;
    dns::Record rec;
    rec.type = dns::Type::txt;
    rec.strings = {"v=spf1 ip4:192.0.2.0/24", " -all"};
    rec.text = "v=spf1 ip4:192.0.2.0/24 -all";
    s.answers[{"example.com", dns::Type::txt}].records.push_back(rec);
    CHECK(check_mailfrom(s, q).result == SpfResult::pass);
    // A temporary failure on the record is temperror.
    FakeDns t;
    t.fail("example.com", dns::Type::txt, dns::Status::timeout);
    o = check_mailfrom(t, q);
    CHECK(o.result == SpfResult::temperror);
    CHECK(o.explanation.find("timeout") != std::string::npos);
    t.fail("example.com", dns::Type::txt, dns::Status::servfail);
    CHECK(check_mailfrom(t, q).result == SpfResult::temperror);
}

TEST_CASE("spf: initial processing (section 4.3) and identities") {
    FakeDns r;
    r.txt("example.com", "v=spf1 +all");
    r.txt("helo.example", "v=spf1 -all");
    Query q = query("192.0.2.3", "user@example.com", "helo.example");
    auto o = check_mailfrom(r, q);
    CHECK(o.result == SpfResult::pass);
    CHECK(o.identity == "mailfrom");
    CHECK(o.domain == "example.com");
    o = check_helo(r, q);
    CHECK(o.result == SpfResult::fail);
    CHECK(o.identity == "helo");
    // The null sender is postmaster@HELO.
    q.sender = "";
    o = check_mailfrom(r, q);
    CHECK(o.result == SpfResult::fail);
    CHECK(o.domain == "helo.example");
    // Malformed or single-label domains give none without a query.
    int before = r.queries;
    CHECK(check_host(r, q, "example..com", "x@example..com").result == SpfResult::none);
    CHECK(check_host(r, q, "localhost", "x@localhost").result == SpfResult::none);
    CHECK(check_host(r, q, std::string(64, 'a') + ".com", "x@y").result == SpfResult::none);
    q.helo = "[192.0.2.1]";
    CHECK(check_helo(r, q).result == SpfResult::none);
    q.helo = "nodots";
    CHECK(check_helo(r, q).result == SpfResult::none);
    CHECK(r.queries == before);
    // An empty local-part is postmaster.
    r.txt("lp.example", "v=spf1 exists:%{l}.lp.example -all");
    r.a("postmaster.lp.example", "127.0.0.2");
    CHECK(check_host(r, query("192.0.2.3"), "lp.example", "@lp.example").result == SpfResult::pass);
    // A client address that is not one: permerror.
    CHECK(check_mailfrom(r, query("not-an-ip")).result == SpfResult::permerror);
}

TEST_CASE("spf: the 10 DNS-term limit (section 4.6.4)") {
    FakeDns r;
    r.a("h.example", "198.51.100.1");
    std::string ten = "v=spf1";
    for (int k = 0; k < 10; ++k) ten += " a:h.example";
    CHECK(run(r, ten + " -all") == SpfResult::fail);
    CHECK(run(r, ten + " a:h.example -all") == SpfResult::permerror);
    CHECK(run(r, ten + " ip4:192.0.2.3 -all") == SpfResult::pass);  // ip4 and all cost nothing
    // Includes count, and the included terms too.
    r.txt("i5.example", "v=spf1 a:h.example a:h.example a:h.example a:h.example");
    CHECK(run(r, "v=spf1 include:i5.example include:i5.example -all") == SpfResult::fail);  // 2 + 8 = 10
    CHECK(run(r, "v=spf1 include:i5.example include:i5.example mx:h.example -all") == SpfResult::permerror);
    // A redirect counts.
    std::string nine = "v=spf1";
    for (int k = 0; k < 9; ++k) nine += " a:h.example";
    r.txt("r.example", "v=spf1 -all");
    CHECK(run(r, nine + " redirect=r.example") == SpfResult::fail);
    r.txt("r2.example", "v=spf1 a:h.example -all");
    CHECK(run(r, nine + " redirect=r2.example") == SpfResult::permerror);
    // A match before the limit wins.
    CHECK(run(r, ten + " a:h.example -all", "198.51.100.1") == SpfResult::pass);
    run(r, "v=spf1 ip4:192.0.2.1 a:h.example mx:h.example -all");
    auto o = check_mailfrom(r, query("192.0.2.3"));
    CHECK(o.result == SpfResult::fail);
    CHECK(o.lookups == 2);
}

TEST_CASE("spf: the 2 void-lookup limit (section 4.6.4)") {
    FakeDns r;
    r.txt("nodata.example", "not spf");  // exists, no A: NODATA
    CHECK(run(r, "v=spf1 a:nx1.example a:nx2.example -all") == SpfResult::fail);
    CHECK(run(r, "v=spf1 a:nx1.example a:nx2.example a:nx3.example -all") == SpfResult::permerror);
    CHECK(run(r, "v=spf1 a:nodata.example mx:nodata.example exists:nx.example -all") == SpfResult::permerror);
    CHECK(run(r, "v=spf1 a:nx1.example a:nx2.example ip4:192.0.2.3 -all") == SpfResult::pass);
    auto o = check_mailfrom(r, query("192.0.2.3"));
    CHECK(o.void_lookups == 2);
}

TEST_CASE("spf: temperror for DNS failures in mechanisms") {
    FakeDns r;
    r.fail("t.example", dns::Type::a, dns::Status::timeout);
    r.fail("s.example", dns::Type::mx, dns::Status::servfail);
    r.mx("m.example", 10, "t.example");
    CHECK(run(r, "v=spf1 a:t.example -all") == SpfResult::temperror);
    CHECK(run(r, "v=spf1 mx:s.example -all") == SpfResult::temperror);
    CHECK(run(r, "v=spf1 mx:m.example -all") == SpfResult::temperror);
    CHECK(run(r, "v=spf1 exists:t.example -all") == SpfResult::temperror);
    CHECK(run(r, "v=spf1 ip4:192.0.2.3 a:t.example -all") == SpfResult::pass);  // never asked
}

TEST_CASE("spf: syntax errors anywhere make permerror before any evaluation") {
    FakeDns r;
    CHECK(run(r, "v=spf1 +all foo") == SpfResult::permerror);
    CHECK(run(r, "v=spf1 ip4:192.0.2.3 a:%{z}.example -all") == SpfResult::permerror);
    CHECK(run(r, "v=spf1 +all unknown=%") == SpfResult::permerror);
    CHECK(run(r, "v=spf1 +all unknown=whatever") == SpfResult::pass);
    CHECK(run(r, "v=spf1 +all ip4:192.0.2.1/40") == SpfResult::permerror);
}

TEST_CASE("spf: long macro expansions lose labels on the left") {
    FakeDns r;
    // sender local-part of 60 chars repeated: %{l}.%{l}.%{l}.%{l}.%{l} is over 253 octets.
    std::string l(60, 'x');
    std::string sender = l + "@example.com";
    r.txt("example.com", "v=spf1 exists:%{l}.%{l}.%{l}.%{l}.%{l}.e.example -all");
    std::string fitted = l + "." + l + "." + l + "." + l + ".e.example";
    r.a(fitted, "127.0.0.2");
    CHECK(check_mailfrom(r, query("192.0.2.3", sender)).result == SpfResult::pass);
}
