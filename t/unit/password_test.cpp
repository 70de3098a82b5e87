#include "libmail/policy/password.hpp"

#include "libmail/base/limits.hpp"

#include <catch2/catch.hpp>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

using namespace mail;

namespace {
// Computed independently with Python's hashlib.scrypt: salt 00 01 .. 0f, password "correct horse".
const std::string known_10 = "$scrypt$ln=10,r=8,p=1$AAECAwQFBgcICQoLDA0ODw==$nfkj3u1fRTHCea+fVr03sWV770kp5wLOLoEakziKhqE=";
const std::string known_11 = "$scrypt$ln=11,r=4,p=2$AAECAwQFBgcICQoLDA0ODw==$rxLo99XQjfdLM/XiW6J4HA+t0BkEzlodMSGd/hwzYzo=";
const std::string salt_b64 = "AAECAwQFBgcICQoLDA0ODw==";
const std::string hash_b64 = "nfkj3u1fRTHCea+fVr03sWV770kp5wLOLoEakziKhqE=";
std::string with(const std::string& params, const std::string& salt = salt_b64, const std::string& hash = hash_b64) {
    return "$scrypt$" + params + "$" + salt + "$" + hash;
}
} // namespace

TEST_CASE("password: a hash has the documented format and verifies") {
    auto h = hash_password("s3cret pass");
    REQUIRE(h.ok());
    INFO(*h);
    CHECK(h->rfind("$scrypt$ln=14,r=8,p=1$", 0) == 0);
    // 16-octet salt and 32-octet hash in padded base64: 24 and 44 characters.
    CHECK(h->size() == std::string("$scrypt$ln=14,r=8,p=1$").size() + 24 + 1 + 44);
    CHECK(h->at(h->size() - 1) == '=');
    CHECK(verify_password("s3cret pass", *h));
    CHECK_FALSE(verify_password("s3cret pasS", *h));
    CHECK_FALSE(verify_password("s3cret pass ", *h));
    CHECK_FALSE(verify_password("", *h));
}

TEST_CASE("password: the cost is written into the hash and read back from it") {
    auto h = hash_password("pw", 10);
    REQUIRE(h.ok());
    CHECK(h->rfind("$scrypt$ln=10,r=8,p=1$", 0) == 0);
    CHECK(verify_password("pw", *h));
    CHECK_FALSE(verify_password("pW", *h));
}

TEST_CASE("password: hashes made elsewhere with the same parameters verify") {
    CHECK(verify_password("correct horse", known_10));
    CHECK(verify_password("correct horse", known_11));
    CHECK_FALSE(verify_password("correct horsf", known_10));
    CHECK_FALSE(verify_password("Correct horse", known_11));
    // Same salt and hash under other parameters: a different key.
    CHECK_FALSE(verify_password("correct horse", with("ln=11,r=8,p=1")));
    CHECK_FALSE(verify_password("correct horse", with("ln=10,r=7,p=1")));
    CHECK_FALSE(verify_password("correct horse", with("ln=10,r=8,p=2")));
}

TEST_CASE("password: two hashes of one password differ by their salt") {
    auto a = hash_password("same", 10);
    auto b = hash_password("same", 10);
    REQUIRE(a.ok());
    REQUIRE(b.ok());
    CHECK(*a != *b);
    auto salt = [](const std::string& h) { return h.substr(h.find('$', 8) + 1, 24); };
    CHECK(salt(*a) != salt(*b));
    CHECK(verify_password("same", *a));
    CHECK(verify_password("same", *b));
}

TEST_CASE("password: binary and long passwords") {
    std::string pw("a\0b\xff", 4);
    auto h = hash_password(pw, 10);
    REQUIRE(h.ok());
    CHECK(verify_password(pw, *h));
    CHECK_FALSE(verify_password("a", *h));  // the NUL does not end it
    std::string long_pw(10000, 'x');
    auto l = hash_password(long_pw, 10);
    REQUIRE(l.ok());
    CHECK(verify_password(long_pw, *l));
    CHECK_FALSE(verify_password(long_pw.substr(1), *l));
}

TEST_CASE("password: a cost outside 10..20 is a usage error") {
    auto lo = hash_password("pw", 9);
    REQUIRE_FALSE(lo.ok());
    CHECK(lo.error().kind == ErrorKind::usage);
    auto hi = hash_password("pw", 21);
    REQUIRE_FALSE(hi.ok());
    CHECK(hi.error().kind == ErrorKind::usage);
}

TEST_CASE("password: every malformed hash is false, not an error or a crash") {
    const std::string pw = "correct horse";
    REQUIRE(verify_password(pw, with("ln=10,r=8,p=1")));  // the control
    const char* bad[] = {
        "",
        "$scrypt$",
        "$scrypt$ln=10,r=8,p=1",
        "$scrypt$ln=10,r=8,p=1$",
        "$scrypt$ln=10,r=8,p=1$AAECAwQFBgcICQoLDA0ODw==",
        "$scrypt$ln=10,r=8,p=1$AAECAwQFBgcICQoLDA0ODw==$",
        "nfkj3u1fRTHCea+fVr03sWV770kp5wLOLoEakziKhqE=",
    };
    for (const char* b : bad) {
        INFO(b);
        CHECK_FALSE(verify_password(pw, b));
    }
    // The scheme.
    CHECK_FALSE(verify_password(pw, "$SCRYPT$ln=10,r=8,p=1$" + salt_b64 + "$" + hash_b64));
    CHECK_FALSE(verify_password(pw, "$scrypt2$ln=10,r=8,p=1$" + salt_b64 + "$" + hash_b64));
    CHECK_FALSE(verify_password(pw, "scrypt$ln=10,r=8,p=1$" + salt_b64 + "$" + hash_b64));
    CHECK_FALSE(verify_password(pw, " " + with("ln=10,r=8,p=1")));
    CHECK_FALSE(verify_password(pw, with("ln=10,r=8,p=1") + "\n"));
    CHECK_FALSE(verify_password(pw, with("ln=10,r=8,p=1") + "$"));
    // The parameters: order, names, spelling, numbers.
    for (const char* p : {"", "ln=10,r=8", "ln=10,r=8,p=1,", "r=8,ln=10,p=1", "ln=10,p=1,r=8", "n=10,r=8,p=1",
                          "ln=10;r=8;p=1", "ln=10, r=8, p=1", "LN=10,r=8,p=1", "ln=010,r=8,p=1", "ln=10,r=08,p=1",
                          "ln=,r=8,p=1", "ln=10,r=,p=1", "ln=10,r=8,p=", "ln=1a,r=8,p=1", "ln=-10,r=8,p=1",
                          "ln=+10,r=8,p=1", "ln=10,r=8,p=1,x=2", "ln=10,r=8,p=1x", "ln=10,r=8,p=100"}) {
        INFO(p);
        CHECK_FALSE(verify_password(pw, with(p)));
    }
    // Out of range: ln 10..20, r 1..16, p 1..4.
    for (const char* p : {"ln=9,r=8,p=1", "ln=21,r=8,p=1", "ln=99,r=8,p=1", "ln=0,r=8,p=1", "ln=10,r=0,p=1",
                          "ln=10,r=17,p=1", "ln=10,r=8,p=0", "ln=10,r=8,p=5"}) {
        INFO(p);
        CHECK_FALSE(verify_password(pw, with(p)));
    }
    // The salt: not base64, not canonical, unpadded, another length, empty.
    for (const std::string& s : {std::string("AAECAwQFBgcICQoLDA0ODw=!"), std::string("AAECAwQFBgcICQoLDA0ODx=="),
                                  std::string("AAECAwQFBgcICQoLDA0ODw"), std::string("AAECAwQFBgcICQoLDA0O"),
                                  std::string("AAECAwQFBgcICQoLDA0ODw8P"), std::string(""),
                                  std::string("AAECAwQF BgcICQoLDA0ODw==")}) {
        INFO(s);
        CHECK_FALSE(verify_password(pw, with("ln=10,r=8,p=1", s)));
    }
    // The hash: truncated, one character changed, unpadded, too long, empty.
    std::string changed = hash_b64;
    changed[5] = changed[5] == 'A' ? 'B' : 'A';
    for (const std::string& h : {hash_b64.substr(0, 40), changed, hash_b64.substr(0, 43), hash_b64 + "AAAA",
                                 std::string(""), std::string("nfkj3u1fRTHCea+fVr03sWV770kp5wLOLoEakziKhqF=")}) {
        INFO(h);
        CHECK_FALSE(verify_password(pw, with("ln=10,r=8,p=1", salt_b64, h)));
    }
}

TEST_CASE("password: hashes queue behind the limit and all still verify") {
    auto h = hash_password("guess me", 10);
    REQUIRE(h.ok());
    for (std::size_t limit : {std::size_t{1}, std::size_t{0}}) {
        set_password_hash_limit(limit);
        std::atomic<int> good{0}, bad{0};
        std::vector<std::thread> ts;
        for (int i = 0; i < 8; ++i)
            ts.emplace_back([&, i] { (verify_password(i % 2 ? "guess me" : "wrong", *h) ? good : bad)++; });
        for (auto& t : ts) t.join();
        CHECK(good == 4);
        CHECK(bad == 4);
    }
    set_password_hash_limit(limits::auth_hashes);
}
