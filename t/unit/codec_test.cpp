// The byte codec of base/: hex both ways.
#include "libmail/base/codec.hpp"

#include <catch2/catch.hpp>

using namespace mail;

TEST_CASE("codec: hex_decode takes back what hex_encode writes, and nothing else") {
    std::string bytes("\x00\x01\x7f\x80\xff", 5);
    auto back = hex_decode(hex_encode(bytes));
    REQUIRE(back);
    CHECK(*back == bytes);
    CHECK(hex_decode("")->empty());
    CHECK_FALSE(hex_decode("abc"));   // odd length
    CHECK_FALSE(hex_decode("AB"));    // upper case is not hex_encode's form
    CHECK_FALSE(hex_decode("0g"));
    CHECK(hex_value('F') == 15);
    CHECK(hex_value('x') == -1);
}
