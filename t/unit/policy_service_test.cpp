// The Postfix policy service (mmilter --policy): the request reader and its bounds, the action text, and the
// session over a real store and a pipe (no MTA).
#include "libmail/app/context.hpp"
#include "libmail/daemon/policy_service.hpp"
#include "libmail/io/smtp_io.hpp"
#include "libmail/store/store.hpp"
#include "store_rig.hpp"
#include "tmpdir.hpp"

#include <catch2/catch.hpp>

#include <thread>
#include <unistd.h>

using namespace mail;

namespace {

Result<PolicyRequest> read_all(PolicyReader& r, const std::vector<std::string>& lines) {
    for (const auto& l : lines) {
        auto x = r.line(l);
        if (!x) return x.error();
        if (*x) return r.take();
    }
    return Error{ErrorKind::software, "no end of request"};
}

struct Rig : StoreRig {
    PolicyConfig cfg;

    Rig() : StoreRig("mmilter") {
        cfg.gate.refuse_unknown = true;
        cfg.spf = false;
    }
};

PolicyRequest rcpt(const std::string& instance, const std::string& sender, const std::string& to) {
    PolicyRequest r;
    r.attributes = {{"request", "smtpd_access_policy"}, {"protocol_state", "RCPT"}, {"instance", instance},
                    {"client_address", "192.0.2.1"}, {"client_port", "4000"}, {"helo_name", "client.example"},
                    {"sender", sender}, {"recipient", to}};
    return r;
}

PolicyRequest end_of_message(const std::string& instance, const std::string& sender) {
    PolicyRequest r = rcpt(instance, sender, "");
    r.attributes[1].second = "END-OF-MESSAGE";
    return r;
}

std::string token_in(const std::string& action) {
    auto a = action.find("this address: <");
    if (a == std::string::npos) return {};
    a += 15;
    return action.substr(a, action.find('>', a) - a);
}

} // namespace

TEST_CASE("policy reader: name=value lines, an empty line ends a request", "[policy]") {
    PolicyLimits lim;
    PolicyReader r(lim);
    auto q = read_all(r, {"request=smtpd_access_policy", "sender=a@b.example", "ccert_subject=x=y", "sender=", ""});
    REQUIRE(q);
    CHECK(q->get("request") == "smtpd_access_policy");
    CHECK(q->get("ccert_subject") == "x=y");  // the value runs from the first '='
    CHECK(q->get("sender").empty());          // given twice: the last counts
    CHECK(q->has("sender"));
    CHECK_FALSE(q->has("recipient"));
    CHECK(r.idle());
    auto q2 = read_all(r, {"request=smtpd_access_policy", ""});
    REQUIRE(q2);
    CHECK(q2->attributes.size() == 1);
}

TEST_CASE("policy reader: malformed lines are errors of kind data", "[policy]") {
    PolicyLimits lim;
    for (const std::string& bad : std::vector<std::string>{"no equals sign", "=value", std::string("a=b\0c", 5), "a=b\x1b"}) {
        PolicyReader r(lim);
        auto x = r.line(bad);
        REQUIRE_FALSE(x);
        CHECK(x.error().kind == ErrorKind::data);
    }
    PolicyReader r(lim);
    auto x = r.line("");
    REQUIRE_FALSE(x);
    CHECK(x.error().text.find("empty request") != std::string::npos);
}

TEST_CASE("policy reader: the bounds on a line, the attributes and a request", "[policy]") {
    PolicyLimits lim;
    {
        PolicyReader r(lim);
        CHECK(r.line("a=" + std::string(lim.line - 2, 'x')));
        auto x = r.line("a=" + std::string(lim.line - 1, 'x'));
        REQUIRE_FALSE(x);
        CHECK(x.error().text == "line longer than 4096 octets");
    }
    {
        PolicyReader r(lim);
        for (std::size_t i = 0; i < lim.attributes; ++i) REQUIRE(r.line("n" + std::to_string(i) + "=v"));
        auto x = r.line("one=more");
        REQUIRE_FALSE(x);
        CHECK(x.error().text == "more than 100 attributes in a request");
    }
    {
        PolicyLimits small;
        small.attributes = 1000;
        PolicyReader r(small);
        Result<bool> x = false;
        std::size_t n = 0;
        while ((x = r.line("a=" + std::string(1000, 'x')))) ++n;
        CHECK(n == 65);  // 65 lines of 1003 octets fit in 64 KiB, the 66th does not
        CHECK(x.error().text == "request larger than 65536 octets");
    }
}

TEST_CASE("policy action: the core's reply lines as one", "[policy]") {
    SmtpReply r(550, std::vector<std::string>{"5.7.1 <bob@ours.example> takes mail only from senders it knows.",
                                              "5.7.1 To reach bob@ours.example, please send your message again, once,",
                                              "5.7.1 to this address: <bob+abc@ours.example>"});
    CHECK(policy_action(r) == "550 5.7.1 <bob@ours.example> takes mail only from senders it knows. To reach "
                              "bob@ours.example, please send your message again, once, to this address: "
                              "<bob+abc@ours.example>");
    CHECK(policy_action(SmtpReply(451, "4.3.0 try\r\nlater")) == "451 4.3.0 try  later");
}

TEST_CASE("policy session: whitelisted DUNNO, stranger 550 with a token, the token used once", "[policy]") {
    Rig g;
    std::string token;
    {
        PolicySession s(g.cfg, *g.ctx, g.store.get(), "local");
        CHECK(s.answer(rcpt("1", "friend@good.example", "bob@ours.example")) == "DUNNO");
        // Outside the protected domains: Postfix's relay rules decide.
        CHECK(s.answer(rcpt("1", "friend@good.example", "eve@elsewhere.example")) == "DUNNO");
        std::string a = s.answer(rcpt("2", "stranger@bad.example", "bob@ours.example"));
        CHECK(a.rfind("550 5.7.1 <bob@ours.example> takes mail only from senders it knows.", 0) == 0);
        token = token_in(a);
        REQUIRE_FALSE(token.empty());
        CHECK(s.answer(rcpt("2", "stranger@bad.example", "postmaster@ours.example")) == "DUNNO");
        // Other stages are not ours.
        PolicyRequest helo = rcpt("3", "", "");
        helo.attributes[1].second = "HELO";
        CHECK(s.answer(helo) == "DUNNO");

        // A transaction that reserves the token and ends without END-OF-MESSAGE gives it back.
        CHECK(s.answer(rcpt("4", "stranger@bad.example", token)) == "DUNNO");
        CHECK(s.answer(rcpt("5", "stranger@bad.example", token)) == "DUNNO");
        // Another connection meanwhile: the token is held by the transaction of instance 5.
        {
            PolicySession other(g.cfg, *g.ctx, g.store.get(), "local");
            CHECK(other.answer(rcpt("9", "stranger@bad.example", token)).rfind("550 ", 0) == 0);
        }
        CHECK(s.answer(end_of_message("5", "stranger@bad.example")) == "DUNNO");
        // Used: the next resend is a stranger's again.
        CHECK(s.answer(rcpt("6", "stranger@bad.example", token)).rfind("550 5.7.1", 0) == 0);
    }
}

TEST_CASE("policy session: --claim-at rcpt uses the token at RCPT", "[policy]") {
    Rig g;
    g.cfg.claim_at_rcpt = true;
    PolicySession s(g.cfg, *g.ctx, g.store.get(), "local");
    std::string token = token_in(s.answer(rcpt("1", "stranger@bad.example", "bob@ours.example")));
    REQUIRE_FALSE(token.empty());
    CHECK(s.answer(rcpt("2", "stranger@bad.example", token)) == "DUNNO");
    CHECK(s.answer(rcpt("3", "stranger@bad.example", token)).rfind("550 ", 0) == 0);
}

TEST_CASE("policy session: no store, every decision a 451; other stages DUNNO", "[policy]") {
    Rig g;
    PolicySession s(g.cfg, *g.ctx, nullptr, "local");
    CHECK(s.answer(rcpt("1", "friend@good.example", "bob@ours.example")).rfind("451 4.3.0", 0) == 0);
    PolicyRequest connect = rcpt("1", "", "");
    connect.attributes[1].second = "CONNECT";
    CHECK(s.answer(connect) == "DUNNO");
}

TEST_CASE("policy connection: requests on a pipe answered in order; a broken bound ends it", "[policy]") {
    Rig g;
    auto run = [&](const std::string& input, std::string& output) {
        int in[2], out[2];
        REQUIRE(::pipe(in) == 0);
        REQUIRE(::pipe(out) == 0);
        std::thread writer([&] {
            (void)!::write(in[1], input.data(), input.size());
            ::close(in[1]);
        });
        Result<void> r;
        {
            Conn conn(in[0], out[1], true);
            PolicySession s(g.cfg, *g.ctx, g.store.get(), "local");
            r = run_policy_session(conn, s, g.cfg.limits, nullptr);
        }
        writer.join();
        char buf[8192];
        ssize_t n;
        while ((n = ::read(out[0], buf, sizeof buf)) > 0) output.append(buf, static_cast<std::size_t>(n));
        ::close(out[0]);
        return r;
    };
    std::string req = "request=smtpd_access_policy\nprotocol_state=RCPT\ninstance=1\nsender=friend@good.example\n"
                      "recipient=bob@ours.example\nclient_address=192.0.2.1\n\n";
    std::string out;
    CHECK(run(req + req, out));
    CHECK(out == "action=DUNNO\n\naction=DUNNO\n\n");

    out.clear();
    auto r = run(req + "sender=" + std::string(5000, 'x') + "\n\n", out);
    REQUIRE_FALSE(r);
    CHECK(r.error().kind == ErrorKind::data);
    CHECK(r.error().text == "line longer than 4096 octets");
    CHECK(out == "action=DUNNO\n\n");

    out.clear();
    r = run("request=smtpd_access_policy\nsender=a@b.example", out);
    REQUIRE_FALSE(r);
    CHECK(r.error().text == "connection closed inside a request");

    out.clear();
    r = run("request=junk\n\n", out);
    REQUIRE_FALSE(r);
    CHECK(r.error().text.find("not a policy request") != std::string::npos);
    CHECK(out.empty());
}
