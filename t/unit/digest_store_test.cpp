// The store's digest addresses (both engines), and how the token binding of a digest address behaves.
#include "libmail/policy/token.hpp"
#include "libmail/store/store.hpp"
#include "store_rig.hpp"

#include <catch2/catch.hpp>

#include <atomic>
#include <thread>

using namespace mail;

TEST_CASE("digest store: an address is bound to its recipient and held mail, and is used once") {
    StoreRig rig("mchallenge");
    Store& s = *rig.store;
    std::int64_t t = 1800000000;
    DigestToken a{"aaaa", DigestAction::all, "bob@ours.example", {"1111", "2222"}, "d1", t + 100, 0};
    DigestToken f{"ffff", DigestAction::from, "bob@ours.example", {}, "d1", t + 100, 0};
    REQUIRE(s.digest_add({a, f}));
    auto g = s.digest_get("aaaa");
    REQUIRE(g);
    REQUIRE(*g);
    CHECK((*g)->action == DigestAction::all);
    CHECK((*g)->recipient == "bob@ours.example");
    CHECK((*g)->held == std::vector<std::string>{"1111", "2222"});
    CHECK((*g)->used == 0);
    auto none = s.digest_get("zzzz");
    REQUIRE(none);
    CHECK(!*none);

    auto c1 = s.digest_claim("aaaa", t);
    REQUIRE(c1);
    CHECK(*c1);
    auto c2 = s.digest_claim("aaaa", t + 1);
    REQUIRE(c2);
    CHECK(!*c2);  // a replay
    CHECK((*s.digest_get("aaaa"))->used == t);
    // Given back (its release could not be done): usable again, once.
    CHECK(*s.digest_unclaim("aaaa", t));
    CHECK(*s.digest_claim("aaaa", t + 2));
    CHECK(!*s.digest_claim("aaaa", t + 3));
    // Out of date: never.
    CHECK(!*s.digest_claim("ffff", t + 101));
    // Adding the same address twice is an error, and adds nothing.
    DigestToken b{"bbbb", DigestAction::release, "bob@ours.example", {"1111"}, "d2", t + 100, 0};
    CHECK(!s.digest_add({b, a}));
    CHECK(!*s.digest_get("bbbb"));
    auto n = s.digest_expire(t + 200);
    REQUIRE(n);
    CHECK(*n == 2);
}

TEST_CASE("digest store: of concurrent claims of one address exactly one wins") {
    StoreRig rig("mchallenge");
    std::int64_t t = 1800000000;
    REQUIRE(rig.store->digest_add({{"cccc", DigestAction::release, "bob@ours.example", {"1"}, "d", t + 100, 0}}));
    std::atomic<int> won{0}, failed{0};
    std::vector<std::thread> th;
    for (int i = 0; i < 6; ++i)
        th.emplace_back([&] {
            auto st = rig.ctx->open_store();
            if (!st) {
                ++failed;
                return;
            }
            auto c = (*st)->digest_claim("cccc", t);
            if (!c) ++failed;
            else if (*c) ++won;
        });
    for (auto& x : th) x.join();
    CHECK(failed == 0);
    CHECK(won == 1);
}

TEST_CASE("digest store: a reply address is a token bound to the recipient as sender, good once") {
    StoreRig rig("mchallenge");
    std::int64_t t = 1800000000;
    TokenRequest r{"bob@ours.example", token_flag::once | token_flag::sender, t + 3600, "bob@ours.example", '+'};
    auto a = issue_token(*rig.store, r, t);
    REQUIRE(a);
    auto ok = check_token(*rig.store, *a, "bob@ours.example", false, '+', t);
    REQUIRE(ok);
    CHECK(ok->check == TokenCheck::ok);
    CHECK(ok->recipient == "bob@ours.example");
    auto other = check_token(*rig.store, *a, "mallory@evil.example", false, '+', t);
    REQUIRE(other);
    CHECK(other->check == TokenCheck::wrong_sender);
    auto late = check_token(*rig.store, *a, "bob@ours.example", false, '+', t + 7200);
    REQUIRE(late);
    CHECK(late->check == TokenCheck::expired);
    // A payload changed by one character is no token of ours.
    std::string bad = *a;
    auto plus = bad.find('+');
    bad[plus + 3] = bad[plus + 3] == 'a' ? 'b' : 'a';
    auto forged = check_token(*rig.store, bad, "bob@ours.example", false, '+', t);
    REQUIRE(forged);
    CHECK(forged->check != TokenCheck::ok);
}
