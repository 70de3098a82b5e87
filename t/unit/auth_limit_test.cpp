#include "libmail/policy/auth_limit.hpp"

#include <catch2/catch.hpp>

using namespace mail;

TEST_CASE("auth_limit: the first failures are answered at once, then 1, 2, 4... seconds up to the cap", "[auth]") {
    AuthLimits l;  // free 3, cap 8
    CHECK(auth_delay(l, 0) == 0);
    CHECK(auth_delay(l, 1) == 0);
    CHECK(auth_delay(l, 3) == 0);
    CHECK(auth_delay(l, 4) == 1);
    CHECK(auth_delay(l, 5) == 2);
    CHECK(auth_delay(l, 6) == 4);
    CHECK(auth_delay(l, 7) == 8);
    CHECK(auth_delay(l, 8) == 8);
    CHECK(auth_delay(l, 1000000) == 8);  // no overflow, however many
    l.max_delay = 0;
    CHECK(auth_delay(l, 10) == 0);
    l = AuthLimits{};
    l.free = 0;
    CHECK(auth_delay(l, 1) == 1);
}

TEST_CASE("auth_limit: failures lock out at the limit, never with limit 0", "[auth]") {
    AuthLimits l;
    l.failures = 5;
    CHECK_FALSE(auth_locked(l, 0));
    CHECK_FALSE(auth_locked(l, 4));
    CHECK(auth_locked(l, 5));
    CHECK(auth_locked(l, 6));
    l.failures = 0;
    CHECK_FALSE(auth_locked(l, 1000));
}

TEST_CASE("auth_limit: a lockout lasts until the counting window ends", "[auth]") {
    AuthLimits l;
    l.window = 900;
    CHECK(auth_window_end(l, 0) == 900);
    CHECK(auth_window_end(l, 899) == 900);
    CHECK(auth_window_end(l, 900) == 1800);
    l.window = 0;  // a nonsense window is one second, not a division by zero
    CHECK(auth_window_end(l, 5) == 6);
}

TEST_CASE("auth_limit: failures count per client key, not per port", "[auth]") {
    CHECK(auth_key("192.0.2.1:4000") == "auth:fail 192.0.2.1");
    CHECK(auth_key("192.0.2.1:4001") == auth_key("192.0.2.1:4000"));
    CHECK(auth_key("[2001:db8:1:2::5]:4000") == "auth:fail 2001:db8:1:2::/64");
    CHECK(auth_key("[2001:db8:1:2::6]:1") == auth_key("[2001:db8:1:2::5]:4000"));
    CHECK(auth_key("stdin").empty());
}
