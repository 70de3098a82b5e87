#include "libmail/base/clock.hpp"

#include <catch2/catch.hpp>
#include <cstdlib>

using namespace mail;

TEST_CASE("clock: ISO 8601 round trip and formats") {
    CHECK(format_time(0).empty());
    CHECK(format_time(1700000000) == "2023-11-14T22:13:20Z");
    CHECK(*parse_time("2023-11-14T22:13:20Z") == 1700000000);
    CHECK(*parse_time("1700000000") == 1700000000);
    CHECK(*parse_time("2023-11-14") == 1699920000);
    CHECK_FALSE(parse_time("2023-13-01").has_value());
    CHECK_FALSE(parse_time("yesterday").has_value());
    CHECK_FALSE(parse_time("2023-11-14T22:13:20").has_value());
    CHECK_FALSE(parse_time("-5").has_value());
}

TEST_CASE("clock: MAILSTAMP_TEST_NOW replaces the clock") {
    setenv("MAILSTAMP_TEST_NOW", "12345", 1);
    CHECK(now() == 12345);
    setenv("MAILSTAMP_TEST_NOW", "junk", 1);
    CHECK(now() > 1700000000);
    unsetenv("MAILSTAMP_TEST_NOW");
    CHECK(now() > 1700000000);
}
