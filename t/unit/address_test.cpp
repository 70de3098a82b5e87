#include "libmail/mail/address.hpp"
#include "libmail/base/limits.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

using namespace mail;

namespace {
std::vector<std::string> specs(std::string_view v) {
    auto r = parse_address_list(v);
    INFO(std::string(v));
    REQUIRE(r.ok());
    std::vector<std::string> out;
    for (const auto& a : *r) out.push_back(a.addr_spec());
    return out;
}
ErrorKind fails(std::string_view v) {
    auto r = parse_address_list(v);
    INFO(std::string(v));
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().text.find('\n') == std::string::npos);
    return r.error().kind;
}
} // namespace

TEST_CASE("address: display names and angle addresses") {
    auto r = parse_address_list("\"Smith, John\" <John.Smith@Example.org>, Ann Lee <ann@example.net>");
    REQUIRE(r.ok());
    REQUIRE(r->size() == 2);
    CHECK((*r)[0].display == "Smith, John");
    CHECK((*r)[0].local == "John.Smith");
    CHECK((*r)[0].domain == "Example.org");
    CHECK((*r)[1].display == "Ann Lee");
    CHECK((*r)[1].addr_spec() == "ann@example.net");
    auto q = parse_address_list("\"a \\\"quoted\\\" name\" <x@y.org>");
    CHECK((*q)[0].display == "a \"quoted\" name");
    auto enc = parse_address_list("=?UTF-8?B?SsO2cmc=?= <joerg@example.de>");
    CHECK((*enc)[0].display == "=?UTF-8?B?SsO2cmc=?=");
    auto obs = parse_address_list("John Q. Public <jqp@example.org>");
    CHECK((*obs)[0].display == "John Q. Public");
}

TEST_CASE("address: comments anywhere folding whitespace may be") {
    CHECK(specs("john (the man) @ (home) example.org") == std::vector<std::string>{"john@example.org"});
    CHECK(specs("(lead) a@b.org (trail (nested \\) paren))") == std::vector<std::string>{"a@b.org"});
    CHECK(specs("Ann (x) <ann (y) @ b.org (z)>") == std::vector<std::string>{"ann@b.org"});
}

TEST_CASE("address: groups are flattened") {
    CHECK(specs("Undisclosed recipients:;").empty());
    CHECK(specs("team: a@x.example, \"B\" <b@y.example>;, c@z.example") ==
          std::vector<std::string>{"a@x.example", "b@y.example", "c@z.example"});
    CHECK(fails("team: a@x.example") == ErrorKind::data);
}

TEST_CASE("address: obsolete syntax") {
    CHECK(specs("<@relay1.example,@relay2.example:user@dest.example>") == std::vector<std::string>{"user@dest.example"});
    CHECK(specs("a@x.example,,b@y.example, ,") == std::vector<std::string>{"a@x.example", "b@y.example"});
    CHECK(specs("john . doe @ example . org") == std::vector<std::string>{"john.doe@example.org"});
    // Real-world sloppiness accepted: unquoted dots anywhere in the local part,
    // a trailing dot on the domain.
    auto r = parse_address_list("john..doe@x.org, .x@y.org, z.@w.org, user@dom.example.");
    REQUIRE(r.ok());
    REQUIRE(r->size() == 4);
    CHECK((*r)[0].local == "john..doe");
    CHECK((*r)[1].local == ".x");
    CHECK((*r)[2].local == "z.");
    CHECK((*r)[3].domain == "dom.example.");
    CHECK(normalize_address((*r)[3]) == "user@dom.example");
    CHECK(normalize_address(*parse_addr_spec("John..Doe@X.org")) == "\"john..doe\"@x.org");
}

TEST_CASE("address: quoted local parts and domain literals and UTF-8") {
    auto r = parse_address_list("\"john doe\"@example.org, user@[192.0.2.1]");
    REQUIRE(r.ok());
    CHECK((*r)[0].local == "john doe");
    CHECK((*r)[0].addr_spec() == "\"john doe\"@example.org");
    CHECK((*r)[1].domain == "[192.0.2.1]");
    CHECK(specs("J\xc3\xb6rg <j\xc3\xb6rg@b\xc3\xbc" "cher.example>") ==
          std::vector<std::string>{"j\xc3\xb6rg@b\xc3\xbc" "cher.example"});
}

TEST_CASE("address: folding whitespace inside values") {
    CHECK(specs("Ann\r\n <ann@example.org>,\r\n\tbob@example.org") ==
          std::vector<std::string>{"ann@example.org", "bob@example.org"});
}

TEST_CASE("address: malformed lists are data errors") {
    CHECK(fails("nodomain") == ErrorKind::data);
    CHECK(fails("\"unterminated@x.org") == ErrorKind::data);
    CHECK(fails("a@x.org (unterminated") == ErrorKind::data);
    CHECK(fails("Ann <ann@x.org") == ErrorKind::data);
    CHECK(fails("a@x.org b@y.org") == ErrorKind::data);
    CHECK(fails("a@") == ErrorKind::data);
    CHECK(fails("@x.org") == ErrorKind::data);
    CHECK(fails("a@x..org") == ErrorKind::data);
    CHECK(fails("a\x01@x.org") == ErrorKind::data);
    CHECK(fails("<>") == ErrorKind::data);
}

TEST_CASE("address: limits") {
    std::string many;
    for (std::size_t i = 0; i <= limits::addresses_per_field; ++i) many += "a@b.org,";
    CHECK(fails(many) == ErrorKind::data);
    CHECK(fails(std::string(limits::header_field_size + 1, ' ')) == ErrorKind::data);
    CHECK(fails(std::string(limits::local_part_length + 1, 'a') + "@x.org") == ErrorKind::data);
    CHECK(parse_address_list(std::string(limits::local_part_length, 'a') + "@x.org").ok());
    CHECK(fails("a@" + std::string(limits::domain_length + 1, 'x')) == ErrorKind::data);
    // address_length (320) is local_part_length + 1 + domain_length + 0: it
    // cannot be exceeded by parts within their own limits, so it needs no test.
}

TEST_CASE("address: SMTP paths") {
    CHECK(parse_path("<User@Example.org>")->addr_spec() == "User@Example.org");
    CHECK(parse_path("<>")->empty());
    CHECK(parse_path("  <@a.example,@b.example:u@c.example> ")->addr_spec() == "u@c.example");
    CHECK(parse_path("bare@example.org")->addr_spec() == "bare@example.org");
    CHECK_FALSE(parse_path("<a@b.org> junk").ok());
    CHECK_FALSE(parse_path("<a@b.org").ok());
    CHECK_FALSE(parse_path("").ok());
    CHECK(parse_addr_spec(" a@b.org ")->addr_spec() == "a@b.org");
    CHECK_FALSE(parse_addr_spec("a@b.org, c@d.org").ok());
    CHECK_FALSE(parse_addr_spec("local").ok());
}

TEST_CASE("address: normalisation for matching") {
    CHECK(normalize_domain("Example.ORG.") == "example.org");
    CHECK(normalize_local("John.Doe") == "john.doe");
    CHECK(normalize_address(*parse_addr_spec("\"John\"@Example.org")) == "john@example.org");
    CHECK(normalize_address(*parse_addr_spec("\"John Doe\"@x.org")) == "\"john doe\"@x.org");
    CHECK(normalize_address(*parse_addr_spec("\"a\\\"b\"@x.org")) == "\"a\\\"b\"@x.org");
    CHECK(normalize_address(*parse_addr_spec("John@Example.org")) ==
          normalize_address(*parse_addr_spec("john@EXAMPLE.ORG.")));
    std::string n = normalize_address(*parse_addr_spec("\"John Doe\"@x.org"));
    CHECK(normalize_address(*parse_addr_spec(n)) == n);  // idempotent
}

TEST_CASE("address: BATV tags are stripped; SRS wrappers only of trusted forwarders") {
    const std::vector<std::string> fwd{"fwd.example", "first.example", "second.example"};
    auto strip = [&](std::string_view s) { return normalize_address(strip_sender_tags(*parse_addr_spec(s), fwd)); };
    auto untrusted = [](std::string_view s) { return normalize_address(strip_sender_tags(*parse_addr_spec(s))); };
    CHECK(strip("prvs=0123456789=bob@x.org") == "bob@x.org");
    CHECK(strip("PRVS=0123456789=bob@x.org") == "bob@x.org");
    CHECK(strip("msprvs1=19abcdef=bob@x.org") == "bob@x.org");
    CHECK(untrusted("prvs=0123456789=bob@x.org") == "bob@x.org");
    CHECK(strip("SRS0=HHH=TT=orig.example=alice@fwd.example") == "alice@orig.example");
    CHECK(strip("srs0=HHH=TT=orig.example=a=b@fwd.example") == "a=b@orig.example");
    CHECK(strip("SRS1=HHH=first.example==HHH=TT=orig.example=alice@second.example") == "alice@orig.example");
    CHECK(strip("prvs=0123456789=SRS0=HHH=TT=orig.example=alice@fwd.example") == "alice@orig.example");
    CHECK(strip("SRS0=broken@fwd.example") == "srs0=broken@fwd.example");
    CHECK(strip("\"SRS0=H=T=not a domain=x\"@fwd.example") == "\"srs0=h=t=not a domain=x\"@fwd.example");
    // Nobody checked the hash: an SRS address of any other domain is that domain's own.
    CHECK(untrusted("SRS0=HHH=TT=orig.example=alice@fwd.example") == "srs0=hhh=tt=orig.example=alice@fwd.example");
    CHECK(strip("SRS0=HHH=TT=orig.example=alice@attacker.example") ==
          "srs0=hhh=tt=orig.example=alice@attacker.example");
    CHECK(strip("prvs=0123456789=SRS0=HHH=TT=orig.example=alice@attacker.example") ==
          "srs0=hhh=tt=orig.example=alice@attacker.example");
    CHECK(untrusted("SRS1=HHH=first.example==HHH=TT=orig.example=alice@second.example") ==
          "srs1=hhh=first.example==hhh=tt=orig.example=alice@second.example");
    // SRS1: as far as every forwarder on the way is trusted. The last one
    // vouches for the SRS0 address it received, the first one for the sender.
    CHECK(normalize_address(strip_sender_tags(*parse_addr_spec("SRS1=HHH=first.example==HHH=TT=orig.example=alice@second.example"),
                                              {"second.example"})) == "srs0=hhh=tt=orig.example=alice@first.example");
    CHECK(normalize_address(strip_sender_tags(*parse_addr_spec("SRS1=HHH=first.example==HHH=TT=orig.example=alice@second.example"),
                                              {"first.example"})) ==
          "srs1=hhh=first.example==hhh=tt=orig.example=alice@second.example");
    // The forwarder list holds normalised domains; the address's domain is normalised before the lookup.
    CHECK(strip("SRS0=HHH=TT=orig.example=alice@FWD.Example.") == "alice@orig.example");
    CHECK_FALSE(parse_addr_spec("two words@x.org").ok());
    CHECK(strip("plain@x.org") == "plain@x.org");
}

TEST_CASE("address: domain syntax") {
    CHECK(is_valid_domain("example.org"));
    CHECK(is_valid_domain("example.org."));
    CHECK(is_valid_domain("localhost"));
    CHECK(is_valid_domain("[192.0.2.1]"));
    CHECK(is_valid_domain("xn--bcher-kva.example"));
    CHECK_FALSE(is_valid_domain(""));
    CHECK_FALSE(is_valid_domain("a..b"));
    CHECK_FALSE(is_valid_domain("-a.org"));
    CHECK_FALSE(is_valid_domain("a b.org"));
    CHECK_FALSE(is_valid_domain(std::string(64, 'a') + ".org"));
}

TEST_CASE("address: every fixture parses to the count in its name") {
    // NN-description.txt: NN is the number of addresses the value holds.
    std::vector<std::filesystem::path> paths;
    for (const auto& entry : std::filesystem::directory_iterator(MAILSTAMP_FIXTURES "/address"))
        paths.push_back(entry.path());
    std::sort(paths.begin(), paths.end());
    bool folded = false;
    for (const auto& path : paths) {
        std::ifstream f(path, std::ios::binary);
        REQUIRE(f);
        std::stringstream ss;
        ss << f.rdbuf();
        std::string value = ss.str();
        std::string name = path.filename().string();
        INFO(name);
        REQUIRE(name.size() > 3);
        REQUIRE(name[2] == '-');
        int want = std::stoi(name.substr(0, 2));
        auto r = parse_address_list(value);
        INFO((r.ok() ? std::string() : r.error().text));
        REQUIRE(r.ok());
        CHECK(static_cast<int>(r->size()) == want);
        for (const auto& a : *r) {
            auto again = parse_addr_spec(a.addr_spec());
            REQUIRE(again.ok());
            CHECK(normalize_address(*again) == normalize_address(a));
        }
        if (value.find("\r\n") != std::string::npos) folded = true;
    }
    CHECK(paths.size() >= 8);
    CHECK(folded);  // at least one fixture is folded with CRLF
}

namespace {
Address spec(std::string_view s) {
    auto r = parse_addr_spec(s);
    INFO(std::string(s));
    REQUIRE(r.ok());
    return *r;
}
std::string stripped(std::string_view s) {
    return normalize_address(strip_sender_tags(spec(s), {"fwd.example", "first.example", "second.example", "f.example"}));
}
} // namespace

TEST_CASE("address: display names in more forms") {
    auto r = parse_address_list("John (middle) \"Q\" Public <a@x.org>, \"Smith,\r\n John\" <b@x.org>, "
                                "(only a comment) <c@x.org>, \"\" <d@x.org>, J\xc3\xb6rg M\xc3\xbcller <e@x.org>");
    REQUIRE(r.ok());
    REQUIRE(r->size() == 5);
    CHECK((*r)[0].display == "John Q Public");  // comment dropped
    CHECK((*r)[1].display == "Smith, John");    // unfolded: CRLF gone, WSP kept
    CHECK((*r)[2].display.empty());
    CHECK((*r)[3].display.empty());
    CHECK((*r)[4].display == "J\xc3\xb6rg M\xc3\xbcller");
    auto enc = parse_address_list("=?utf-8?q?J=C3=B6rg?= =?utf-8?q?_M=C3=BCller?= <j@x.org>");
    REQUIRE(enc.ok());
    CHECK((*enc)[0].display == "=?utf-8?q?J=C3=B6rg?= =?utf-8?q?_M=C3=BCller?=");
    auto pairs = parse_address_list("\"back\\\\slash \\(not a comment\\)\" <a@x.org>");
    REQUIRE(pairs.ok());
    CHECK((*pairs)[0].display == "back\\slash (not a comment)");
    CHECK(specs("Ann<a@x.org>") == std::vector<std::string>{"a@x.org"});
}

TEST_CASE("address: comments in every CFWS position") {
    auto r = parse_address_list("(a) Ann (b) < (c) ann (d) . (e) lee (f) @ (g) x (h) . (i) org (j) > (k) , (l) bob@y.org (m)");
    REQUIRE(r.ok());
    REQUIRE(r->size() == 2);
    CHECK((*r)[0].display == "Ann");
    CHECK((*r)[0].addr_spec() == "ann.lee@x.org");
    CHECK((*r)[1].addr_spec() == "bob@y.org");
    CHECK(specs("a@x.org (one (two (three)) \\( )") == std::vector<std::string>{"a@x.org"});
    CHECK(specs("a@x.org (folded\r\n comment)") == std::vector<std::string>{"a@x.org"});
    CHECK(specs("()") .empty());
    CHECK(specs("").empty());
    std::string deep = "a@x.org " + std::string(100, '(') + std::string(100, ')');
    CHECK(fails(deep) == ErrorKind::data);
}

TEST_CASE("address: group edge cases") {
    CHECK(specs("Undisclosed recipients: ;").empty());
    CHECK(specs("a@x.org, Empty:;, b@y.org") == std::vector<std::string>{"a@x.org", "b@y.org"});
    CHECK(specs("g: (c) a@x.org (d) , , b@y.org ;") == std::vector<std::string>{"a@x.org", "b@y.org"});
    auto r = parse_address_list("Team: Ann <a@x.org>;");
    REQUIRE(r.ok());
    CHECK((*r)[0].display == "Ann");
    // Members need separators, as list elements do (a bug once let these through).
    CHECK(fails("g: a@x.org b@y.org;") == ErrorKind::data);
    CHECK(fails("g: <a@x.org> <b@y.org>;") == ErrorKind::data);
    CHECK(fails("g: h: a@x.org;;") == ErrorKind::data);  // no nested groups
    CHECK(fails("g:;;") == ErrorKind::data);
    CHECK(fails("g: a@x.org; b@y.org") == ErrorKind::data);
    CHECK(fails("a@x.org;") == ErrorKind::data);
}

TEST_CASE("address: addr_spec keeps case and quotes only when needed") {
    auto r = parse_address_list("\"John Doe\"@Example.org, \"john\"@x.org, \"a\\\"b\"@x.org, a.@x.org");
    REQUIRE(r.ok());
    REQUIRE(r->size() == 4);
    // addr_spec() is the address as written: case kept (a bug once folded it).
    CHECK((*r)[0].local == "John Doe");
    CHECK((*r)[0].addr_spec() == "\"John Doe\"@Example.org");
    CHECK((*r)[1].addr_spec() == "john@x.org");
    CHECK((*r)[2].local == "a\"b");
    CHECK((*r)[2].addr_spec() == "\"a\\\"b\"@x.org");
    CHECK((*r)[3].addr_spec() == "\"a.\"@x.org");  // obsolete form comes out valid
    CHECK(Address{}.addr_spec().empty());
    for (const auto& a : *r) CHECK(parse_addr_spec(a.addr_spec())->local == a.local);
}

TEST_CASE("address: quoted local parts and domain literals in detail") {
    auto r = parse_address_list("\"a\\ b\"@x.org, \"folded\r\n here\"@x.org, user@[IPv6:2001:db8::1], "
                                "user@[ 192.0.2.1 ], \"a\".\"b\"@x.org");
    REQUIRE(r.ok());
    REQUIRE(r->size() == 5);
    CHECK((*r)[0].local == "a b");
    CHECK((*r)[1].local == "folded here");
    CHECK((*r)[2].domain == "[IPv6:2001:db8::1]");
    CHECK((*r)[3].domain == "[192.0.2.1]");
    CHECK((*r)[4].local == "a.b");
    CHECK(fails("user@[192.0.2.1") == ErrorKind::data);
    CHECK(fails("user@[1[2]") == ErrorKind::data);
    CHECK(fails("user@[1.2.3.4].org") == ErrorKind::data);
    CHECK(fails("user@\"quoted.domain\"") == ErrorKind::data);
    CHECK(fails("\"\"@x.org") == ErrorKind::data);  // empty local part
    CHECK(fails("two words@x.org") == ErrorKind::data);
}

TEST_CASE("address: UTF-8 atoms") {
    auto r = parse_address_list("\xe5\xbc\xa0\xe4\xbc\x9f@\xe4\xbe\x8b\xe5\xad\x90.\xe5\x9b\xbd, J\xc3\xb6RG@B\xc3\xbc" "cher.example");
    REQUIRE(r.ok());
    REQUIRE(r->size() == 2);
    CHECK((*r)[0].local == "\xe5\xbc\xa0\xe4\xbc\x9f");
    CHECK((*r)[0].domain == "\xe4\xbe\x8b\xe5\xad\x90.\xe5\x9b\xbd");
    // Only ASCII letters fold: UTF-8 bytes compare as they are.
    CHECK(normalize_address((*r)[1]) == "j\xc3\xb6rg@b\xc3\xbc" "cher.example");
}

TEST_CASE("address: every malformed form is a one-line data error") {
    for (std::string_view bad : std::initializer_list<std::string_view>{"nodomain", "Ann Lee", "Ann <annx.org>", "a@", "a@.org", "a@x.org..", "@x.org",
                                 "\"a@x.org", "Ann \"unterminated <a@x.org>", "a@x.org (", "a@x.org (nested (one)",
                                 "Ann <a@x.org", "<a@x.org", "Ann <a@x.org>>", "a@x.org>", "<a@x.org> junk",
                                 "a@x.org b@y.org", "a@b@c", ">", "<", ":", ";", "\\", "a\"b\"@x.org junk",
                                 "a@x.org\r\nb@y.org", "a@x.org\x7f", std::string_view("a\0@x.org", 8),
                                 "<@relay.example:>", "<@relay.example,x:u@d.org>", "<@:u@d.org>"}) {
        INFO(std::string(bad));
        CHECK(fails(bad) == ErrorKind::data);
    }
    auto r = parse_address_list("\x01\x02\x03");
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().text.find('\x01') == std::string::npos);
}

TEST_CASE("address: each limit is enforced at its boundary") {
    SECTION("addresses_per_field") {
        std::string list;
        for (std::size_t i = 0; i < limits::addresses_per_field; ++i) list += "a@b.org,";
        auto r = parse_address_list(list);
        REQUIRE(r.ok());
        CHECK(r->size() == limits::addresses_per_field);
        CHECK(fails(list + "one@more.org") == ErrorKind::data);
        std::string group = "g:";
        for (std::size_t i = 0; i <= limits::addresses_per_field; ++i) group += "a@b.org,";
        CHECK(fails(group + ";") == ErrorKind::data);
    }
    SECTION("header_field_size") {
        std::string at_limit = "a@b.org" + std::string(limits::header_field_size - 7, ' ');
        REQUIRE(at_limit.size() == limits::header_field_size);
        CHECK(parse_address_list(at_limit).ok());
        CHECK(fails(at_limit + " ") == ErrorKind::data);
        CHECK_FALSE(parse_addr_spec(at_limit + " ").ok());
        CHECK_FALSE(parse_path(at_limit + " ").ok());
    }
    SECTION("local_part_length") {
        std::string l(limits::local_part_length, 'a');
        CHECK(parse_addr_spec(l + "@x.org").ok());
        CHECK(parse_path("<" + l + "@x.org>").ok());
        CHECK(fails(l + "b@x.org") == ErrorKind::data);
        CHECK(fails("\"" + l + "b\"@x.org") == ErrorKind::data);
        CHECK_FALSE(parse_path("<" + l + "b@x.org>").ok());
    }
    SECTION("domain_length") {
        std::string d = std::string(63, 'd') + "." + std::string(63, 'd') + "." + std::string(63, 'd') + "." +
                        std::string(63, 'd');
        REQUIRE(d.size() == limits::domain_length);
        CHECK(parse_addr_spec("a@" + d).ok());
        CHECK(fails("a@" + d + "d") == ErrorKind::data);
        CHECK_FALSE(parse_path("<a@" + d + "d>").ok());
    }
    SECTION("address_length") {
        // The two part limits add up to address_length, so the longest
        // address the parts allow is exactly at the limit and accepted.
        std::string l(limits::local_part_length, 'a');
        std::string d = std::string(63, 'd') + "." + std::string(63, 'd') + "." + std::string(63, 'd') + "." +
                        std::string(63, 'd');
        auto a = parse_addr_spec(l + "@" + d);
        REQUIRE(a.ok());
        CHECK(a->addr_spec().size() == limits::address_length);
        CHECK_FALSE(parse_addr_spec(l + "@" + d + "d").ok());
        CHECK_FALSE(parse_addr_spec(l + "a@" + d).ok());
    }
}

TEST_CASE("address: parse_path forms") {
    CHECK(parse_path("<a@b.org>\r\n")->addr_spec() == "a@b.org");
    CHECK(parse_path(" <> ")->empty());
    CHECK(parse_path("<>")->addr_spec().empty());
    CHECK(normalize_address(*parse_path("<>")).empty());
    CHECK(parse_path("<@a.example:u@c.example>")->addr_spec() == "u@c.example");
    CHECK(parse_path("<\"john doe\"@x.org>")->local == "john doe");
    CHECK(parse_path("<user@[192.0.2.1]>")->domain == "[192.0.2.1]");
    for (std::string_view bad : {"<> junk", "< >", "<<a@b.org>>", "<a@b.org> <c@d.org>", "<@a.example,u@c.example>",
                                 "<Ann <a@b.org>>", "Ann <a@b.org>", "<a b@c.org>", "<a@b.org>>", "   ", "<a@>",
                                 "<@a.example>"}) {
        INFO(std::string(bad));
        auto r = parse_path(bad);
        REQUIRE_FALSE(r.ok());
        CHECK(r.error().kind == ErrorKind::data);
    }
}

TEST_CASE("address: parse_addr_spec forms") {
    CHECK(spec("(c) a@b.org (d)").addr_spec() == "a@b.org");
    CHECK(spec("\r\n a@b.org\r\n ").addr_spec() == "a@b.org");
    CHECK(spec("a@b.org.").domain == "b.org.");
    CHECK(spec("a@b.org").display.empty());
    for (std::string_view bad : {"<a@b.org>", "Ann <a@b.org>", "a@b.org,", "a@b.org;", "g: a@b.org;", "", "a@",
                                 "@b.org", "a b@c.org"}) {
        INFO(std::string(bad));
        auto r = parse_addr_spec(bad);
        REQUIRE_FALSE(r.ok());
        CHECK(r.error().kind == ErrorKind::data);
    }
}

TEST_CASE("address: normalisation in detail") {
    CHECK(normalize_domain("EXAMPLE.org") == "example.org");
    CHECK(normalize_domain("example.org.") == "example.org");
    CHECK(normalize_domain("[IPv6:2001:DB8::1]") == "[ipv6:2001:db8::1]");
    CHECK(normalize_domain(".") == ".");
    CHECK(normalize_domain("") == "");
    CHECK(normalize_local("Ann.Lee") == "ann.lee");
    CHECK(normalize_local("a b") == "\"a b\"");
    CHECK(normalize_local("a\\b") == "\"a\\\\b\"");
    CHECK(normalize_local("a.") == "\"a.\"");
    CHECK(normalize_local("a..b") == "\"a..b\"");
    CHECK(normalize_local("") == "\"\"");
    CHECK(normalize_address(spec("\"John\"@x.org")) == normalize_address(spec("john@X.ORG")));
    CHECK(normalize_address(spec("\"j.o.h.n\"@x.org")) == "j.o.h.n@x.org");
    CHECK(normalize_address(spec("\"John Doe\"@X.org.")) == "\"john doe\"@x.org");
    CHECK(normalize_address(Address{}).empty());
    for (std::string_view s : {"\"John Doe\"@x.org", "\"a\\\"b\"@X.org.", "\"a.\"@x.org", "J\xc3\xb6rg@x.org",
                               "user@[IPv6:2001:DB8::1]"}) {
        INFO(std::string(s));
        std::string n = normalize_address(spec(s));
        CHECK(normalize_address(spec(n)) == n);  // a fixed point
        CHECK(normalize_domain(normalize_domain(spec(s).domain)) == normalize_domain(spec(s).domain));
    }
}

TEST_CASE("address: sender tag stripping in detail") {
    CHECK(stripped("Prvs=0123456789=Bob@x.org") == "bob@x.org");
    CHECK(stripped("MSPRVS1=19abcdef=bob@x.org") == "bob@x.org");
    CHECK(stripped("SRS0+HHH=TT=orig.example=alice@fwd.example") == "alice@orig.example");
    CHECK(stripped("srs0-HHH=TT=orig.example=alice@fwd.example") == "alice@orig.example");
    CHECK(stripped("SRS0=HHH=TT=orig.example=a=b=c@fwd.example") == "a=b=c@orig.example");
    CHECK(stripped("srs1=HHH=first.example==HHH=TT=orig.example=alice@second.example") == "alice@orig.example");
    // Malformed tags are left alone.
    CHECK(stripped("prvs=notag@x.org") == "prvs=notag@x.org");
    CHECK(stripped("prvs=tag=@x.org") == "prvs=tag=@x.org");
    CHECK(stripped("SRS0=HHH=TT=orig.example=@fwd.example") == "srs0=hhh=tt=orig.example=@fwd.example");
    CHECK(stripped("SRS0=HHH=TT==alice@fwd.example") == "srs0=hhh=tt==alice@fwd.example");
    CHECK(stripped("SRS0=HHH=TT=-bad-.example=alice@fwd.example") == "srs0=hhh=tt=-bad-.example=alice@fwd.example");
    CHECK(stripped("SRS1=HHH=first.example=HHH=TT=orig.example=alice@f.example") ==
          "srs1=hhh=first.example=hhh=tt=orig.example=alice@f.example");
    CHECK(stripped("srs2=HHH=TT=orig.example=alice@fwd.example") == "srs2=hhh=tt=orig.example=alice@fwd.example");
    CHECK(stripped("xprvs=t=bob@x.org") == "xprvs=t=bob@x.org");
    // The display name survives, and stripping is a fixed point however
    // deep the nesting (a bug once stopped after 8 layers).
    Address a = spec("prvs=t=bob@x.org");
    a.display = "Bob";
    CHECK(strip_sender_tags(a).display == "Bob");
    std::string deep;
    for (int i = 0; i < 9; ++i) deep += "prvs=a=";
    deep += "x";
    REQUIRE(deep.size() <= limits::local_part_length);
    Address d = spec(deep + "@x.org");
    Address once = strip_sender_tags(d);
    CHECK(once.local == "x");
    Address twice = strip_sender_tags(once);
    CHECK(twice.local == once.local);
    CHECK(twice.domain == once.domain);
    // Nested SRS from trusted forwarders comes off all the way, and stays off.
    std::vector<std::string> fwd{"a.example", "b.example"};
    Address n = spec("prvs=t=SRS0=H=T=b.example=SRS0=H=T=c.example=bob@a.example");
    Address n1 = strip_sender_tags(n, fwd);
    CHECK(normalize_address(n1) == "bob@c.example");
    CHECK(normalize_address(strip_sender_tags(n1, fwd)) == "bob@c.example");
    CHECK(normalize_address(strip_sender_tags(n, {"a.example"})) == "srs0=h=t=c.example=bob@b.example");
}

TEST_CASE("address: domain lists (trusted forwarders)") {
    auto d = parse_domain_list({"Fwd.Example., other.example", "third.example  fwd.example"});
    REQUIRE(d.ok());
    CHECK(*d == std::vector<std::string>{"fwd.example", "other.example", "third.example"});
    CHECK(parse_domain_list({}).ok());
    CHECK(parse_domain_list({" , "})->empty());
    for (const char* bad : {"not/a domain", "[127.0.0.1]", "-x.example", "a..b"}) {
        INFO(bad);
        auto r = parse_domain_list({bad});
        REQUIRE_FALSE(r.ok());
        CHECK(r.error().kind == ErrorKind::usage);
    }
}

TEST_CASE("address: domain syntax in detail") {
    CHECK(is_valid_domain(std::string(63, 'a') + ".org"));
    CHECK(is_valid_domain("a-b.c-d.example"));
    CHECK(is_valid_domain("b\xc3\xbc" "cher.example"));
    CHECK(is_valid_domain("[IPv6:2001:db8::1]"));
    std::string d255 = std::string(63, 'd') + "." + std::string(63, 'd') + "." + std::string(63, 'd') + "." +
                       std::string(63, 'd');
    CHECK(is_valid_domain(d255));
    CHECK_FALSE(is_valid_domain(d255 + "d"));
    CHECK_FALSE(is_valid_domain("."));
    CHECK_FALSE(is_valid_domain(".example.org"));
    CHECK_FALSE(is_valid_domain("example.org.."));
    CHECK_FALSE(is_valid_domain("a-.org"));
    CHECK_FALSE(is_valid_domain("a@b.org"));
    CHECK_FALSE(is_valid_domain("[]"));
    CHECK_FALSE(is_valid_domain("[1.2.3.4"));
    CHECK_FALSE(is_valid_domain("[1.2 .3.4]"));
    CHECK_FALSE(is_valid_domain("[1.2\\.3.4]"));
    CHECK_FALSE(is_valid_domain("[a]b]"));
}
