#include "libmail/mail/spool.hpp"
#include "tmpdir.hpp"

#include <catch2/catch.hpp>

#include <cstdlib>
#include <filesystem>
#include <sstream>

using namespace mail;

TEST_CASE("spool: small bodies stay in memory, large ones move to an unlinked file, both copy out whole") {
    TmpDir d;
    setenv("TMPDIR", d.path.c_str(), 1);
    std::string data;
    for (int i = 0; i < 5000; ++i) data += "line " + std::to_string(i) + "\r\n";
    Spool small(1 << 20);
    REQUIRE(small.write(data).ok());
    CHECK_FALSE(small.on_disk());
    std::ostringstream a;
    REQUIRE(small.copy_to(a).ok());
    CHECK(a.str() == data);

    Spool big(1000);
    for (std::size_t i = 0; i < data.size(); i += 777) REQUIRE(big.write(std::string_view(data).substr(i, 777)).ok());
    CHECK(big.on_disk());
    CHECK(big.size() == data.size());
    CHECK(std::filesystem::is_empty(d.path));  // unlinked at once
    std::ostringstream b;
    REQUIRE(big.copy_to(b).ok());
    CHECK(b.str() == data);
    unsetenv("TMPDIR");
}

TEST_CASE("spool: a temporary directory that cannot be used is a tempfail") {
    setenv("TMPDIR", "/nonexistent/mailstamp", 1);
    Spool s(4);
    auto r = s.write("more than four");
    unsetenv("TMPDIR");
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().kind == ErrorKind::tempfail);
}
