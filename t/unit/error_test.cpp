#include "libmail/base/error.hpp"

#include <catch2/catch.hpp>

using namespace mail;

TEST_CASE("error: every kind maps to its sysexits code") {
    CHECK(exit_code(ErrorKind::usage) == 64);
    CHECK(exit_code(ErrorKind::data) == 65);
    CHECK(exit_code(ErrorKind::noinput) == 66);
    CHECK(exit_code(ErrorKind::rejected) == 69);
    CHECK(exit_code(ErrorKind::software) == 70);
    CHECK(exit_code(ErrorKind::tempfail) == 75);
    CHECK(exit_code(ErrorKind::noperm) == 77);
    CHECK(exit_code(ErrorKind::config) == 78);
}

TEST_CASE("error: Result holds a value or an error") {
    Result<int> good = 42;
    REQUIRE(good.ok());
    CHECK(*good == 42);
    Result<int> bad = make_error(ErrorKind::tempfail, "store busy");
    REQUIRE_FALSE(bad.ok());
    CHECK(bad.error().kind == ErrorKind::tempfail);
    CHECK(bad.error().text == "store busy");
    Result<void> done;
    CHECK(done.ok());
    Result<void> failed = make_error(ErrorKind::data, "bad");
    CHECK_FALSE(failed.ok());
    CHECK(exit_code(failed.error().kind) == 65);
}
