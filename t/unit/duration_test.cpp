#include "libmail/base/duration.hpp"

#include <catch2/catch.hpp>

#include <limits>

using mail::format_duration;
using mail::parse_duration;

TEST_CASE("parse_duration reads units and combinations", "[duration]") {
    CHECK(*parse_duration("0") == 0);
    CHECK(*parse_duration("90") == 90);
    CHECK(*parse_duration("45s") == 45);
    CHECK(*parse_duration("10m") == 600);
    CHECK(*parse_duration("12h") == 43200);
    CHECK(*parse_duration("10d") == 864000);
    CHECK(*parse_duration("2w") == 1209600);
    CHECK(*parse_duration("1d12h") == 129600);
    CHECK(*parse_duration("1w2d3h4m5s") == 604800 + 2 * 86400 + 3 * 3600 + 4 * 60 + 5);
    CHECK(*parse_duration("0d") == 0);
    CHECK(*parse_duration("007m") == 420);
    CHECK(*parse_duration("9223372036854775807") == std::numeric_limits<std::int64_t>::max());
}

TEST_CASE("parse_duration rejects junk, signs and overflow", "[duration]") {
    for (const char* bad : {"", "d", "10x", "10D", "1.5h", " 10d", "10d ", "-5", "-1d", "+5", "1d12",
                            "1h1d", "1d1d", "1m1h", "10dd", "abc", "1 d", "9223372036854775808",
                            "15250284452472w", "106751991167301d", "106751991167300d86400s"}) {
        CAPTURE(bad);
        auto r = parse_duration(bad);
        REQUIRE_FALSE(r);
        CHECK(r.error().kind == mail::ErrorKind::usage);
        CHECK(r.error().text.find("bad duration") == 0);
    }
    CHECK(parse_duration("-5").error().text.find("negative") != std::string::npos);
    CHECK(parse_duration("99999999999999999999").error().text.find("too large") != std::string::npos);
    CHECK(parse_duration("1d12").error().text.find("without a unit") != std::string::npos);
    CHECK(parse_duration("1h1d").error().text.find("in order") != std::string::npos);
    CHECK(parse_duration("5y").error().text.find("unknown unit") != std::string::npos);
    // Just below the edge is fine.
    CHECK(*parse_duration("106751991167300d") == 106751991167300LL * 86400);
}

TEST_CASE("format_duration is short and round-trips", "[duration]") {
    CHECK(format_duration(0) == "0s");
    CHECK(format_duration(45) == "45s");
    CHECK(format_duration(600) == "10m");
    CHECK(format_duration(864000) == "10d");
    CHECK(format_duration(1209600) == "2w");
    CHECK(format_duration(129600) == "1d12h");
    CHECK(format_duration(90061) == "1d1h1m1s");
    CHECK(format_duration(-60) == "-1m");
    CHECK(format_duration(std::numeric_limits<std::int64_t>::min()) == "-9223372036854775808s");
    for (std::int64_t v : {std::int64_t{1}, std::int64_t{59}, std::int64_t{3601}, std::int64_t{604799},
                           std::int64_t{604800}, std::int64_t{31536000},
                           std::numeric_limits<std::int64_t>::max()}) {
        CAPTURE(v);
        auto back = parse_duration(format_duration(v));
        REQUIRE(back);
        CHECK(*back == v);
    }
}

TEST_CASE("duration: sizes in octets with binary units") {
    CHECK(*mail::parse_size("0") == 0);
    CHECK(*mail::parse_size("1048576") == 1048576);
    CHECK(*mail::parse_size("64K") == 65536);
    CHECK(*mail::parse_size("100m") == 100LL << 20);
    CHECK(*mail::parse_size("2G") == 2LL << 30);
    for (const char* bad : {"", "K", "-1", "1.5M", "12MB", "1T", " 1", "99999999999999999999"})
        CHECK_FALSE(mail::parse_size(bad).ok());
    CHECK_FALSE(mail::parse_size("9999999999999G").ok());
}
