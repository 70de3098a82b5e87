#include "libmail/smtp/smtp_command.hpp"

#include <catch2/catch.hpp>

using namespace mail;

TEST_CASE("smtp: verbs are case-insensitive and keep their argument") {
    auto e = parse_smtp_command("ehlo client.example");
    REQUIRE(e.ok());
    CHECK(e->verb == SmtpVerb::ehlo);
    CHECK(e->arg == "client.example");
    CHECK(parse_smtp_command("QUIT")->verb == SmtpVerb::quit);
    CHECK(parse_smtp_command("StartTLS")->verb == SmtpVerb::starttls);
    auto u = parse_smtp_command("XYZZY magic");
    REQUIRE(u.ok());
    CHECK(u->verb == SmtpVerb::unknown);
    CHECK(u->word == "XYZZY");
}

TEST_CASE("smtp: MAIL and RCPT paths and ESMTP parameters") {
    auto m = parse_smtp_command("MAIL FROM:<Alice@Example.org> SIZE=1234 BODY=8BITMIME");
    REQUIRE(m.ok());
    CHECK(m->path == "Alice@Example.org");
    REQUIRE(m->params.size() == 2);
    CHECK(*smtp_param(*m, "SIZE") == "1234");
    CHECK(*smtp_param(*m, "BODY") == "8BITMIME");
    CHECK(smtp_param(*m, "AUTH") == nullptr);
    auto null = parse_smtp_command("mail from:<>");
    REQUIRE(null.ok());
    CHECK(null->path.empty());
    auto spaced = parse_smtp_command("MAIL FROM: <a@b.example>");
    REQUIRE(spaced.ok());
    CHECK(spaced->path == "a@b.example");
    auto quoted = parse_smtp_command("RCPT TO:<\"odd>local\"@b.example> NOTIFY=NEVER");
    REQUIRE(quoted.ok());
    CHECK(quoted->path == "\"odd>local\"@b.example");
    CHECK(*smtp_param(*quoted, "NOTIFY") == "NEVER");
    auto route = parse_smtp_command("RCPT TO:<@relay.example:bob@b.example>");
    REQUIRE(route.ok());
    CHECK(route->path == "@relay.example:bob@b.example");
}

TEST_CASE("smtp: malformed commands get a 5xx reply text, never a crash") {
    for (const char* bad : {"MAIL FROM:a@b.example", "MAIL TO:<a@b.example>", "MAIL FROM:<a@b.example",
                            "RCPT TO:<>", "MAIL FROM:<a@b.example>junk", "MAIL FROM:<a@b> =x",
                            "MAIL FROM:<a@b> K!Y=1", "RCPT", "MAIL FROM:<\"unterminated@b>"}) {
        auto r = parse_smtp_command(bad);
        REQUIRE_FALSE(r.ok());
        CHECK(r.error().kind == ErrorKind::data);
        CHECK(r.error().text.rfind("501 5.5.4 ", 0) == 0);
    }
    auto ctl = parse_smtp_command(std::string("HELO a\0b", 8));
    REQUIRE_FALSE(ctl.ok());
    CHECK(ctl.error().text.rfind("500 ", 0) == 0);
    CHECK_FALSE(parse_smtp_command("HELO a\rb").ok());
    std::string many = "MAIL FROM:<a@b>";
    for (int i = 0; i < 20; ++i) many += " P" + std::to_string(i) + "=1";
    CHECK_FALSE(parse_smtp_command(many).ok());
}
