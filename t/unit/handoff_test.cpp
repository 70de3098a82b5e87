#include "libmail/io/handoff.hpp"

#include "fake_dns.hpp"

#include <catch2/catch.hpp>

#include <string>
#include <vector>

using namespace mail;

namespace {

std::string bytes(std::initializer_list<int> v) {
    std::string s;
    for (int b : v) s += static_cast<char>(b);
    return s;
}

const std::string signature = bytes({0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a});

RealClient client() {
    RealClient c;
    c.peer = "192.0.2.7:40123";
    c.local = "198.51.100.1:25";
    c.name = "mail.sender.example";
    c.helo = "mail.sender.example";
    c.esmtp = true;
    return c;
}

} // namespace

TEST_CASE("xtext leaves printable ASCII but + and = alone and hex-encodes the rest", "[handoff]") {
    CHECK(xtext("mail.example") == "mail.example");
    CHECK(xtext("a+b=c") == "a+2Bb+3Dc");
    CHECK(xtext("two words") == "two+20words");
    CHECK(xtext("\xc3\xa9\x7f\t") == "+C3+A9+7F+09");
    CHECK(xtext("") == "");
}

TEST_CASE("XCLIENT carries ADDR, PORT, NAME, HELO, LOGIN and PROTO", "[handoff]") {
    auto c = client();
    auto lines = xclient_lines(c, {});
    REQUIRE(lines.size() == 1);
    CHECK(lines[0] == "XCLIENT ADDR=192.0.2.7 PORT=40123 NAME=mail.sender.example HELO=mail.sender.example "
                      "LOGIN=[UNAVAILABLE] PROTO=ESMTP");

    c.login = "bob name";
    c.esmtp = false;
    c.name.clear();
    c.helo = "odd=helo";
    lines = xclient_lines(c, {});
    REQUIRE(lines.size() == 1);
    CHECK(lines[0] == "XCLIENT ADDR=192.0.2.7 PORT=40123 NAME=[UNAVAILABLE] HELO=odd+3Dhelo LOGIN=bob+20name PROTO=SMTP");

    c.name_temporary = true;
    CHECK(xclient_lines(c, {})[0].find("NAME=[TEMPUNAVAIL]") != std::string::npos);

    SECTION("IPv6 addresses carry the IPV6: prefix; a mapped IPv4 address is IPv4") {
        c.peer = "[2001:db8::5]:2525";
        CHECK(xclient_lines(c, {})[0].find("ADDR=IPV6:2001:db8::5 PORT=2525 ") != std::string::npos);
        c.peer = "[::ffff:192.0.2.9]:2525";
        CHECK(xclient_lines(c, {})[0].find("ADDR=192.0.2.9 PORT=2525 ") != std::string::npos);
    }
    SECTION("a client that is no IP address") {
        c.peer = "stdin";
        CHECK(xclient_lines(c, {})[0].find("ADDR=[UNAVAILABLE] PORT=[UNAVAILABLE] ") != std::string::npos);
    }
    SECTION("only the attributes the server names") {
        lines = xclient_lines(client(), {"NAME", "ADDR", "PROTO", "HELO"});
        REQUIRE(lines.size() == 1);
        CHECK(lines[0] == "XCLIENT ADDR=192.0.2.7 NAME=mail.sender.example HELO=mail.sender.example PROTO=ESMTP");
    }
}

TEST_CASE("XCLIENT lines stay within 512 octets, long values unavailable", "[handoff]") {
    auto c = client();
    c.name = std::string(63, 'n') + "." + std::string(63, 'n') + "." + std::string(63, 'n') + "." + std::string(61, 'n');
    c.helo = std::string(250, 'h');
    c.login = std::string(200, 'l') + "+";  // 203 octets as xtext
    auto lines = xclient_lines(c, {});
    REQUIRE(lines.size() == 2);
    for (const auto& l : lines) {
        CHECK(l.size() <= 510);
        CHECK(l.rfind("XCLIENT ", 0) == 0);
    }
    std::string all = lines[0] + lines[1];
    CHECK(all.find("NAME=" + c.name) != std::string::npos);
    CHECK(all.find("HELO=" + c.helo) != std::string::npos);
    CHECK(all.find("LOGIN=" + std::string(200, 'l') + "+2B") != std::string::npos);

    c.helo = std::string(100, ' ');  // 300 octets as xtext: over Postfix's 255
    lines = xclient_lines(c, {});
    all.clear();
    for (const auto& l : lines) all += l;
    CHECK(all.find("HELO=[UNAVAILABLE]") != std::string::npos);
}

TEST_CASE("PROXY protocol v2 headers for TCP over IPv4 and IPv6", "[handoff]") {
    SECTION("IPv4") {
        std::string h = proxy_v2_header("192.0.2.7:40123", "198.51.100.1:25");
        CHECK(h == signature + bytes({0x21, 0x11, 0x00, 0x0c, 192, 0, 2, 7, 198, 51, 100, 1, 0x9c, 0xbb, 0x00, 0x19}));
    }
    SECTION("IPv6") {
        std::string h = proxy_v2_header("[2001:db8::5]:2525", "[2001:db8::1]:25");
        CHECK(h == signature + bytes({0x21, 0x21, 0x00, 0x24,                                          //
                                      0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x05,  //
                                      0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01,  //
                                      0x09, 0xdd, 0x00, 0x19}));
    }
    SECTION("an IPv4 client on an IPv6 socket: both as IPv6, the client mapped") {
        std::string h = proxy_v2_header("192.0.2.7:1", "[2001:db8::1]:25");
        REQUIRE(h.size() == 16 + 36);
        CHECK(h.substr(12, 4) == bytes({0x21, 0x21, 0x00, 0x24}));
        CHECK(h.substr(16, 16) == bytes({0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 192, 0, 2, 7}));
    }
    SECTION("no IP client: a LOCAL header") {
        CHECK(proxy_v2_header("stdin", "?") == signature + bytes({0x20, 0x00, 0x00, 0x00}));
        CHECK(proxy_v2_header("192.0.2.7", "198.51.100.1:25") == signature + bytes({0x20, 0x00, 0x00, 0x00}));
    }
}

TEST_CASE("the client's name is confirmed forward before XCLIENT sends it", "[handoff]") {
    test::FakeDns dns;
    bool temporary = true;
    CHECK(confirmed_name(dns, "192.0.2.7", temporary) == "");
    CHECK_FALSE(temporary);

    dns.ptr("7.2.0.192.in-addr.arpa", "liar.example");
    dns.a("liar.example", "203.0.113.1");
    CHECK(confirmed_name(dns, "192.0.2.7", temporary) == "");

    dns.ptr("7.2.0.192.in-addr.arpa", "mail.sender.example");
    dns.a("mail.sender.example", "192.0.2.7");
    CHECK(confirmed_name(dns, "192.0.2.7", temporary) == "mail.sender.example");
    CHECK_FALSE(temporary);

    dns.ptr("5.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa", "v6.sender.example");
    dns.aaaa("v6.sender.example", "2001:db8:0::5");
    CHECK(confirmed_name(dns, "2001:db8::5", temporary) == "v6.sender.example");

    dns.fail("9.2.0.192.in-addr.arpa", dns::Type::ptr, dns::Status::timeout);
    CHECK(confirmed_name(dns, "192.0.2.9", temporary) == "");
    CHECK(temporary);
}
