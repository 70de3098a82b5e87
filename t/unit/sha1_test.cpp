#include "libmail/base/sha1.hpp"

#include <catch2/catch.hpp>
#include <openssl/sha.h>

#include <cstring>
#include <random>

using namespace mail;

namespace {
// SHA-1 of a message of at most 55 octets: one padded block.
Sha1State one_block(const std::string& msg, bool shani) {
    unsigned char block[64] = {};
    std::memcpy(block, msg.data(), msg.size());
    block[msg.size()] = 0x80;
    std::uint64_t bits = msg.size() * 8;
    for (int i = 0; i < 8; ++i) block[63 - i] = static_cast<unsigned char>(bits >> (8 * i));
    Sha1State st = sha1_initial;
    if (shani) sha1_compress(st, block);
    else sha1_compress_portable(st, block);
    return st;
}
Sha1State openssl(const std::string& msg) {
    unsigned char d[20];
    SHA1(reinterpret_cast<const unsigned char*>(msg.data()), msg.size(), d);
    Sha1State st;
    for (int i = 0; i < 5; ++i)
        st[i] = (std::uint32_t{d[4 * i]} << 24) | (std::uint32_t{d[4 * i + 1]} << 16) |
                (std::uint32_t{d[4 * i + 2]} << 8) | d[4 * i + 3];
    return st;
}
} // namespace

TEST_CASE("sha1: both compression functions agree with OpenSSL") {
    CHECK(one_block("abc", false) == openssl("abc"));
    CHECK(one_block("abc", true) == openssl("abc"));
    std::mt19937 rng(42);
    for (int n = 0; n < 2000; ++n) {
        std::string m(rng() % 56, '\0');
        for (auto& c : m) c = static_cast<char>(rng());
        REQUIRE(one_block(m, false) == openssl(m));
        REQUIRE(one_block(m, true) == openssl(m));
    }
    unsigned char b1[64], b2[64];
    for (int n = 0; n < 500; ++n) {
        for (auto& c : b1) c = static_cast<unsigned char>(rng());
        for (auto& c : b2) c = static_cast<unsigned char>(rng());
        Sha1State x = sha1_initial, y = sha1_initial, xr = sha1_initial, yr = sha1_initial;
        sha1_compress2(x, b1, y, b2);
        sha1_compress_portable(xr, b1);
        sha1_compress_portable(yr, b2);
        REQUIRE(x == xr);
        REQUIRE(y == yr);
    }
    INFO("SHA-NI in use: " << sha1_has_shani());
    SUCCEED();
}
