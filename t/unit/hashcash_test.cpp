#include "libmail/policy/hashcash.hpp"

#include <catch2/catch.hpp>

using namespace mail;

namespace {
const std::int64_t nov23 = 1795392000;  // 2026-11-23T00:00:00Z
}

TEST_CASE("hashcash: dates") {
    CHECK(*parse_hashcash_date("261123") == nov23);
    CHECK(*parse_hashcash_date("2611230130") == nov23 + 5400);
    CHECK(*parse_hashcash_date("261123013005") == nov23 + 5405);
    CHECK(format_hashcash_date(nov23 + 100) == "261123");
    CHECK_FALSE(parse_hashcash_date("2611").has_value());
    CHECK_FALSE(parse_hashcash_date("261323").has_value());
    CHECK_FALSE(parse_hashcash_date("26112x").has_value());
}

TEST_CASE("hashcash: a stamp minted by Debian's hashcash checks") {
    // hashcash -m -b 16 -r test@example.org (hashcash 1.22, 2026-11-23)
    const std::string stamp = "1:16:261123:test@example.org::ayV5YsyBOYylAeSY:007k/";
    CHECK(hashcash_value(stamp) >= 16);
    CHECK(check_hashcash(stamp, "Test@Example.ORG", 16, nov23) == HashcashCheck::ok);
    CHECK(check_hashcash(stamp, "other@example.org", 16, nov23) == HashcashCheck::wrong_resource);
    CHECK(check_hashcash(stamp, "test@example.org", 20, nov23) == HashcashCheck::too_few_bits);
    CHECK(check_hashcash(stamp, "test@example.org", 16, nov23 + 30 * 86400 + 1) == HashcashCheck::expired);
    CHECK(check_hashcash(stamp, "test@example.org", 16, nov23 + 30 * 86400 - 1) == HashcashCheck::ok);
    CHECK(check_hashcash(stamp, "test@example.org", 16, nov23 - 2 * 86400 - 1) == HashcashCheck::future);
    const std::string forged = "1:26" + stamp.substr(4);  // claims 26 bits it does not have
    CHECK(check_hashcash(forged, "test@example.org", 16, nov23) == HashcashCheck::too_few_bits);
    CHECK(check_hashcash("2:16:261123:x::a:b", "x", 0, nov23) == HashcashCheck::malformed);
    CHECK(check_hashcash("1:16:261123:x::a", "x", 0, nov23) == HashcashCheck::malformed);
}

TEST_CASE("hashcash: minted stamps carry the value they claim") {
    for (unsigned threads : {1u, 2u, 0u}) {
        for (std::string resource : {std::string("a@b.org"), std::string(60, 'r') + "@example.org", std::string(100, 'x')}) {
            auto s = mint_hashcash(resource, 12, nov23, threads);
            REQUIRE(s.ok());
            INFO(*s);
            CHECK(s->rfind("1:12:261123:" + resource + "::", 0) == 0);
            CHECK(hashcash_value(*s) >= 12);
            CHECK(check_hashcash(*s, resource, 12, nov23) == HashcashCheck::ok);
        }
    }
    CHECK_FALSE(mint_hashcash("a:b", 10, nov23).ok());
    CHECK_FALSE(mint_hashcash("a@b.org", 41, nov23).ok());
}
