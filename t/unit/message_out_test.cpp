// write_message and spool_body (mail/message.hpp): a message written out, a body spooled with its hash.
#include "libmail/mail/message.hpp"
#include "libmail/mail/spool.hpp"
#include "libmail/base/canon.hpp"

#include <catch2/catch.hpp>

#include <sstream>

using namespace mail;

TEST_CASE("write_message: the header, then the spooled body or the rest of the input; a failed stream is tempfail") {
    const std::string text = "Subject: hi\r\n\r\nthe body\r\n";
    {
        std::istringstream in(text);
        MessageReader r(in);
        REQUIRE(r.read_header().ok());
        r.prepend("X-A", "1");
        std::ostringstream out;
        REQUIRE(write_message(r, nullptr, out).ok());
        CHECK(out.str() == "X-A: 1\r\nSubject: hi\r\n\r\nthe body\r\n");
    }
    {
        std::istringstream in(text);
        MessageReader r(in);
        REQUIRE(r.read_header().ok());
        Spool spool;
        REQUIRE(spool.write("another body\r\n").ok());
        std::ostringstream out;
        REQUIRE(write_message(r, &spool, out).ok());
        CHECK(out.str() == "Subject: hi\r\n\r\nanother body\r\n");
    }
    {
        std::istringstream in(text);
        MessageReader r(in);
        REQUIRE(r.read_header().ok());
        std::ostringstream out;
        out.setstate(std::ios::badbit);
        auto w = write_message(r, nullptr, out);
        REQUIRE(!w.ok());
        CHECK(w.error().kind == ErrorKind::tempfail);
    }
}

TEST_CASE("spool_body: the rest of the body goes to the spool, its relaxed body hash comes back") {
    std::istringstream in("Subject: hi\r\n\r\nthe  body \r\n\r\n");
    MessageReader r(in);
    REQUIRE(r.read_header().ok());
    Spool spool;
    auto h = spool_body(r, spool);
    REQUIRE(h.ok());
    RelaxedBodyHash want;
    want.update("the  body \r\n\r\n");
    CHECK(*h == want.finish());
    std::ostringstream out;
    REQUIRE(spool.copy_to(out).ok());
    CHECK(out.str() == "the  body \r\n\r\n");
}
