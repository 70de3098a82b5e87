#include "libmail/io/smtp_client.hpp"
#include "libmail/smtp/smtp_server.hpp"

#include <catch2/catch.hpp>

#include <string>
#include <vector>

using namespace mail;

namespace {

// The stuffing of pieces, written one call each, with the terminator.
struct Stuffed {
    std::string body;        // what write_stuffed wrote
    std::string terminator;  // stuffed_terminator afterwards
    std::size_t writes = 0;
};

Stuffed stuff(const std::vector<std::string>& pieces) {
    Stuffed s;
    bool at_bol = true, after_cr = false;
    for (const auto& p : pieces) {
        auto r = write_stuffed(p, at_bol, after_cr, [&](std::string_view out) -> Result<void> {
            s.body.append(out);
            ++s.writes;
            return {};
        });
        REQUIRE(r.ok());
    }
    s.terminator = std::string(stuffed_terminator(at_bol, after_cr));
    return s;
}

std::string wire(const std::vector<std::string>& pieces) {
    Stuffed s = stuff(pieces);
    return s.body + s.terminator;
}

// What a server makes of a stuffed message: the content and the why of its end.
struct Received {
    std::string content;
    std::vector<std::string> ends;
};

struct Sink : SmtpHandler {
    Received r;
    SmtpReply on_helo(std::string_view, bool) override { return {250, "ok"}; }
    SmtpReply on_mail(const std::string&, const SmtpCommand&) override { return {250, "ok"}; }
    SmtpReply on_rcpt(const std::string&, const SmtpCommand&) override { return {250, "ok"}; }
    SmtpReply on_data() override { return {354, "go"}; }
    void on_data_chunk(std::string_view d) override { r.content.append(d); }
    SmtpReply on_data_end(std::string_view why) override {
        r.ends.emplace_back(why);
        return {250, "ok"};
    }
    void on_reset() override {}
    bool on_auth(std::string_view, std::string_view, std::string_view) override { return false; }
    void on_protocol_error(std::string_view) override {}
};

Received receive(const std::string& data_and_terminator) {
    Sink h;
    SmtpServer s({}, h);  // bare newlines are refused: a stuffed message must not have any
    s.feed("EHLO c\r\nMAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nDATA\r\n");
    s.feed(data_and_terminator);
    s.feed("NOOP\r\n");
    std::string out = s.take_output();
    // The NOOP after the message is answered: the terminator was found exactly where it was sent.
    const std::string noop = "250 2.0.0 OK\r\n";
    CHECK(out.size() >= noop.size());
    CHECK(out.substr(out.size() - noop.size()) == noop);
    return h.r;
}

// Content with every line end made CRLF, the way write_stuffed sends it (less the dots).
std::string crlf(std::string_view s) {
    std::string o;
    for (std::size_t i = 0; i < s.size(); ++i) {
        if (s[i] == '\r') {
            o += "\r\n";
            if (i + 1 < s.size() && s[i + 1] == '\n') ++i;
        } else if (s[i] == '\n') {
            o += "\r\n";
        } else {
            o += s[i];
        }
    }
    return o;
}

} // namespace

TEST_CASE("write_stuffed: dots at line starts are doubled") {
    CHECK(wire({".hidden\r\n"}) == "..hidden\r\n.\r\n");
    CHECK(wire({"a\r\n.\r\nb\r\n"}) == "a\r\n..\r\nb\r\n.\r\n");
    CHECK(wire({"a.b\r\n..c\r\n"}) == "a.b\r\n...c\r\n.\r\n");
    CHECK(wire({"a\n.b\n"}) == "a\r\n..b\r\n.\r\n");    // after LF
    CHECK(wire({"a\r.b\r\n"}) == "a\r\n..b\r\n.\r\n");  // after a bare CR
    CHECK(wire({"a\r\n", ".b\r\n"}) == "a\r\n..b\r\n.\r\n");  // line start carried across calls
}

TEST_CASE("write_stuffed: every line end is sent as CRLF") {
    CHECK(wire({"a\nb\n"}) == "a\r\nb\r\n.\r\n");
    CHECK(wire({"a\rb\r"}) == "a\r\nb\r\n.\r\n");
    CHECK(wire({"a\r\r\nb\r\n"}) == "a\r\n\r\nb\r\n.\r\n");
    CHECK(wire({"a\n\nb\r\n"}) == "a\r\n\r\nb\r\n.\r\n");
    CHECK(wire({"\r\n\r\n"}) == "\r\n\r\n.\r\n");
}

TEST_CASE("write_stuffed: CRLF split across calls stays one line end") {
    Stuffed s = stuff({"a\r", "\nb\r\n"});
    CHECK(s.body == "a\r\nb\r\n");
    CHECK(s.terminator == ".\r\n");
    CHECK(s.writes == 2);
    CHECK(wire({"a\r", "\r", "\n", "."}) == "a\r\n\r\n..\r\n.\r\n");
    CHECK(wire({"a\r", ".b\r\n"}) == "a\r\n..b\r\n.\r\n");
}

TEST_CASE("stuffed_terminator: the line end a last line lacks is added") {
    CHECK(wire({}) == ".\r\n");               // empty message: right after DATA's CRLF
    CHECK(wire({""}) == ".\r\n");
    CHECK(wire({"no end"}) == "no end\r\n.\r\n");
    CHECK(wire({"lf end\n"}) == "lf end\r\n.\r\n");
    CHECK(wire({"cr end\r"}) == "cr end\r\n.\r\n");
    CHECK(wire({"crlf end\r\n"}) == "crlf end\r\n.\r\n");
    CHECK(wire({"."}) == "..\r\n.\r\n");
    CHECK(stuffed_terminator(true, false) == ".\r\n");
    CHECK(stuffed_terminator(false, false) == "\r\n.\r\n");
    CHECK(stuffed_terminator(false, true) == "\r\n.\r\n");
    CHECK(stuffed_terminator(true, true) == "\r\n.\r\n");
}

TEST_CASE("write_stuffed: a write error is returned") {
    bool at_bol = true, after_cr = false;
    auto r = write_stuffed("x\r\n", at_bol, after_cr,
                           [](std::string_view) -> Result<void> { return Error{ErrorKind::tempfail, "broken pipe"}; });
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().text == "broken pipe");
}

TEST_CASE("write_stuffed and the server agree: what is stuffed comes out as it went in, line ends as CRLF") {
    const std::vector<std::string> contents = {
        "",
        "plain\r\n",
        "no final line end",
        ".\r\n",
        "..\r\n.\r\n.x\r\n",
        "a\n.\nb\n",
        "a\r.\rb\r",
        "mixed\r\n.\n.\r..\r\n\r\r\n\n",
        ".",
        "x\r\n.\r\nMAIL FROM:<evil@x>\r\n",
        std::string("bin\0ary\xff\r\n", 11),
    };
    for (const auto& c : contents) {
        INFO("content of " << c.size() << " octets");
        // Written whole, and split at every point.
        for (std::size_t k = 0; k <= c.size(); ++k) {
            std::string w = wire({c.substr(0, k), c.substr(k)});
            Received r = receive(w);
            REQUIRE(r.ends == std::vector<std::string>{""});
            std::string want = crlf(c);
            if (!want.empty() && (want.size() < 2 || want.substr(want.size() - 2) != "\r\n")) want += "\r\n";
            REQUIRE(r.content == want);
        }
    }
}
