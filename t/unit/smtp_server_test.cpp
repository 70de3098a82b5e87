#include "libmail/policy/postage.hpp"
#include "libmail/smtp/smtp_server.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
#include <string>
#include <tuple>
#include <vector>

using namespace mail;

namespace {

// Records every call; the replies it gives are the test's to choose.
struct FakeHandler : SmtpHandler {
    std::vector<std::string> calls;  // "helo d", "ehlo d", "mail s", "rcpt r", "data", "end why", "reset"
    std::vector<std::string> senders, rcpts, ends, errors;
    std::vector<std::tuple<std::string, std::string, std::string>> auths;
    std::vector<std::string> chunks;
    std::string content;  // every chunk, concatenated
    std::size_t resets = 0;
    SmtpReply helo_reply{250, "ok"};
    SmtpReply mail_reply{250, "2.1.0 sender ok"};
    SmtpReply rcpt_reply{250, "2.1.5 recipient ok"};
    SmtpReply data_reply{354, "go ahead"};
    SmtpReply end_reply{250, "2.0.0 queued"};
    std::string user = "alice", password = "secret";

    SmtpReply on_helo(std::string_view domain, bool esmtp) override {
        calls.push_back((esmtp ? "ehlo " : "helo ") + std::string(domain));
        return helo_reply;
    }
    SmtpReply on_mail(const std::string& sender, const SmtpCommand&) override {
        calls.push_back("mail " + sender);
        senders.push_back(sender);
        return mail_reply;
    }
    SmtpReply on_rcpt(const std::string& rcpt, const SmtpCommand&) override {
        calls.push_back("rcpt " + rcpt);
        rcpts.push_back(rcpt);
        return rcpt_reply;
    }
    SmtpReply on_data() override {
        calls.push_back("data");
        return data_reply;
    }
    void on_data_chunk(std::string_view data) override {
        chunks.emplace_back(data);
        content.append(data);
    }
    SmtpReply on_data_end(std::string_view why) override {
        calls.push_back("end " + std::string(why));
        ends.emplace_back(why);
        if (!why.empty()) return SmtpReply(554, "5.6.0 " + std::string(why));
        return end_reply;
    }
    void on_reset() override {
        calls.push_back("reset");
        ++resets;
    }
    std::optional<SmtpReply> auth_begin;  // what on_auth_begin answers
    std::size_t auth_begins = 0;
    std::optional<SmtpReply> on_auth_begin() override {
        ++auth_begins;
        return auth_begin;
    }
    bool on_auth(std::string_view mech, std::string_view u, std::string_view p) override {
        auths.emplace_back(mech, u, p);
        return u == user && p == password;
    }
    void on_protocol_error(std::string_view what) override { errors.emplace_back(what); }
};

// A server and its handler; say() feeds bytes and returns the replies they caused.
struct Session {
    FakeHandler h;
    SmtpServer s;
    explicit Session(SmtpServerConfig cfg = {}) : s(std::move(cfg), h) {
        s.greet();
        (void)s.take_output();
    }
    std::string say(std::string_view bytes) {
        s.feed(bytes);
        return s.take_output();
    }
    // Feeds one byte at a time; the replies of all of them.
    std::string trickle(std::string_view bytes) {
        std::string out;
        for (char c : bytes) {
            s.feed(std::string_view(&c, 1));
            out += s.take_output();
        }
        return out;
    }
};

// The code of every reply (its last line) in out, in order.
std::vector<int> codes(const std::string& out) {
    std::vector<int> v;
    std::size_t pos = 0;
    while (pos < out.size()) {
        std::size_t e = out.find("\r\n", pos);
        if (e == std::string::npos) e = out.size();
        std::string l = out.substr(pos, e - pos);
        if (l.size() < 4 || l[3] == ' ') v.push_back(std::stoi(l.substr(0, 3)));
        pos = e + 2;
    }
    return v;
}

// The lines of out, without their CRLF.
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

// No bare CR and no bare LF: every CR is followed by LF, every LF preceded by CR.
bool crlf_only(const std::string& s) {
    for (std::size_t i = 0; i < s.size(); ++i) {
        if (s[i] == '\r' && (i + 1 >= s.size() || s[i + 1] != '\n')) return false;
        if (s[i] == '\n' && (i == 0 || s[i - 1] != '\r')) return false;
    }
    return true;
}

// CR and LF made visible for test messages.
std::string visible(std::string_view s) {
    std::string o;
    for (char c : s) o += c == '\r' ? std::string("\\r") : c == '\n' ? std::string("\\n") : std::string(1, c);
    return o;
}

std::string plain(std::string_view authz, std::string_view user, std::string_view pass) {
    std::string s(authz);
    s += '\0';
    s += user;
    s += '\0';
    s += pass;
    return base64_encode(s);
}

const char* const envelope = "EHLO client.example\r\nMAIL FROM:<a@b.example>\r\nRCPT TO:<c@d.example>\r\n";

SmtpServerConfig tls_auth_config() {
    SmtpServerConfig c;
    c.hostname = "mx.example";
    c.tls_available = true;
    c.auth_available = true;
    return c;
}

} // namespace

TEST_CASE("smtp server: greeting and EHLO keywords") {
    SmtpServerConfig cfg;
    cfg.hostname = "mx.example";
    cfg.max_message_size = 12345;
    FakeHandler h;
    SmtpServer s(cfg, h);
    s.greet();
    std::string g = s.take_output();
    CHECK(g == "220 mx.example ESMTP mailstamp\r\n");
    s.feed("EHLO client.example\r\n");
    CHECK(s.take_output() ==
          "250-mx.example\r\n250-PIPELINING\r\n250-SIZE 12345\r\n250-8BITMIME\r\n250 ENHANCEDSTATUSCODES\r\n");
    REQUIRE(h.calls == std::vector<std::string>{"ehlo client.example"});
    s.feed("HELO other.example\r\n");
    CHECK(s.take_output() == "250 mx.example\r\n");
    CHECK(h.calls.back() == "helo other.example");
}

TEST_CASE("smtp server: a refused HELO and a HELO without a domain") {
    Session t;
    t.h.helo_reply = SmtpReply(550, "5.7.1 go away");
    CHECK(t.say("EHLO bad.example\r\n") == "550 5.7.1 go away\r\n");
    CHECK(codes(t.say("MAIL FROM:<a@b>\r\n")) == std::vector<int>{503});
    t.h.helo_reply = SmtpReply(250, "ok");
    CHECK(codes(t.say("EHLO\r\nHELO   \r\nHELO two words\r\n")) == std::vector<int>{501, 501, 501});
    CHECK(codes(t.say("HELO one.example   \r\n")) == std::vector<int>{250});
    CHECK(t.h.calls.back() == "helo one.example");
}

TEST_CASE("smtp server: STARTTLS and AUTH are offered only when they can be used") {
    SECTION("nothing by default") {
        Session t;
        std::string e = t.say("EHLO c\r\n");
        CHECK_FALSE(has_line(e, "250-STARTTLS"));
        CHECK(e.find("STARTTLS") == std::string::npos);
        CHECK(e.find("AUTH") == std::string::npos);
    }
    SECTION("STARTTLS before TLS, AUTH only after") {
        Session t(tls_auth_config());
        std::string e = t.say("EHLO c\r\n");
        CHECK(e.find("STARTTLS\r\n") != std::string::npos);
        CHECK(e.find("AUTH") == std::string::npos);
        CHECK(t.say("STARTTLS\r\n") == "220 2.0.0 Ready to start TLS\r\n");
        t.s.tls_started();
        std::string e2 = t.say("EHLO c\r\n");
        CHECK(e2.find("STARTTLS") == std::string::npos);
        CHECK(e2.find("AUTH PLAIN LOGIN\r\n") != std::string::npos);
    }
    SECTION("AUTH without TLS when configured so") {
        SmtpServerConfig c = tls_auth_config();
        c.auth_without_tls = true;
        Session t(c);
        std::string e = t.say("EHLO c\r\n");
        CHECK(e.find("STARTTLS") != std::string::npos);
        CHECK(e.find("AUTH PLAIN LOGIN\r\n") != std::string::npos);
    }
    SECTION("auth_without_tls alone does not offer AUTH") {
        SmtpServerConfig c;
        c.auth_without_tls = true;
        Session t(c);
        CHECK(t.say("EHLO c\r\n").find("AUTH") == std::string::npos);
    }
}

TEST_CASE("smtp server: commands out of order") {
    Session t;
    CHECK(codes(t.say("MAIL FROM:<a@b.example>\r\n")) == std::vector<int>{503});
    CHECK(t.h.senders.empty());
    CHECK(codes(t.say("EHLO c\r\n")) == std::vector<int>{250});
    CHECK(codes(t.say("RCPT TO:<c@d.example>\r\n")) == std::vector<int>{503});
    CHECK(codes(t.say("DATA\r\n")) == std::vector<int>{503});
    CHECK(codes(t.say("MAIL FROM:<a@b.example>\r\n")) == std::vector<int>{250});
    int no_rcpt = codes(t.say("DATA\r\n")).at(0);
    CHECK((no_rcpt == 503 || no_rcpt == 554));
    CHECK(codes(t.say("MAIL FROM:<x@b.example>\r\n")) == std::vector<int>{503});  // nested
    CHECK(t.h.senders == std::vector<std::string>{"a@b.example"});
    CHECK(t.h.rcpts.empty());
    CHECK(std::count(t.h.calls.begin(), t.h.calls.end(), "data") == 0);
}

TEST_CASE("smtp server: RSET forgets the transaction") {
    Session t;
    CHECK(codes(t.say(envelope)) == (std::vector<int>{250, 250, 250}));
    CHECK(t.h.resets == 0);
    CHECK(codes(t.say("RSET\r\n")) == std::vector<int>{250});
    CHECK(t.h.resets == 1);
    CHECK(codes(t.say("RCPT TO:<c@d.example>\r\nDATA\r\n")) == (std::vector<int>{503, 503}));
    CHECK(codes(t.say("MAIL FROM:<e@f.example>\r\n")) == std::vector<int>{250});  // no longer nested
    CHECK(codes(t.say("RSET\r\nRSET\r\n")) == (std::vector<int>{250, 250}));
    CHECK(t.h.resets == 2);  // only an open transaction is reset
}

TEST_CASE("smtp server: a new EHLO resets an open transaction") {
    Session t;
    (void)t.say(envelope);
    CHECK(codes(t.say("EHLO again.example\r\n")) == std::vector<int>{250});
    CHECK(t.h.resets == 1);
    CHECK(codes(t.say("RCPT TO:<c@d.example>\r\n")) == std::vector<int>{503});
}

TEST_CASE("smtp server: QUIT, NOOP, VRFY, HELP and unknown commands") {
    Session t;
    CHECK(codes(t.say("NOOP\r\nVRFY bob\r\nHELP\r\nXYZZY\r\n")) == (std::vector<int>{250, 252, 214, 500}));
    CHECK_FALSE(t.h.errors.empty());
    (void)t.say(envelope);
    std::string q = t.say("QUIT\r\nNOOP\r\n");
    CHECK(codes(q) == std::vector<int>{221});
    CHECK(q.rfind("221 2.0.0 ", 0) == 0);
    CHECK(t.s.closed());
    CHECK(t.h.resets == 1);  // the open transaction
    CHECK(t.say("NOOP\r\n").empty());
}

TEST_CASE("smtp server: too many errors closes the session with 421") {
    SmtpServerConfig c;
    c.max_errors = 3;
    Session t(c);
    CHECK(codes(t.say("FOO\r\nBAR\r\n")) == (std::vector<int>{500, 500}));
    CHECK_FALSE(t.s.closed());
    std::string o = t.say("BAZ\r\nNOOP\r\n");
    CHECK(codes(o) == (std::vector<int>{500, 421}));
    CHECK(t.s.closed());
    CHECK(std::find(t.h.errors.begin(), t.h.errors.end(), "too many errors") != t.h.errors.end());
    CHECK(t.say("NOOP\r\n").empty());
}

TEST_CASE("smtp server: MAIL parameters") {
    SmtpServerConfig c;
    c.max_message_size = 1000;
    Session t(c);
    (void)t.say("EHLO c\r\n");
    CHECK(codes(t.say("MAIL FROM:<a@b> SIZE=1001\r\n")) == std::vector<int>{552});
    CHECK(codes(t.say("MAIL FROM:<a@b> SIZE=99999999999999999999\r\n")) == std::vector<int>{552});
    CHECK(codes(t.say("MAIL FROM:<a@b> SIZE=12x\r\n")) == std::vector<int>{501});
    CHECK(codes(t.say("MAIL FROM:<a@b> SIZE=\r\n")) == std::vector<int>{501});
    CHECK(codes(t.say("MAIL FROM:<a@b> SIZE=-1\r\n")) == std::vector<int>{501});
    CHECK(codes(t.say("MAIL FROM:<a@b> FOO=bar\r\n")) == std::vector<int>{555});
    CHECK(codes(t.say("MAIL FROM:<a@b> BODY=BINARYMIME\r\n")) == std::vector<int>{501});
    CHECK(t.h.senders.empty());
    CHECK(codes(t.say("MAIL FROM:<a@b> SIZE=1000 BODY=8BITMIME AUTH=<>\r\n")) == std::vector<int>{250});
    CHECK(t.h.senders == std::vector<std::string>{"a@b"});
    CHECK(codes(t.say("RCPT TO:<c@d> NOTIFY=NEVER\r\n")) == std::vector<int>{555});
    CHECK(t.h.rcpts.empty());
}

TEST_CASE("smtp server: ESMTP parameters after HELO are refused") {
    Session t;
    (void)t.say("HELO c\r\n");
    CHECK(codes(t.say("MAIL FROM:<a@b> SIZE=10\r\n")) == std::vector<int>{501});
    CHECK(t.h.senders.empty());
    CHECK(codes(t.say("MAIL FROM:<a@b>\r\n")) == std::vector<int>{250});
}

TEST_CASE("smtp server: the null sender and refused senders") {
    Session t;
    (void)t.say("EHLO c\r\n");
    t.h.mail_reply = SmtpReply(550, "5.7.1 not you");
    CHECK(t.say("MAIL FROM:<x@y>\r\n") == "550 5.7.1 not you\r\n");
    CHECK(codes(t.say("RCPT TO:<c@d>\r\n")) == std::vector<int>{503});
    t.h.mail_reply = SmtpReply(250, "ok");
    CHECK(codes(t.say("MAIL FROM:<>\r\n")) == std::vector<int>{250});
    CHECK(t.h.senders.back().empty());
}

TEST_CASE("smtp server: max_recipients, then 452") {
    SmtpServerConfig c;
    c.max_recipients = 2;
    Session t(c);
    (void)t.say("EHLO c\r\nMAIL FROM:<a@b>\r\n");
    t.h.rcpt_reply = SmtpReply(550, "5.1.1 no such user");
    CHECK(codes(t.say("RCPT TO:<nobody@d>\r\n")) == std::vector<int>{550});  // refused ones do not count
    t.h.rcpt_reply = SmtpReply(250, "ok");
    CHECK(codes(t.say("RCPT TO:<r1@d>\r\nRCPT TO:<r2@d>\r\nRCPT TO:<r3@d>\r\n")) == (std::vector<int>{250, 250, 452}));
    CHECK(t.h.rcpts == (std::vector<std::string>{"nobody@d", "r1@d", "r2@d"}));
    CHECK(codes(t.say("DATA\r\n")) == std::vector<int>{354});
}

TEST_CASE("smtp server: an overlong command line is refused and skipped to its end") {
    SmtpServerConfig c;
    c.line_length = 64;
    const std::string at_limit = "NOOP " + std::string(57, 'x') + "\r\n";  // 64 octets with CRLF
    const std::string over = "NOOP " + std::string(58, 'x') + "\r\n";      // 65
    const std::string huge = "MAIL FROM:<" + std::string(500, 'a') + "@b>\r\n";
    REQUIRE(at_limit.size() == 64);
    SECTION("in one feed") {
        Session t(c);
        CHECK(codes(t.say(at_limit)) == std::vector<int>{250});
        CHECK(codes(t.say(over + "NOOP\r\n")) == (std::vector<int>{500, 250}));
        CHECK(codes(t.say("EHLO c\r\n" + huge + "MAIL FROM:<a@b>\r\n")) == (std::vector<int>{250, 500, 250}));
        CHECK(t.h.senders == std::vector<std::string>{"a@b"});
    }
    SECTION("a byte at a time") {
        Session t(c);
        CHECK(codes(t.trickle(at_limit)) == std::vector<int>{250});
        CHECK(codes(t.trickle(over + "NOOP\r\n")) == (std::vector<int>{500, 250}));
        CHECK(codes(t.trickle("EHLO c\r\n" + huge + "MAIL FROM:<a@b>\r\n")) == (std::vector<int>{250, 500, 250}));
        CHECK(t.h.senders == std::vector<std::string>{"a@b"});
    }
    SECTION("in pieces of seven") {
        Session t(c);
        std::string in = "EHLO c\r\n" + huge + "MAIL FROM:<a@b>\r\n";
        std::string out;
        for (std::size_t i = 0; i < in.size(); i += 7) out += t.say(std::string_view(in).substr(i, 7));
        CHECK(codes(out) == (std::vector<int>{250, 500, 250}));
        CHECK(t.h.senders == std::vector<std::string>{"a@b"});
    }
    SECTION("the rest of a long line is not a command, even if it looks like one") {
        Session t(c);
        std::string in = std::string(70, 'x') + "QUIT\r\nNOOP\r\n";
        CHECK(codes(t.trickle(in)) == (std::vector<int>{500, 250}));
        CHECK_FALSE(t.s.closed());
    }
}

TEST_CASE("smtp server: pipelined commands are answered in order, in one output") {
    Session t;
    std::string out = t.say(
        "EHLO c\r\nMAIL FROM:<a@b>\r\nRCPT TO:<r1@d>\r\nRCPT TO:<r2@d>\r\nDATA\r\nhello\r\n.\r\nNOOP\r\nQUIT\r\n");
    CHECK(codes(out) == (std::vector<int>{250, 250, 250, 250, 354, 250, 250, 221}));
    CHECK(t.h.calls == (std::vector<std::string>{"ehlo c", "mail a@b", "rcpt r1@d", "rcpt r2@d", "data", "end "}));
    CHECK(t.h.content == "hello\r\n");
    CHECK(t.s.messages() == 1);
    CHECK(t.s.closed());
}

TEST_CASE("smtp server: LF alone ends a command line") {
    Session t;
    CHECK(codes(t.say("EHLO c\nMAIL FROM:<a@b>\nNOOP\r\n")) == (std::vector<int>{250, 250, 250}));
    CHECK(codes(t.say("NOOP\r\r\n")) == std::vector<int>{500});  // a CR inside the command
}

namespace {

// Runs envelope + DATA + body + QUIT through a fresh server, fed by feed.
template <class Feed>
FakeHandler run_data(const std::string& body, SmtpServerConfig cfg, Feed feed, std::string* out = nullptr) {
    FakeHandler h;
    SmtpServer s(std::move(cfg), h);
    s.greet();
    (void)s.take_output();
    std::string o;
    std::string in = std::string(envelope) + "DATA\r\n" + body + "QUIT\r\n";
    feed(s, in, o);
    if (out) *out = o;
    return h;
}

void whole(SmtpServer& s, const std::string& in, std::string& o) {
    s.feed(in);
    o += s.take_output();
}
void bytewise(SmtpServer& s, const std::string& in, std::string& o) {
    for (char c : in) {
        s.feed(std::string_view(&c, 1));
        o += s.take_output();
    }
}

} // namespace

TEST_CASE("smtp server: DATA is unstuffed and handed on exactly") {
    const std::string body = "Subject: dots\r\n\r\n..x\r\n.y\r\n...\r\nmid.dle.\r\n. \r\n\r\nlast\r\n.\r\n";
    const std::string want = "Subject: dots\r\n\r\n.x\r\ny\r\n..\r\nmid.dle.\r\n \r\n\r\nlast\r\n";
    std::string out;
    FakeHandler h = run_data(body, {}, whole, &out);
    CHECK(h.content == want);
    CHECK(h.ends == std::vector<std::string>{""});
    CHECK(codes(out) == (std::vector<int>{250, 250, 250, 354, 250, 221}));

    SECTION("a byte at a time gives the same") {
        std::string out2;
        FakeHandler h2 = run_data(body, {}, bytewise, &out2);
        CHECK(h2.content == want);
        CHECK(h2.ends == h.ends);
        CHECK(out2 == out);
    }
    SECTION("split in two at every point gives the same") {
        const std::string in = std::string(envelope) + "DATA\r\n" + body + "QUIT\r\n";
        for (std::size_t k = 0; k <= in.size(); ++k) {
            std::string o2;
            FakeHandler h2 = run_data(body, {}, [&](SmtpServer& s, const std::string& all, std::string& o) {
                s.feed(std::string_view(all).substr(0, k));
                o += s.take_output();
                s.feed(std::string_view(all).substr(k));
                o += s.take_output();
            }, &o2);
            INFO("split at " << k);
            REQUIRE(h2.content == want);
            REQUIRE(h2.ends == h.ends);
            REQUIRE(o2 == out);
        }
    }
}

TEST_CASE("smtp server: empty message, and the end only at CRLF.CRLF") {
    FakeHandler empty = run_data(".\r\n", {}, whole);
    CHECK(empty.content.empty());
    CHECK(empty.ends == std::vector<std::string>{""});

    // None of these lines is the end: the message goes on to the real terminator.
    FakeHandler h = run_data("a\r\n.x\r\n. \r\n.\t\r\nz\r\n.\r\n", {}, whole);
    CHECK(h.content == "a\r\nx\r\n \r\n\t\r\nz\r\n");
    CHECK(h.ends == std::vector<std::string>{""});
}

TEST_CASE("smtp server: DATA refused by the handler ends the transaction") {
    Session t;
    t.h.data_reply = SmtpReply(554, "5.7.1 no");
    CHECK(codes(t.say(std::string(envelope) + "DATA\r\n")) == (std::vector<int>{250, 250, 250, 554}));
    CHECK_FALSE(t.s.in_data());
    CHECK(t.h.resets == 1);
    CHECK(codes(t.say("RCPT TO:<c@d>\r\n")) == std::vector<int>{503});
}

TEST_CASE("smtp server: a message over max_message_size is refused, the next command still runs") {
    SmtpServerConfig c;
    c.max_message_size = 20;
    std::string out;
    FakeHandler h = run_data(std::string(30, 'x') + "\r\n.\r\nNOOP\r\n", c, whole, &out);
    CHECK(h.ends == std::vector<std::string>{"too big"});
    CHECK(h.content.empty());  // nothing of it was handed on
    CHECK(codes(out) == (std::vector<int>{250, 250, 250, 354, 554, 250, 221}));

    FakeHandler fits = run_data(std::string(18, 'x') + "\r\n.\r\n", c, whole);
    CHECK(fits.ends == std::vector<std::string>{""});
    CHECK(fits.content == std::string(18, 'x') + "\r\n");
}

TEST_CASE("smtp server: large messages arrive in order, in several chunks") {
    std::string body;
    for (int i = 0; i < 20000; ++i) body += "line " + std::to_string(i) + "\r\n";
    FakeHandler h = run_data(body + ".\r\n", {}, whole);
    CHECK(h.content == body);
    CHECK(h.chunks.size() > 1);
    CHECK(h.ends == std::vector<std::string>{""});
}

TEST_CASE("smtp server: SMTP smuggling, bare CR and LF never end the data") {
    const std::string smuggled = "MAIL FROM:<evil@x>\r\nRCPT TO:<v@y>\r\nDATA\r\nsmuggled\r\n.\r\n";
    const std::vector<std::string> variants = {
        "hello\n.\n",     "hello\n.\r\n",   "hello\r\n.\n", "hello\r.\r",     "hello\r.\r\n",
        "hello\r\n.\r",   ".\n",            "hello\n.\r",   "hello\r\n.\r\r\n", "hello\n\n.\n\n",
        ".\r",            "hello\r\n.\rX\n",
    };
    for (const auto& v : variants) {
        const std::string body = v + smuggled;
        for (bool trickle : {false, true}) {
            INFO("variant " << visible(v) << (trickle ? " (a byte at a time)" : ""));
            SmtpServerConfig rej;
            rej.bare_newline = BareNewline::reject;
            std::string out;
            FakeHandler h = trickle ? run_data(body, rej, bytewise, &out) : run_data(body, rej, whole, &out);
            CHECK(h.senders == std::vector<std::string>{"a@b.example"});
            CHECK(h.rcpts == std::vector<std::string>{"c@d.example"});
            CHECK(h.ends == std::vector<std::string>{"bare CR or LF"});
            CHECK(codes(out) == (std::vector<int>{250, 250, 250, 354, 554, 221}));
            CHECK(h.content.find("smuggled") != std::string::npos);

            SmtpServerConfig norm;
            norm.bare_newline = BareNewline::normalise;
            FakeHandler n = trickle ? run_data(body, norm, bytewise, &out) : run_data(body, norm, whole, &out);
            CHECK(n.senders == std::vector<std::string>{"a@b.example"});
            CHECK(n.ends == std::vector<std::string>{""});
            CHECK(crlf_only(n.content));
            CHECK(n.content.find("MAIL FROM:<evil@x>") != std::string::npos);
            CHECK(codes(out) == (std::vector<int>{250, 250, 250, 354, 250, 221}));
        }
    }
}

TEST_CASE("smtp server: bare newlines normalised to CRLF") {
    SmtpServerConfig norm;
    norm.bare_newline = BareNewline::normalise;
    FakeHandler n = run_data("a\nb\rc\r\r\nd\r\n.\r\n", norm, whole);
    CHECK(n.content == "a\r\nb\r\nc\r\n\r\nd\r\n");
    CHECK(n.ends == std::vector<std::string>{""});
    SmtpServerConfig rej;
    FakeHandler r = run_data("a\nb\r\n.\r\n", rej, whole);
    CHECK(r.ends == std::vector<std::string>{"bare CR or LF"});
}

TEST_CASE("smtp server: STARTTLS discards what was pipelined after it") {
    Session t(tls_auth_config());
    CHECK(codes(t.say("EHLO c\r\n")) == std::vector<int>{250});
    std::string o = t.say("STARTTLS\r\nMAIL FROM:<evil@x>\r\nRCPT TO:<v@y>\r\nNOOP\r\nMAIL FR");
    CHECK(o == "220 2.0.0 Ready to start TLS\r\n");
    CHECK(t.s.starttls_pending());
    CHECK(t.say("NOOP\r\n").empty());  // still before the handshake
    CHECK(t.h.senders.empty());
    CHECK(t.h.rcpts.empty());
    t.s.tls_started();
    CHECK_FALSE(t.s.starttls_pending());
    CHECK(t.s.tls_active());
    // The partial "MAIL FR" is gone: this NOOP is a command of its own.
    CHECK(codes(t.say("NOOP\r\n")) == std::vector<int>{250});
    CHECK(codes(t.say("MAIL FROM:<a@b>\r\n")) == std::vector<int>{503});  // EHLO again first
    std::string e = t.say("EHLO c\r\n");
    CHECK(e.find("STARTTLS") == std::string::npos);
    CHECK(codes(t.say("STARTTLS\r\n")) == std::vector<int>{502});
    CHECK(codes(t.say("MAIL FROM:<a@b>\r\n")) == std::vector<int>{250});
    CHECK(t.h.senders == std::vector<std::string>{"a@b"});
}

TEST_CASE("smtp server: STARTTLS refused when not offered, or with an argument") {
    Session plain_session;
    CHECK(codes(plain_session.say("EHLO c\r\nSTARTTLS\r\n")) == (std::vector<int>{250, 502}));
    CHECK_FALSE(plain_session.s.starttls_pending());
    Session t(tls_auth_config());
    CHECK(codes(t.say("EHLO c\r\nSTARTTLS now\r\n")) == (std::vector<int>{250, 501}));
    CHECK_FALSE(t.s.starttls_pending());
}

TEST_CASE("smtp server: STARTTLS drops the transaction and an earlier AUTH") {
    SmtpServerConfig c = tls_auth_config();
    c.auth_without_tls = true;
    Session t(c);
    CHECK(codes(t.say("EHLO c\r\nAUTH PLAIN " + plain("", "alice", "secret") + "\r\n")) == (std::vector<int>{250, 235}));
    CHECK(t.s.authenticated());
    (void)t.say("MAIL FROM:<a@b>\r\n");
    CHECK(codes(t.say("STARTTLS\r\n")) == std::vector<int>{220});
    CHECK(t.h.resets == 1);
    t.s.tls_started();
    // RFC 3207 §4.2: everything learnt from the client before the handshake is forgotten.
    CHECK_FALSE(t.s.authenticated());
    CHECK(t.s.auth_user().empty());
    CHECK(t.say("EHLO c\r\n").find("AUTH PLAIN LOGIN") != std::string::npos);
}

namespace {
// A session over TLS, after EHLO, ready for AUTH.
struct AuthSession : Session {
    explicit AuthSession(SmtpServerConfig c = tls_auth_config()) : Session(std::move(c)) {
        (void)say("EHLO c\r\nSTARTTLS\r\n");
        s.tls_started();
        (void)say("EHLO c\r\n");
    }
};
} // namespace

TEST_CASE("smtp server: AUTH PLAIN") {
    SECTION("with an initial response") {
        AuthSession t;
        CHECK(t.say("AUTH PLAIN " + plain("", "alice", "secret") + "\r\n") == "235 2.7.0 authentication successful\r\n");
        CHECK(t.s.authenticated());
        CHECK(t.s.auth_user() == "alice");
        REQUIRE(t.h.auths.size() == 1);
        CHECK(t.h.auths[0] == std::make_tuple(std::string("PLAIN"), std::string("alice"), std::string("secret")));
        CHECK(t.say("EHLO c\r\n").find("AUTH") == std::string::npos);
        CHECK(codes(t.say("AUTH PLAIN " + plain("", "alice", "secret") + "\r\n")) == std::vector<int>{503});
    }
    SECTION("through a 334 continuation, mechanism in lower case") {
        AuthSession t;
        CHECK(t.say("auth plain\r\n") == "334 \r\n");
        CHECK(codes(t.say(plain("alice", "alice", "secret") + "\r\n")) == std::vector<int>{235});
        CHECK(t.s.auth_user() == "alice");
    }
    SECTION("wrong credentials") {
        AuthSession t;
        CHECK(codes(t.say("AUTH PLAIN " + plain("", "alice", "wrong") + "\r\n")) == std::vector<int>{535});
        CHECK_FALSE(t.s.authenticated());
        CHECK(t.s.auth_user().empty());
        CHECK(codes(t.say("AUTH PLAIN " + plain("bob", "alice", "secret") + "\r\n")) == std::vector<int>{535});
        CHECK(t.h.auths.size() == 1);  // a foreign authzid is refused before the handler is asked
        CHECK_FALSE(t.s.authenticated());
    }
    SECTION("bad base64, a malformed response, cancel") {
        AuthSession t;
        CHECK(codes(t.say("AUTH PLAIN !!!!\r\n")) == std::vector<int>{501});
        CHECK(codes(t.say("AUTH PLAIN\r\n!!!!\r\n")) == (std::vector<int>{334, 501}));
        CHECK(codes(t.say("AUTH PLAIN " + base64_encode("no nuls") + "\r\n")) == std::vector<int>{501});
        CHECK(codes(t.say("AUTH PLAIN\r\n*\r\n")) == (std::vector<int>{334, 501}));
        CHECK(codes(t.say("AUTH CRAM-MD5\r\n")) == std::vector<int>{504});
        CHECK(t.h.auths.empty());
        CHECK(codes(t.say("NOOP\r\n")) == std::vector<int>{250});  // back in command mode
        CHECK_FALSE(t.s.authenticated());
    }
}

TEST_CASE("smtp server: AUTH refused by the handler before any credentials (a client locked out)") {
    AuthSession t;
    t.h.auth_begin = SmtpReply(454, "4.7.0 too many failed logins from your address, try again later");
    CHECK(t.say("AUTH PLAIN " + plain("", "alice", "secret") + "\r\n") ==
          "454 4.7.0 too many failed logins from your address, try again later\r\n");
    CHECK(codes(t.say("AUTH LOGIN\r\n")) == std::vector<int>{454});  // no 334: no password is read
    CHECK(codes(t.say("AUTH PLAIN\r\n")) == std::vector<int>{454});
    CHECK(t.h.auths.empty());
    CHECK(t.h.auth_begins == 3);
    CHECK_FALSE(t.s.authenticated());
    CHECK(codes(t.say("NOOP\r\n")) == std::vector<int>{250});  // still in command mode
    t.h.auth_begin.reset();
    CHECK(codes(t.say("AUTH PLAIN " + plain("", "alice", "secret") + "\r\n")) == std::vector<int>{235});
}

TEST_CASE("smtp server: AUTH LOGIN") {
    SECTION("two steps") {
        AuthSession t;
        CHECK(t.say("AUTH LOGIN\r\n") == "334 VXNlcm5hbWU6\r\n");
        CHECK(t.say(base64_encode("alice") + "\r\n") == "334 UGFzc3dvcmQ6\r\n");
        CHECK(codes(t.say(base64_encode("secret") + "\r\n")) == std::vector<int>{235});
        CHECK(t.s.authenticated());
        CHECK(t.s.auth_user() == "alice");
        REQUIRE(t.h.auths.size() == 1);
        CHECK(std::get<0>(t.h.auths[0]) == "LOGIN");
    }
    SECTION("with the user name as initial response") {
        AuthSession t;
        CHECK(t.say("AUTH LOGIN " + base64_encode("alice") + "\r\n") == "334 UGFzc3dvcmQ6\r\n");
        CHECK(codes(t.say(base64_encode("secret") + "\r\n")) == std::vector<int>{235});
        CHECK(t.s.auth_user() == "alice");
    }
    SECTION("wrong password") {
        AuthSession t;
        CHECK(codes(t.say("AUTH LOGIN\r\n" + base64_encode("alice") + "\r\n" + base64_encode("nope") + "\r\n")) ==
              (std::vector<int>{334, 334, 535}));
        CHECK_FALSE(t.s.authenticated());
        CHECK(t.s.auth_user().empty());
    }
    SECTION("cancel and bad base64 at either step") {
        AuthSession t;
        CHECK(codes(t.say("AUTH LOGIN\r\n*\r\n")) == (std::vector<int>{334, 501}));
        CHECK(codes(t.say("AUTH LOGIN\r\n" + base64_encode("alice") + "\r\n*\r\n")) == (std::vector<int>{334, 334, 501}));
        CHECK(codes(t.say("AUTH LOGIN\r\n%%%\r\n")) == (std::vector<int>{334, 501}));
        CHECK(codes(t.say("AUTH LOGIN\r\n" + base64_encode("alice") + "\r\n%%%\r\n")) == (std::vector<int>{334, 334, 501}));
        CHECK(codes(t.say("AUTH LOGIN %%%\r\n")) == std::vector<int>{501});
        CHECK(t.h.auths.empty());
        CHECK(codes(t.say("NOOP\r\n")) == std::vector<int>{250});
    }
}

TEST_CASE("smtp server: AUTH refused when it is not offered") {
    SECTION("not over TLS") {
        Session t(tls_auth_config());
        int c = codes(t.say("EHLO c\r\nAUTH PLAIN " + plain("", "alice", "secret") + "\r\n")).at(1);
        CHECK((c == 538 || c == 502));
        CHECK(t.h.auths.empty());
        CHECK_FALSE(t.s.authenticated());
    }
    SECTION("not configured") {
        Session t;
        CHECK(codes(t.say("EHLO c\r\nAUTH LOGIN\r\n")) == (std::vector<int>{250, 502}));
    }
    SECTION("before EHLO, and inside a transaction") {
        SmtpServerConfig c = tls_auth_config();
        c.auth_without_tls = true;
        Session t(c);
        CHECK(codes(t.say("AUTH LOGIN\r\n")) == std::vector<int>{503});
        CHECK(codes(t.say("EHLO c\r\nMAIL FROM:<a@b>\r\nAUTH LOGIN\r\n")) == (std::vector<int>{250, 250, 503}));
    }
}

TEST_CASE("smtp server: require_auth: MAIL needs AUTH first") {
    SmtpServerConfig c = tls_auth_config();
    c.require_auth = true;
    AuthSession t(c);
    CHECK(codes(t.say("MAIL FROM:<alice@b>\r\n")) == std::vector<int>{530});
    CHECK(t.h.senders.empty());
    CHECK(codes(t.say("AUTH PLAIN " + plain("", "alice", "secret") + "\r\n")) == std::vector<int>{235});
    CHECK(codes(t.say("MAIL FROM:<alice@b>\r\n")) == std::vector<int>{250});
}

TEST_CASE("smtp server: timeouts, shutdown, early talkers, end of input") {
    SECTION("timeout") {
        Session t;
        (void)t.say(std::string(envelope) + "DATA\r\npart of it");
        REQUIRE(t.s.in_data());
        t.s.timeout("idle timeout");
        std::string o = t.s.take_output();
        CHECK(o.rfind("421 4.4.2 ", 0) == 0);
        CHECK(o.find("idle timeout") != std::string::npos);
        CHECK(codes(o) == std::vector<int>{421});
        CHECK(t.s.closed());
        CHECK(t.h.resets == 1);
        CHECK(t.h.ends.empty());
        t.s.timeout("again");
        CHECK(t.s.take_output().empty());
        CHECK(t.say("NOOP\r\n").empty());
    }
    SECTION("shutdown") {
        Session t;
        t.s.shutdown("shutting down");
        CHECK(codes(t.s.take_output()) == std::vector<int>{421});
        CHECK(t.s.closed());
    }
    SECTION("early talker") {
        FakeHandler h;
        SmtpServer s({}, h);
        s.refuse_early_talker();
        std::string o = s.take_output();
        CHECK(o.rfind("554 5.5.0 ", 0) == 0);
        CHECK(codes(o) == std::vector<int>{554});
        CHECK(s.closed());
        CHECK(h.errors.size() == 1);
        s.feed("EHLO c\r\n");
        CHECK(s.take_output().empty());
        CHECK(h.calls.empty());
    }
    SECTION("end of input inside a transaction") {
        Session t;
        (void)t.say(envelope);
        t.s.end_of_input();
        CHECK(t.s.closed());
        CHECK(t.h.resets == 1);
        CHECK(t.s.take_output().empty());
    }
}

TEST_CASE("smtp server: max_transactions") {
    SmtpServerConfig c;
    c.max_transactions = 1;
    Session t(c);
    CHECK(codes(t.say(std::string(envelope) + "DATA\r\nx\r\n.\r\n")) == (std::vector<int>{250, 250, 250, 354, 250}));
    CHECK(codes(t.say("MAIL FROM:<a@b>\r\n")) == std::vector<int>{421});
    CHECK(t.s.closed());
}

TEST_CASE("smtp server: reply wire format") {
    CHECK(SmtpReply(550, std::vector<std::string>{"a", "b"}).wire() == "550-a\r\n550 b\r\n");
    CHECK(SmtpReply(250, "2.0.0 OK").wire() == "250 2.0.0 OK\r\n");
    CHECK(SmtpReply(334, "").wire() == "334 \r\n");
    CHECK(SmtpReply(250, std::vector<std::string>{}).wire() == "250\r\n");
    CHECK(SmtpReply(550, "bad\r\n250 ok\x01\x7f").wire() == "550 bad??250 ok??\r\n");
    CHECK(SmtpReply(550, std::vector<std::string>{"one\n", "\rtwo"}).wire() == "550-one?\r\n550 ?two\r\n");
    CHECK(SmtpReply(250, std::string(2000, 'x')).wire().size() <= 512);
    CHECK_FALSE(SmtpReply(450, "x").positive());
    CHECK(SmtpReply(354, "x").positive());
}

TEST_CASE("smtp server: handler text and the host name cannot break the reply framing") {
    SmtpServerConfig c;
    c.hostname = "mx\r\n250 evil";
    FakeHandler h;
    SmtpServer s(c, h);
    s.greet();
    std::string g = s.take_output();
    CHECK(lines_of(g).size() == 1);
    CHECK(g.find('\n') == g.size() - 1);
    h.rcpt_reply = SmtpReply(550, "5.1.1 <x>\r\n250 2.1.5 ok");
    s.feed("EHLO c\r\nMAIL FROM:<a@b>\r\nRCPT TO:<x@y>\r\n");
    std::string o = s.take_output();
    for (const auto& l : lines_of(o)) {
        CHECK(l.find('\r') == std::string::npos);
        CHECK(l.find('\n') == std::string::npos);
    }
    CHECK(codes(o).back() == 550);
    CHECK(has_line(o, "550 5.1.1 <x>??250 2.1.5 ok"));
}
