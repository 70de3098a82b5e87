#include "libmail/io/recipient_check.hpp"
#include "tmpdir.hpp"

#include <catch2/catch.hpp>

using namespace mail;

TEST_CASE("recipient map: addresses and @domain lines, case ignored, comments and blanks skipped", "[deliver]") {
    TmpDir d;
    auto m = recipient_map(d.write("map", "# who exists\nBob@Ours.example\n\n  carol@ours.example  \n@open.example\n"));
    REQUIRE(m.ok());
    auto st = [&](const std::string& a) { return (*m)->check(a).status; };
    CHECK(st("bob@ours.example") == RecipientStatus::known);
    CHECK(st("BOB@ours.example") == RecipientStatus::known);
    CHECK(st("carol@ours.example") == RecipientStatus::known);
    CHECK(st("anyone@open.example") == RecipientStatus::known);
    CHECK(st("dave@ours.example") == RecipientStatus::unknown);
    CHECK(st("bob@sub.ours.example") == RecipientStatus::unknown);
    CHECK(st("x@notopen.example") == RecipientStatus::unknown);
}

TEST_CASE("recipient map: a bad line or a missing file is a usage error naming it", "[deliver]") {
    TmpDir d;
    auto bad = recipient_map(d.write("map", "bob@ours.example\nnot an address\n"));
    REQUIRE_FALSE(bad.ok());
    CHECK(bad.error().kind == ErrorKind::usage);
    CHECK(bad.error().text.find("map:2:") != std::string::npos);
    CHECK_FALSE(recipient_map(d.write("map2", "bob@\n")).ok());
    CHECK_FALSE(recipient_map(d.file("missing")).ok());
}

TEST_CASE("recipient probe: only an SMTP or LMTP downstream can be asked", "[deliver]") {
    CHECK_FALSE(recipient_probe(parse_delivery_target("maildir:/tmp/x").value(), "h", std::chrono::seconds(1)).ok());
    CHECK_FALSE(recipient_probe(parse_delivery_target("pipe:/bin/true").value(), "h", std::chrono::seconds(1)).ok());
    CHECK(recipient_probe(parse_delivery_target("lmtp:unix:/run/x").value(), "h", std::chrono::seconds(1)).ok());
    CHECK(recipient_probe(parse_delivery_target("smtp:127.0.0.1:25").value(), "h", std::chrono::seconds(1)).ok());
}

TEST_CASE("recipient probe: a server that cannot be reached is a temporary answer, not remembered", "[deliver]") {
    // Port 1 on loopback: nothing listens there in a test environment.
    auto p = recipient_probe(parse_delivery_target("smtp:127.0.0.1:1").value(), "h", std::chrono::seconds(2));
    REQUIRE(p.ok());
    auto a = (*p)->check("bob@ours.example");
    CHECK(a.status == RecipientStatus::tempfail);
    CHECK_FALSE(a.cached);
    CHECK_FALSE((*p)->check("bob@ours.example").cached);
}
