#include "libmail/base/canon.hpp"

#include <catch2/catch.hpp>

using namespace mail;

TEST_CASE("canon: relaxed header canonicalisation (RFC 6376 3.4.2)") {
    // The RFC's example: "A: X" and "B : Y\t\r\n\tZ  " become "a:X" and "b:Y Z".
    CHECK(relaxed_header_field("A: X\r\n") == "a:X\r\n");
    CHECK(relaxed_header_field("B : Y\t\r\n\tZ  \r\n") == "b:Y Z\r\n");
    CHECK(relaxed_header_field("SUBJECT:   lunch\n\ton    friday  \n") == "subject:lunch on friday\r\n");
    CHECK(relaxed_header_field("Subject:\r\n") == "subject:\r\n");
    CHECK(relaxed_header_field("Subject: a\rb\r\n") == "subject:a\rb\r\n");  // a lone CR is data
    CHECK(relaxed_header_field("X-Folded:\r\n  value") == "x-folded:value\r\n");  // no line end at all
    CHECK(relaxed_header_field("no colon") == "nocolon:\r\n");
}
