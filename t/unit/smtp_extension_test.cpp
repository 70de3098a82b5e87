// SmtpServer's extension hook: EHLO keywords from the handler, on_extension with the session state,
// ending a transaction from an extension reply, and a reply carrying data (body_pending, take_body,
// body_sent) with the input after it held back.
#include "libmail/smtp/smtp_server.hpp"

#include <catch2/catch.hpp>

#include <functional>
#include <optional>
#include <string>
#include <vector>

using namespace mail;

namespace {

struct Seen {
    std::string word, arg;
    SmtpSessionState state;
};

// Answers the SMTP basics with 250/354; extension commands go to ext (nothing when unset).
struct ExtHandler : SmtpHandler {
    std::vector<std::string> keywords;
    std::function<std::optional<SmtpExtensionReply>(const SmtpCommand&, const SmtpSessionState&)> ext;
    std::vector<Seen> seen;
    std::vector<std::string> errors;
    std::size_t resets = 0, ends = 0;
    SmtpReply rcpt_reply{250, "2.1.5 ok"};

    SmtpReply on_helo(std::string_view, bool) override { return {250, "ok"}; }
    SmtpReply on_mail(const std::string&, const SmtpCommand&) override { return {250, "2.1.0 ok"}; }
    SmtpReply on_rcpt(const std::string&, const SmtpCommand&) override { return rcpt_reply; }
    SmtpReply on_data() override { return {354, "go"}; }
    void on_data_chunk(std::string_view) override {}
    SmtpReply on_data_end(std::string_view) override {
        ++ends;
        return {250, "2.0.0 queued"};
    }
    void on_reset() override { ++resets; }
    bool on_auth(std::string_view, std::string_view, std::string_view) override { return false; }
    void on_protocol_error(std::string_view what) override { errors.emplace_back(what); }
    std::vector<std::string> ehlo_keywords() override { return keywords; }
    std::optional<SmtpExtensionReply> on_extension(const SmtpCommand& cmd, const SmtpSessionState& s) override {
        seen.push_back({cmd.word, cmd.arg, s});
        if (!ext) return std::nullopt;
        return ext(cmd, s);
    }
};

struct Session {
    ExtHandler h;
    SmtpServer s;
    explicit Session(SmtpServerConfig cfg = {}) : s(std::move(cfg), h) {
        s.greet();
        (void)s.take_output();
    }
    std::string say(std::string_view bytes) {
        s.feed(bytes);
        return s.take_output();
    }
};

std::vector<std::string> lines_of(const std::string& out) {
    std::vector<std::string> v;
    std::size_t pos = 0;
    while (pos < out.size()) {
        std::size_t e = out.find("\r\n", pos);
        if (e == std::string::npos) e = out.size();
        v.push_back(out.substr(pos, e - pos));
        pos = e + 2;
    }
    return v;
}

bool has_line(const std::string& out, const std::string& l) {
    for (const auto& x : lines_of(out))
        if (x == l) return true;
    return false;
}

// A source writing the given pieces, counting how often it was run.
MessageSource pieces_source(std::vector<std::string> pieces, int* runs = nullptr) {
    return [pieces, runs](const std::function<Result<void>(std::string_view)>& write) -> Result<void> {
        if (runs) ++*runs;
        for (const auto& p : pieces)
            if (auto w = write(p); !w) return w;
        return {};
    };
}

std::string run(const MessageSource& src) {
    std::string got;
    REQUIRE(static_cast<bool>(src));
    auto r = src([&](std::string_view p) -> Result<void> {
        got.append(p);
        return {};
    });
    REQUIRE(r.ok());
    return got;
}

// GET answers 250 with a body naming its argument; END ends the transaction with end_code.
struct GetEnd {
    int end_code = 250;
    int get_code = 250;
    std::optional<SmtpExtensionReply> operator()(const SmtpCommand& cmd, const SmtpSessionState&) const {
        if (cmd.word == "GET")
            return SmtpExtensionReply{SmtpReply(get_code, "2.6.0 here is " + cmd.arg), false,
                                      pieces_source({"body of ", cmd.arg, "\r\n"})};
        if (cmd.word == "END") return SmtpExtensionReply{SmtpReply(end_code, "end"), true, {}};
        if (cmd.word == "XNO") return SmtpExtensionReply{SmtpReply(550, "5.7.1 no"), false, {}};
        return std::nullopt;
    }
};

} // namespace

TEST_CASE("extension: the handler's keywords are in the EHLO reply, after the server's own", "[smtp_extension]") {
    Session t;
    t.h.keywords = {"SOURCE", "XTWO ARG"};
    std::string out = t.say("EHLO c.example\r\n");
    auto l = lines_of(out);
    REQUIRE(l.size() >= 3);
    CHECK(l[l.size() - 2] == "250-SOURCE");
    CHECK(l.back() == "250 XTWO ARG");
    CHECK(has_line(out, "250-PIPELINING"));
}

TEST_CASE("extension: a keyword with control characters is cleaned", "[smtp_extension]") {
    Session t;
    t.h.keywords = {"X\r\nY"};
    std::string out = t.say("EHLO c.example\r\n");
    CHECK(lines_of(out).back() == "250 X??Y");
    CHECK(out.find("\r\nY") == std::string::npos);
}

TEST_CASE("extension: no keywords, no extra EHLO lines; HELO lists none", "[smtp_extension]") {
    Session a;
    auto plain = lines_of(a.say("EHLO c.example\r\n"));
    Session b;
    b.h.keywords = {"SOURCE"};
    auto with = lines_of(b.say("EHLO c.example\r\n"));
    CHECK(with.size() == plain.size() + 1);
    std::string helo = b.say("HELO c.example\r\n");
    CHECK(helo == "250 localhost\r\n");
}

TEST_CASE("extension: an unknown verb the handler does not take gets 500 and counts as an error", "[smtp_extension]") {
    SmtpServerConfig cfg;
    cfg.max_errors = 3;
    Session t(cfg);
    t.say("EHLO c.example\r\n");
    CHECK(t.say("frob a  b\r\n") == "500 5.5.2 command not recognised\r\n");
    REQUIRE(t.h.seen.size() == 1);
    CHECK(t.h.seen[0].word == "FROB");  // upper-cased
    CHECK(t.h.seen[0].arg == "a  b");
    CHECK(t.h.errors.back() == "unknown command");
    CHECK(t.say("FROB\r\n") == "500 5.5.2 command not recognised\r\n");
    CHECK_FALSE(t.s.closed());
    std::string out = t.say("FROB\r\n");
    CHECK(out.rfind("500 5.5.2 command not recognised\r\n421 ", 0) == 0);
    CHECK(t.s.closed());
}

TEST_CASE("extension: the handler's reply is sent as it is; a 5xx refusal counts as an error", "[smtp_extension]") {
    SmtpServerConfig cfg;
    cfg.max_errors = 3;
    Session t(cfg);
    t.h.ext = GetEnd{};
    t.say("EHLO c.example\r\n");
    // A client probing for ids is closed like one sending bad commands.
    CHECK(t.say("XNO\r\n") == "550 5.7.1 no\r\n");
    CHECK(t.say("XNO\r\n") == "550 5.7.1 no\r\n");
    CHECK_FALSE(t.s.closed());
    std::string last = t.say("XNO\r\n");
    CHECK(last.rfind("550 5.7.1 no\r\n421 4.7.0 ", 0) == 0);
    CHECK(t.s.closed());
}

TEST_CASE("extension: the handler sees where the session stands", "[smtp_extension]") {
    SmtpServerConfig cfg;
    cfg.tls_available = true;
    Session t(cfg);
    t.h.ext = [](const SmtpCommand&, const SmtpSessionState&) -> std::optional<SmtpExtensionReply> {
        return SmtpExtensionReply{SmtpReply(250, "seen"), false, {}};
    };
    auto state = [&](const std::string& before) {
        t.say(before);
        CHECK(t.say("XSTATE\r\n") == "250 seen\r\n");
        REQUIRE(!t.h.seen.empty());
        return t.h.seen.back().state;
    };
    auto s = state("");
    CHECK_FALSE(s.greeted);
    CHECK_FALSE(s.esmtp);
    CHECK_FALSE(s.in_transaction);
    CHECK(s.rcpts == 0);

    s = state("HELO c.example\r\n");
    CHECK(s.greeted);
    CHECK_FALSE(s.esmtp);

    s = state("EHLO c.example\r\n");
    CHECK(s.greeted);
    CHECK(s.esmtp);
    CHECK_FALSE(s.tls);
    CHECK_FALSE(s.in_transaction);

    s = state("MAIL FROM:<a@x.example>\r\n");
    CHECK(s.in_transaction);
    CHECK(s.rcpts == 0);

    s = state("RCPT TO:<b@y.example>\r\nRCPT TO:<c@y.example>\r\n");
    CHECK(s.in_transaction);
    CHECK(s.rcpts == 2);

    t.h.rcpt_reply = SmtpReply(550, "5.1.1 no such user");
    s = state("RCPT TO:<d@y.example>\r\n");
    CHECK(s.rcpts == 2);  // a refused recipient is not counted

    s = state("RSET\r\n");
    CHECK_FALSE(s.in_transaction);
    CHECK(s.rcpts == 0);
    CHECK(s.greeted);

    // After the handshake: TLS on, not greeted any more.
    CHECK(t.say("STARTTLS\r\n").rfind("220 ", 0) == 0);
    t.s.tls_started();
    s = state("");
    CHECK(s.tls);
    CHECK_FALSE(s.greeted);
    s = state("EHLO c.example\r\n");
    CHECK(s.tls);
    CHECK(s.greeted);
}

TEST_CASE("extension: a positive ending reply ends the transaction and counts a message", "[smtp_extension]") {
    Session t;
    t.h.ext = GetEnd{};
    t.say("EHLO c.example\r\nMAIL FROM:<a@x.example>\r\nRCPT TO:<b@y.example>\r\n");
    CHECK(t.say("END\r\n") == "250 end\r\n");
    CHECK(t.s.messages() == 1);
    CHECK(t.say("RCPT TO:<c@y.example>\r\n") == "503 5.5.1 need MAIL before RCPT\r\n");
    CHECK(t.say("DATA\r\n") == "503 5.5.1 need MAIL before DATA\r\n");
    CHECK(t.say("MAIL FROM:<a@x.example>\r\n") == "250 2.1.0 ok\r\n");
    CHECK(t.say("RCPT TO:<c@y.example>\r\n") == "250 2.1.5 ok\r\n");
    REQUIRE(t.h.seen.size() == 1);
    CHECK(t.h.seen[0].state.in_transaction);
    CHECK(t.h.seen[0].state.rcpts == 1);
    // A second one counts too, and a DATA message after it.
    CHECK(t.say("END\r\n") == "250 end\r\n");
    CHECK(t.s.messages() == 2);
    CHECK(t.say("MAIL FROM:<a@x.example>\r\nRCPT TO:<c@y.example>\r\nDATA\r\nhi\r\n.\r\n") ==
          "250 2.1.0 ok\r\n250 2.1.5 ok\r\n354 go\r\n250 2.0.0 queued\r\n");
    CHECK(t.s.messages() == 3);
}

TEST_CASE("extension: a negative ending reply leaves the transaction open", "[smtp_extension]") {
    Session t;
    GetEnd g;
    g.end_code = 554;
    t.h.ext = g;
    t.say("EHLO c.example\r\nMAIL FROM:<a@x.example>\r\nRCPT TO:<b@y.example>\r\n");
    CHECK(t.say("END\r\n") == "554 end\r\n");
    CHECK(t.s.messages() == 0);
    CHECK(t.say("RCPT TO:<c@y.example>\r\n") == "250 2.1.5 ok\r\n");
    CHECK(t.say("MAIL FROM:<a@x.example>\r\n") == "503 5.5.1 nested MAIL command\r\n");
    CHECK(t.say("END\r\n") == "554 end\r\n");
    REQUIRE(t.h.seen.size() == 2);
    CHECK(t.h.seen[1].state.rcpts == 2);
}

TEST_CASE("extension: a positive ending reply outside a transaction counts no message", "[smtp_extension]") {
    Session t;
    t.h.ext = GetEnd{};
    t.say("EHLO c.example\r\n");
    CHECK(t.say("END\r\n") == "250 end\r\n");
    CHECK(t.s.messages() == 0);
}

TEST_CASE("extension: a reply with data holds back the input after its command until body_sent()", "[smtp_extension]") {
    Session t;
    t.h.ext = GetEnd{};
    t.say("EHLO c.example\r\n");
    CHECK_FALSE(t.s.body_pending());
    std::string out = t.say("GET x\r\nNOOP\r\n");
    CHECK(out == "250 2.6.0 here is x\r\n");
    CHECK(t.s.body_pending());
    // More input waits too.
    CHECK(t.say("NOOP\r\n").empty());
    CHECK(t.s.body_pending());
    CHECK(run(t.s.take_body()) == "body of x\r\n");
    t.s.body_sent();
    CHECK_FALSE(t.s.body_pending());
    CHECK(t.s.take_output() == "250 2.0.0 OK\r\n250 2.0.0 OK\r\n");
    CHECK(t.say("NOOP\r\n") == "250 2.0.0 OK\r\n");
}

TEST_CASE("extension: take_body() gives the MessageSource of the reply, once", "[smtp_extension]") {
    Session t;
    int runs = 0;
    t.h.ext = [&](const SmtpCommand&, const SmtpSessionState&) -> std::optional<SmtpExtensionReply> {
        return SmtpExtensionReply{SmtpReply(250, "follows"), false, pieces_source({"a\r\n", "", ".b\r\n"}, &runs)};
    };
    t.say("EHLO c.example\r\n");
    CHECK(t.say("GET 1\r\n") == "250 follows\r\n");
    REQUIRE(t.s.body_pending());
    auto body = t.s.take_body();
    CHECK(runs == 0);  // the server does not run it itself
    CHECK(run(body) == "a\r\n.b\r\n");
    CHECK(runs == 1);
    CHECK_FALSE(static_cast<bool>(t.s.take_body()));
    t.s.body_sent();
    CHECK(t.say("NOOP\r\n") == "250 2.0.0 OK\r\n");
}

TEST_CASE("extension: a refusal carrying data sends no data and holds nothing back", "[smtp_extension]") {
    Session t;
    GetEnd g;
    g.get_code = 550;
    t.h.ext = g;
    t.say("EHLO c.example\r\n");
    CHECK(t.say("GET x\r\nNOOP\r\n") == "550 2.6.0 here is x\r\n250 2.0.0 OK\r\n");
    CHECK_FALSE(t.s.body_pending());
}

TEST_CASE("extension: held input with another data reply in it, and a partial line", "[smtp_extension]") {
    Session t;
    t.h.ext = GetEnd{};
    t.say("EHLO c.example\r\n");
    CHECK(t.say("GET a\r\nGET b\r\nNOOP\r\nNO") == "250 2.6.0 here is a\r\n");
    CHECK(run(t.s.take_body()) == "body of a\r\n");
    t.s.body_sent();
    CHECK(t.s.take_output() == "250 2.6.0 here is b\r\n");
    REQUIRE(t.s.body_pending());
    CHECK(t.say("OP\r\n").empty());
    CHECK(run(t.s.take_body()) == "body of b\r\n");
    t.s.body_sent();
    CHECK(t.s.take_output() == "250 2.0.0 OK\r\n250 2.0.0 OK\r\n");
    CHECK_FALSE(t.s.body_pending());
}

TEST_CASE("extension: QUIT after a data reply waits for the data", "[smtp_extension]") {
    Session t;
    t.h.ext = GetEnd{};
    t.say("EHLO c.example\r\n");
    CHECK(t.say("GET a\r\nQUIT\r\n") == "250 2.6.0 here is a\r\n");
    CHECK_FALSE(t.s.closed());
    (void)t.s.take_body();
    t.s.body_sent();
    CHECK(t.s.take_output().rfind("221 ", 0) == 0);
    CHECK(t.s.closed());
}

// smtp_server.hpp: "send take_body() ... then call body_sent(). Input after that command waits until then."
// take_body() empties the pending body, so input fed between take_body() and body_sent() is not held:
// it is answered before the held commands that came first.
TEST_CASE("extension: input fed between take_body() and body_sent() waits too", "[smtp_extension]") {
    Session t;
    t.h.ext = GetEnd{};
    t.say("EHLO c.example\r\n");
    CHECK(t.say("GET a\r\nRSET\r\n") == "250 2.6.0 here is a\r\n");
    auto body = t.s.take_body();
    CHECK(t.say("VRFY x\r\n").empty());
    t.s.body_sent();
    auto l = lines_of(t.s.take_output());
    REQUIRE(l.size() == 2);
    CHECK(l[0] == "250 2.0.0 OK");  // RSET first: it came first
    CHECK(l[1].rfind("252 ", 0) == 0);
}
