#include "libmail/address.hpp"
#include "libmail/limits.hpp"

#include <catch2/catch.hpp>

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

TEST_CASE("address: BATV and SRS tags are stripped") {
    auto strip = [](std::string_view s) { return normalize_address(strip_sender_tags(*parse_addr_spec(s))); };
    CHECK(strip("prvs=0123456789=bob@x.org") == "bob@x.org");
    CHECK(strip("PRVS=0123456789=bob@x.org") == "bob@x.org");
    CHECK(strip("msprvs1=19abcdef=bob@x.org") == "bob@x.org");
    CHECK(strip("SRS0=HHH=TT=orig.example=alice@fwd.example") == "alice@orig.example");
    CHECK(strip("srs0=HHH=TT=orig.example=a=b@fwd.example") == "a=b@orig.example");
    CHECK(strip("SRS1=HHH=first.example==HHH=TT=orig.example=alice@second.example") == "alice@orig.example");
    CHECK(strip("prvs=0123456789=SRS0=HHH=TT=orig.example=alice@fwd.example") == "alice@orig.example");
    CHECK(strip("SRS0=broken@fwd.example") == "srs0=broken@fwd.example");
    CHECK(strip("\"SRS0=H=T=not a domain=x\"@fwd.example") == "\"srs0=h=t=not a domain=x\"@fwd.example");
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
    int files = 0;
    for (const auto& entry : std::filesystem::directory_iterator(MAILSTAMP_FIXTURES "/address")) {
        std::ifstream f(entry.path(), std::ios::binary);
        std::stringstream ss;
        ss << f.rdbuf();
        std::string name = entry.path().filename().string();
        int want = std::stoi(name.substr(0, 2));
        auto r = parse_address_list(ss.str());
        INFO(name);
        REQUIRE(r.ok());
        CHECK(static_cast<int>(r->size()) == want);
        ++files;
    }
    CHECK(files >= 8);
}
