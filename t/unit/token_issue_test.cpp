#include "libmail/policy/token_issue.hpp"

#include "libmail/mail/message.hpp"

#include <catch2/catch.hpp>

#include <sstream>

using namespace mail;

TEST_CASE("token_issue: a client counts under its /24 or /64") {
    CHECK(client_network("192.0.2.77:4711") == "192.0.2.0/24");
    CHECK(client_network("192.0.2.1") == "192.0.2.0/24");
    CHECK(client_network("[2001:db8:1:2:3:4:5:6]:25") == "2001:db8:1:2::/64");
    CHECK(client_network("[2001:db8::1]:25") == "2001:db8::/64");
    CHECK(client_network("2001:db8:0:7::9") == "2001:db8:0:7::/64");
    CHECK(client_network("[::ffff:198.51.100.9]:25") == "198.51.100.0/24");
    CHECK(client_network("[::1]:4711") == "::/64");
    CHECK(client_network("local") == "local");
    CHECK(client_network("?") == "?");
    CHECK(client_network("not an address:25") == "not an address:25");
}

TEST_CASE("token_issue: token postage wants a stamp for the token address of enough bits") {
    const std::string tok = "bob+abcdefghijklmnopqrstuvwx@ours.example";
    std::int64_t t = 1800000000;
    auto good = mint_hashcash(tok, 10, t, 1);
    auto weak = mint_hashcash(tok, 4, t, 1);
    auto other = mint_hashcash("bob@ours.example", 10, t, 1);
    REQUIRE(good);
    REQUIRE(weak);
    REQUIRE(other);
    auto check = [&](const std::string& head) {
        std::istringstream in(head + "Subject: x\r\n\r\n");
        MessageReader msg(in);
        REQUIRE(msg.read_header());
        return token_stamp(msg, tok, 10, t);
    };
    CHECK(check("") == HashcashCheck::malformed);
    CHECK(check("X-Hashcash: " + *other + "\r\n") == HashcashCheck::wrong_resource);
    CHECK(check("X-Hashcash: " + *other + "\r\nX-Hashcash: " + *weak + "\r\n") == HashcashCheck::too_few_bits);
    CHECK(check("X-Hashcash: " + *weak + "\r\nHashcash: " + *good + "\r\n") == HashcashCheck::ok);
    // Case does not matter in the resource (an MTA may fold it).
    auto upper = mint_hashcash("BOB+ABCDEFGHIJKLMNOPQRSTUVWX@OURS.EXAMPLE", 10, t, 1);
    REQUIRE(upper);
    CHECK(check("X-Hashcash: " + *upper + "\r\n") == HashcashCheck::ok);
}
