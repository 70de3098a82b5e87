// The proxy's policy, driven in-process: SmtpServer + ProxySession over a real
// store, delivering into a Maildir (no sockets).
#include "libmail/app/context.hpp"
#include "libmail/base/config.hpp"
#include "libmail/daemon/proxy.hpp"
#include "libmail/policy/batv.hpp"
#include "libmail/base/clock.hpp"
#include "libmail/policy/hashcash.hpp"
#include "libmail/policy/token.hpp"
#include "store_rig.hpp"
#include "tmpdir.hpp"

#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <thread>

using namespace mail;

namespace {

struct Rig : StoreRig {
    ProxyPolicy policy;

    Rig() : StoreRig("msmtp-proxy") {
        policy.hostname = policy.authserv_id = "mx.ours.example";
        policy.incoming.kind = DeliveryTarget::Kind::maildir;
        policy.incoming.dir = d.file("Maildir");
        policy.smtp.hostname = "mx.ours.example";
    }

    std::size_t delivered() const {
        std::string dir = d.file("Maildir/new");
        if (!std::filesystem::exists(dir)) return 0;
        return static_cast<std::size_t>(std::distance(std::filesystem::directory_iterator(dir), {}));
    }
    /// The message delivered since the last call (files in new/ have no defined order).
    std::string last_message() {
        std::string text;
        for (const auto& f : std::filesystem::directory_iterator(d.file("Maildir/new"))) {
            if (!seen.insert(f.path().string()).second) continue;
            std::ifstream in(f.path());
            std::stringstream ss;
            ss << in.rdbuf();
            text = ss.str();
        }
        return text;
    }
    std::set<std::string> seen;
};

// One session: feeds script, returns everything the server said.
std::string talk(Rig& r, const std::string& script) {
    ProxySession ps(r.policy, *r.ctx, *r.store, "192.0.2.7:4711");
    SmtpServer srv(r.policy.smtp, ps);
    ps.attach(&srv);
    srv.greet();
    srv.feed(script);
    return srv.take_output();
}

std::string txn(const std::string& from, const std::string& to, const std::string& body = "Subject: hi\r\n\r\nhello\r\n") {
    return "EHLO client.example\r\nMAIL FROM:<" + from + ">\r\nRCPT TO:<" + to + ">\r\nDATA\r\n" + body + ".\r\nQUIT\r\n";
}

std::string token_in(const std::string& out) {
    auto a = out.find("this address: <");
    if (a == std::string::npos) return "";
    a += 15;
    return out.substr(a, out.find('>', a) - a);
}

} // namespace

TEST_CASE("proxy: a whitelisted sender is delivered with Received and verdict fields") {
    Rig r;
    std::string out = talk(r, txn("friend@good.example", "bob@ours.example",
                                  "X-Mailstamp-Class: G (forged)\r\nSubject: hi\r\n\r\nhello\r\n"));
    CHECK(out.find("250 2.0.0 OK: delivered") != std::string::npos);
    REQUIRE(r.delivered() == 1);
    std::string m = r.last_message();
    CHECK(m.rfind("Return-Path: <friend@good.example>\nX-Original-To: bob@ours.example\nReceived: from client.example (192.0.2.7) by mx.ours.example", 0) == 0);
    CHECK(m.find("X-Mailstamp-Class: W (Whitelist: sender friend@good.example is whitelisted) by mx.ours.example\n") != std::string::npos);
    CHECK(m.find("forged") == std::string::npos);
    CHECK(m.find("Subject: [W] hi\n\nhello\n") != std::string::npos);
}

TEST_CASE("proxy: unknown sender refused with a one-time token that works once, after acceptance") {
    Rig r;
    std::string out = talk(r, txn("stranger@bad.example", "bob@ours.example"));
    CHECK(out.find("550-5.7.1 <bob@ours.example> takes mail only from senders it knows.") != std::string::npos);
    CHECK(out.find("554 5.5.1 no valid recipients") != std::string::npos);  // DATA after the refusal
    CHECK(r.delivered() == 0);
    std::string tok = token_in(out);
    REQUIRE(!tok.empty());
    auto t = parse_token(tok, '+');
    REQUIRE(t);
    CHECK((t->flags & token_flag::once));
    CHECK(!(t->flags & token_flag::sender));
    CHECK(t->recipient() == "bob@ours.example");

    // Accepted at RCPT but not consumed when the message is not taken (downstream fails).
    r.policy.incoming.dir = "/proc/no-such-dir/Maildir";
    out = talk(r, txn("other@bad.example", tok));
    CHECK(out.find("451 4.3.0") != std::string::npos);
    r.policy.incoming.dir = r.d.file("Maildir");
    out = talk(r, txn("other@bad.example", tok));
    CHECK(out.find("250 2.0.0 OK: delivered") != std::string::npos);
    CHECK(r.last_message().find("X-Original-To: bob@ours.example\n") != std::string::npos);
    out = talk(r, txn("other@bad.example", tok));
    CHECK(out.find("550-5.7.1") != std::string::npos);
    CHECK(token_in(out) != tok);
    CHECK(r.delivered() == 1);
}

TEST_CASE("proxy: relay denied outside the protected domains and for routing forms") {
    Rig r;
    for (const char* rc : {"someone@elsewhere.example", "u%x.example@ours.example", "x.example!u@ours.example",
                           "\"u@x.example\"@ours.example", "u@[192.0.2.1]"}) {
        std::string out = talk(r, txn("friend@good.example", rc));
        INFO(rc);
        CHECK(out.find("554 5.7.1") != std::string::npos);
        CHECK(out.find("354") == std::string::npos);
    }
    CHECK(r.delivered() == 0);
}

TEST_CASE("proxy: mark, forward and postage modes") {
    Rig r;
    r.policy.unknown = UnknownMode::mark;
    std::string out = talk(r, txn("stranger@bad.example", "bob@ours.example"));
    CHECK(out.find("250 2.0.0 OK") != std::string::npos);
    CHECK(r.last_message().find("Subject: [B] hi") != std::string::npos);

    r.policy.unknown = UnknownMode::forward;
    r.policy.forward_to = "quarantine@ours.example";
    out = talk(r, txn("stranger@bad.example", "bob@ours.example"));
    CHECK(r.last_message().find("X-Original-To: quarantine@ours.example\n") != std::string::npos);

    r.policy.unknown = UnknownMode::postage;
    out = talk(r, txn("stranger@bad.example", "bob@ours.example"));
    CHECK(out.find("550-5.7.1 <bob@ours.example>") != std::string::npos);
    CHECK(out.find("no valid postage") != std::string::npos);
    CHECK(r.delivered() == 2);
}

TEST_CASE("proxy: postage mode mixing rule gives 452 4.5.3") {
    Rig r;
    r.policy.unknown = UnknownMode::postage;
    WlEntry e;
    e.kind = WlKind::recipient;
    e.value = "postmaster@ours.example";
    REQUIRE(r.store->wl_insert(e));
    std::string out = talk(r, "EHLO c\r\nMAIL FROM:<stranger@bad.example>\r\nRCPT TO:<bob@ours.example>\r\n"
                              "RCPT TO:<postmaster@ours.example>\r\nQUIT\r\n");
    CHECK(out.find("250 2.1.5 OK\r\n452 4.5.3") != std::string::npos);
}

TEST_CASE("proxy: bounces are Information; with BATV only to signed addresses") {
    Rig r;
    std::string out = talk(r, txn("", "bob@ours.example"));
    CHECK(out.find("250 2.0.0 OK") != std::string::npos);
    CHECK(r.last_message().find("X-Mailstamp-Class: I (Information: non-delivery notice)") != std::string::npos);
    r.policy.batv = true;
    out = talk(r, txn("", "bob@ours.example"));
    CHECK(out.find("550 5.7.1 <bob@ours.example>: bounce to an address we never sent from") != std::string::npos);
    auto key = current_batv_secret(*r.store, now());
    REQUIRE(key);
    std::string signed_addr = batv_sign("bob@ours.example", *key, now());
    out = talk(r, txn("", signed_addr));
    CHECK(out.find("250 2.0.0 OK") != std::string::npos);
    CHECK(r.last_message().find("X-Original-To: bob@ours.example\n") != std::string::npos);
    CHECK(r.delivered() == 2);
}

TEST_CASE("proxy: bare LF in DATA refused, nothing delivered") {
    Rig r;
    std::string out = talk(r, "EHLO c\r\nMAIL FROM:<friend@good.example>\r\nRCPT TO:<bob@ours.example>\r\nDATA\r\n"
                              "Subject: x\r\n\r\nline\n.\nMAIL FROM:<friend@good.example>\r\n.\r\nQUIT\r\n");
    CHECK(out.find("550 5.6.0") != std::string::npos);
    CHECK(r.delivered() == 0);
}

TEST_CASE("proxy: postmaster in a protected domain takes mail from anyone (RFC 5321 4.5.1)") {
    Rig r;
    std::string out = talk(r, txn("stranger@bad.example", "Postmaster@ours.example"));
    CHECK(out.find("250 2.0.0 OK: delivered") != std::string::npos);
    CHECK(r.last_message().find("postmaster takes all mail") != std::string::npos);
}

TEST_CASE("proxy: a one-time token named at RCPT by one session is refused to another until that one ends") {
    Rig r;
    auto tok = issue_token(*r.store, TokenRequest{"bob@ours.example", token_flag::once, now() + 3600, "", '+'}, now());
    REQUIRE(tok);
    auto store2 = r.ctx->open_store();
    REQUIRE(store2);
    {
        ProxySession a(r.policy, *r.ctx, *r.store, "192.0.2.7:4711");
        SmtpServer sa(r.policy.smtp, a);
        a.attach(&sa);
        sa.greet();
        sa.feed("EHLO a.example\r\nMAIL FROM:<a@bad.example>\r\nRCPT TO:<" + *tok + ">\r\nDATA\r\nSubject: a\r\n\r\na\r\n");
        CHECK(sa.take_output().find("250 2.1.5 OK") != std::string::npos);
        // Meanwhile another session (its own store connection) races for the same token.
        ProxySession b(r.policy, *r.ctx, **store2, "192.0.2.8:4711");
        SmtpServer sb(r.policy.smtp, b);
        b.attach(&sb);
        sb.greet();
        sb.feed(txn("b@bad.example", *tok));
        std::string ob = sb.take_output();
        CHECK(ob.find("550-5.7.1 <bob@ours.example> takes mail only from senders it knows.") != std::string::npos);
        CHECK(token_in(ob) != *tok);
        CHECK(r.delivered() == 0);
        sa.feed(".\r\nQUIT\r\n");
        CHECK(sa.take_output().find("250 2.0.0 OK: delivered") != std::string::npos);
    }
    CHECK(r.delivered() == 1);
    CHECK(check_token(*r.store, *tok, "", false, '+', now())->check == TokenCheck::used);
    // A session that reserves and leaves without DATA gives the reservation back.
    auto tok2 = issue_token(*r.store, TokenRequest{"bob@ours.example", token_flag::once, now() + 3600, "", '+'}, now());
    talk(r, "EHLO c\r\nMAIL FROM:<a@bad.example>\r\nRCPT TO:<" + *tok2 + ">\r\nQUIT\r\n");
    CHECK(talk(r, txn("b@bad.example", *tok2)).find("250 2.0.0 OK: delivered") != std::string::npos);
    // So does RSET, and a new MAIL.
    auto tok3 = issue_token(*r.store, TokenRequest{"bob@ours.example", token_flag::once, now() + 3600, "", '+'}, now());
    std::string out = talk(r, "EHLO c\r\nMAIL FROM:<a@bad.example>\r\nRCPT TO:<" + *tok3 + ">\r\nRSET\r\n" +
                                  "MAIL FROM:<a@bad.example>\r\nRCPT TO:<" + *tok3 + ">\r\nMAIL FROM:<c@bad.example>\r\n" +
                                  "RCPT TO:<" + *tok3 + ">\r\nDATA\r\nSubject: c\r\n\r\nc\r\n.\r\nQUIT\r\n");
    CHECK(out.find("250 2.0.0 OK: delivered") != std::string::npos);
    CHECK(r.delivered() == 3);
}

TEST_CASE("proxy: token addresses per client network and per sender are limited a day") {
    Rig r;
    r.policy.token_limit_network = 4;  // requests are counted, the ones a sender limit refuses too
    r.policy.token_limit_sender = 2;
    int with = 0;
    for (int i = 0; i < 2; ++i) with += !token_in(talk(r, txn("same@bad.example", "bob@ours.example"))).empty();
    CHECK(with == 2);
    std::string out = talk(r, txn("same@bad.example", "bob@ours.example"));
    CHECK(out.find("550-5.7.1 <bob@ours.example> takes mail only from senders it knows.") != std::string::npos);
    CHECK(out.find("no more token addresses for you today") != std::string::npos);
    CHECK(token_in(out).empty());
    // The network's fourth request: another sender still gets one; its fifth gets none.
    CHECK(!token_in(talk(r, txn("other@bad.example", "bob@ours.example"))).empty());
    CHECK(token_in(talk(r, txn("third@bad.example", "bob@ours.example"))).empty());
    CHECK(r.delivered() == 0);
}

TEST_CASE("proxy: --unknown token-postage names the bits and takes the resend only with a stamp for the token") {
    Rig r;
    r.policy.unknown = UnknownMode::token_postage;
    r.policy.postage.min_bits = 8;
    std::string out = talk(r, txn("stranger@bad.example", "bob@ours.example"));
    CHECK(out.find("with a hashcash stamp of 8 bits for that address") != std::string::npos);
    std::string tok = token_in(out);
    REQUIRE(!tok.empty());
    CHECK((parse_token(tok, '+')->flags & token_flag::postage));
    out = talk(r, txn("stranger@bad.example", tok));
    CHECK(out.find("550-5.7.1 <" + tok + "> takes a resend only with a hashcash stamp of 8 bits") != std::string::npos);
    auto stamp = mint_hashcash(tok, 8, now(), 1);
    REQUIRE(stamp);
    out = talk(r, txn("stranger@bad.example", tok, "X-Hashcash: " + *stamp + "\r\nSubject: hi\r\n\r\nhello\r\n"));
    CHECK(out.find("250 2.0.0 OK: delivered") != std::string::npos);
    CHECK(r.delivered() == 1);
    // Not mixed with other recipients in one transaction.
    auto tok2 = token_in(talk(r, txn("stranger@bad.example", "carol@ours.example")));
    out = talk(r, "EHLO c\r\nMAIL FROM:<stranger@bad.example>\r\nRCPT TO:<postmaster@ours.example>\r\nRCPT TO:<" + tok2 +
                      ">\r\nQUIT\r\n");
    CHECK(out.find("250 2.1.5 OK\r\n452 4.5.3") != std::string::npos);
}

TEST_CASE("proxy: whitelist hits reach the store within the flush interval, and the rest when the flusher stops") {
    Rig r;
    auto e = r.store->wl_lookup({"friend@good.example"}, {""});
    REQUIRE(e);
    REQUIRE(e->size() == 1);
    std::int64_t id = e->front().id;
    auto hits = [&] {
        auto l = r.store->wl_lookup({"friend@good.example"}, {""});
        return l && !l->empty() ? l->front().hits : -1;
    };
    auto batch = std::make_shared<HitBatch>();
    StorePool pool(*r.ctx);
    {
        HitFlusher f(batch, pool, std::chrono::milliseconds(20));
        batch->add(id, 100);
        batch->add(id, 101);
        for (int i = 0; i < 500 && hits() < 2; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
        CHECK(hits() == 2);
    }
    {
        HitFlusher f(batch, pool, std::chrono::hours(1));
        batch->add(id, 102);
        f.stop();
        CHECK(hits() == 3);
        CHECK(batch->empty());
    }
}
