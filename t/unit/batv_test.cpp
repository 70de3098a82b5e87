#include "libmail/policy/batv.hpp"
#include "libmail/mail/address.hpp"
#include "libmail/policy/token.hpp"
#include "tmpdir.hpp"

#include <catch2/catch.hpp>

#include <algorithm>

using namespace mail;

namespace {
Secret key(int id, char fill = 'b') { return Secret{id, std::string(32, fill), 0}; }
constexpr std::int64_t day = 86400;
constexpr std::int64_t now = 20788 * day + 3600;  // 2026-12-01T01:00:00Z, day 20788
std::string upper(std::string s) {
    std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
    return s;
}
} // namespace

TEST_CASE("batv: the tag has the documented format") {
    // Computed independently with Python's hmac: K 3, day 20788 + 7 = 20795 -> 795.
    CHECK(batv_sign("Bob@Example.ORG", key(3), now) == "prvs=37951d3672=Bob@Example.ORG");
    CHECK(batv_sign("Bob@Example.ORG", key(3), now, 10).rfind("prvs=3798", 0) == 0);
    CHECK(batv_sign("bob@example.org", key(13), now).rfind("prvs=3795", 0) == 0);  // K is the key id mod 10
    CHECK(batv_sign("bob@example.org", key(10), now).rfind("prvs=0795", 0) == 0);
    // Case does not change the code, only the address carried after the tag.
    CHECK(batv_sign("bob@example.org", key(3), now) == "prvs=37951d3672=bob@example.org");
    // The null path and a bare name are never signed.
    CHECK(batv_sign("", key(3), now).empty());
    CHECK(batv_sign("postmaster", key(3), now) == "postmaster");
}

TEST_CASE("batv: a signed address checks until its expiry day ends") {
    std::string a = batv_sign("alice@example.org", key(1), now);
    INFO(a);
    std::vector<Secret> keys{key(1)};
    CHECK(batv_check(a, keys, now) == BatvCheck::ok);
    CHECK(batv_check(a, keys, now - 3600) == BatvCheck::ok);               // the start of the signing day
    CHECK(batv_check(a, keys, 20795 * day + day - 1) == BatvCheck::ok);   // the last second of the expiry day
    CHECK(batv_check(a, keys, 20796 * day) == BatvCheck::expired);        // the day after
    CHECK(batv_check(a, keys, now + 100 * day) == BatvCheck::expired);
    CHECK(batv_check(a, keys, now + 900 * day) == BatvCheck::expired);
    // 1000 days on, the day digits come round again: BATV's documented limit.
    CHECK(batv_check(a, keys, now + 1000 * day) == BatvCheck::ok);
    CHECK(to_string(BatvCheck::ok) == "ok");
    CHECK(to_string(BatvCheck::expired) == "expired");
}

TEST_CASE("batv: the window of days ahead of today is bounded by max_days") {
    std::string a = batv_sign("alice@example.org", key(1), now, 20);
    std::vector<Secret> keys{key(1)};
    CHECK(batv_check(a, keys, now) == BatvCheck::ok);
    CHECK(batv_check(a, keys, now, 20) == BatvCheck::ok);
    CHECK(batv_check(a, keys, now, 19) == BatvCheck::expired);  // claims more days than accepted
    std::string far = batv_sign("alice@example.org", key(1), now, 31);
    CHECK(batv_check(far, keys, now) == BatvCheck::expired);
    CHECK(batv_check(far, keys, now + day) == BatvCheck::ok);
}

TEST_CASE("batv: expiry days wrap modulo 1000") {
    const std::int64_t late = 20998 * day;  // day 998: signed for day 21005, written 005
    std::string a = batv_sign("alice@example.org", key(1), late);
    CHECK(a.rfind("prvs=1005", 0) == 0);
    std::vector<Secret> keys{key(1)};
    CHECK(batv_check(a, keys, late) == BatvCheck::ok);
    CHECK(batv_check(a, keys, 21000 * day) == BatvCheck::ok);
    CHECK(batv_check(a, keys, 21005 * day) == BatvCheck::ok);
    CHECK(batv_check(a, keys, 21006 * day) == BatvCheck::expired);
}

TEST_CASE("batv: every changed character of the tag or the address is a bad signature") {
    std::string a = batv_sign("alice@example.org", key(1), now);
    std::vector<Secret> keys{key(1)};
    REQUIRE(batv_check(a, keys, now) == BatvCheck::ok);
    int tried = 0;
    for (std::size_t i = 5; i < 15; ++i) {  // KDDDSSSSSS
        for (char c : std::string("0123456789abcdef")) {
            if (c == a[i]) continue;
            std::string b = a;
            b[i] = c;
            INFO(b);
            CHECK(batv_check(b, keys, now) == BatvCheck::bad_signature);
            ++tried;
        }
    }
    CHECK(tried == 10 * 15);  // a hex letter in K or DDD is the wrong shape: bad too
    std::string other_local = a;
    other_local[16] = 'b';  // alice -> blice
    CHECK(batv_check(other_local, keys, now) == BatvCheck::bad_signature);
    std::string other_domain = a.substr(0, a.size() - 3) + "net";
    CHECK(batv_check(other_domain, keys, now) == BatvCheck::bad_signature);
    // A tag of the wrong shape.
    for (const char* b : {"prvs=1795abc=alice@example.org", "prvs=1795abcdef0=alice@example.org",
                          "prvs==alice@example.org", "prvs=x795abcdef=alice@example.org",
                          "prvs=1795abcdeg=alice@example.org", "prvs=1795 bcdef=alice@example.org"}) {
        INFO(b);
        CHECK(batv_check(b, keys, now) == BatvCheck::bad_signature);
    }
}

TEST_CASE("batv: the wrong key is a bad signature; any key with the right digit is tried") {
    std::string a = batv_sign("alice@example.org", key(1), now);
    CHECK(batv_check(a, {key(1, 'x')}, now) == BatvCheck::bad_signature);  // same id, other bytes
    CHECK(batv_check(a, {key(2)}, now) == BatvCheck::bad_signature);       // other digit
    CHECK(batv_check(a, {}, now) == BatvCheck::bad_signature);
    // Newest first, as the store gives them: key 11 shares the digit 1 with key 1.
    CHECK(batv_check(a, {key(11, 'n'), key(2, 'm'), key(1)}, now) == BatvCheck::ok);
    std::string b = batv_sign("alice@example.org", key(11, 'n'), now);
    CHECK(batv_check(b, {key(11, 'n'), key(2, 'm'), key(1)}, now) == BatvCheck::ok);
    CHECK(batv_check(b, {key(1)}, now) == BatvCheck::bad_signature);
}

TEST_CASE("batv: addresses without a prvs= tag are unsigned") {
    std::vector<Secret> keys{key(1)};
    for (const char* a : {"alice@example.org", "", "alice", "prvs=notag@example.org", "prvs=1795abcdef=@example.org",
                          "msprvs1=19abcdef=alice@example.org", "xprvs=1795abcdef=alice@example.org",
                          "prvs=1795abcdef=alice", "SRS0=HHH=TT=orig.example=alice@fwd.example"}) {
        INFO(a);
        CHECK(batv_check(a, keys, now) == BatvCheck::unsigned_address);
    }
    CHECK(to_string(BatvCheck::unsigned_address) == "unsigned");
}

TEST_CASE("batv: the tag, the hex and the address may come back in any case") {
    std::string a = batv_sign("Alice@Example.org", key(1), now);
    std::vector<Secret> keys{key(1)};
    CHECK(batv_check(upper(a), keys, now) == BatvCheck::ok);
    std::string mixed = a;
    mixed.replace(0, 5, "Prvs=");
    CHECK(batv_check(mixed, keys, now) == BatvCheck::ok);
    CHECK(batv_check("prvs=" + a.substr(5, 11) + "alice@example.org", keys, now) == BatvCheck::ok);
}

TEST_CASE("batv: strip removes one prvs= tag and nothing else") {
    std::string a = batv_sign("Alice@Example.org", key(1), now);
    CHECK(batv_strip(a) == "Alice@Example.org");
    CHECK(batv_strip(upper(a)) == "ALICE@EXAMPLE.ORG");
    CHECK(batv_strip("alice@example.org") == "alice@example.org");
    CHECK(batv_strip("prvs=notag@example.org") == "prvs=notag@example.org");
    CHECK(batv_strip("prvs=tag=@example.org") == "prvs=tag=@example.org");
    CHECK(batv_strip("msprvs1=19abcdef=bob@x.org") == "msprvs1=19abcdef=bob@x.org");
    CHECK(batv_strip("prvs=a=prvs=b=bob@x.org") == "prvs=b=bob@x.org");
    CHECK(batv_strip("").empty());
    CHECK(batv_strip("prvs=a=b") == "prvs=a=b");
}

TEST_CASE("batv: strip_sender_tags takes the same tag off") {
    for (const char* plain : {"Alice@Example.org", "bob.smith@mail.example.net", "x+y@example.com"}) {
        std::string a = batv_sign(plain, key(7), now);
        INFO(a);
        auto spec = parse_addr_spec(a);
        REQUIRE(spec.ok());
        CHECK(normalize_address(strip_sender_tags(*spec)) == normalize_address(*parse_addr_spec(plain)));
        CHECK(batv_strip(a) == plain);
    }
}

TEST_CASE("batv: the store keeps one key, made on first use, apart from token keys") {
    TmpDir d;
    auto s = open_store(d.file("s.db"));
    REQUIRE(s.ok());
    Store& st = **s;
    auto t = current_token_secret(st, 5);
    REQUIRE(t.ok());
    auto k = current_batv_secret(st, 10);
    REQUIRE(k.ok());
    CHECK(k->key_id == 1);
    CHECK(k->bytes.size() == 32);
    CHECK(k->created == 10);
    CHECK(k->bytes != t->bytes);
    auto again = current_batv_secret(st, 20);
    REQUIRE(again.ok());
    CHECK(again->key_id == 1);
    CHECK(again->bytes == k->bytes);
    CHECK(st.secrets(batv_secret_purpose)->size() == 1);
    CHECK(st.secrets(token_secret_purpose)->size() == 1);
    // A newer key takes over signing; the older one still checks.
    REQUIRE(st.secret_add(batv_secret_purpose, std::string(32, 'z'), 30).ok());
    auto newest = current_batv_secret(st, 40);
    REQUIRE(newest.ok());
    CHECK(newest->key_id == 2);
    std::string old_sig = batv_sign("a@example.org", *k, now);
    CHECK(batv_check(old_sig, *st.secrets(batv_secret_purpose), now) == BatvCheck::ok);
    CHECK(batv_check(batv_sign("a@example.org", *newest, now), *st.secrets(batv_secret_purpose), now) ==
          BatvCheck::ok);
}
