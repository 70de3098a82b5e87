#include "libmail/policy/hashcash.hpp"
#include "libmail/mail/message.hpp"
#include "libmail/policy/postage.hpp"
#include "libmail/policy/admission_store.hpp"
#include "libmail/policy/verify.hpp"
#include "libmail/policy/whitelist.hpp"
#include "tmpdir.hpp"

#include <catch2/catch.hpp>

#include <sstream>

using namespace mail;

namespace {
struct Msg {
    std::istringstream in;
    MessageReader r;
    explicit Msg(const std::string& text) : in(text), r(in) { REQUIRE(r.read_header().ok()); }
};
std::string body_hash(const std::string& body) {
    RelaxedBodyHash h;
    h.update(body);
    return h.finish();
}
} // namespace

TEST_CASE("verify: the envelope comes from options, else Return-Path and X-Original-To, else mbox and To") {
    Msg m("From bounce@list.example Mon Jan  1 00:00:00 2026\n"
          "Return-Path: <prvs=1234abcd=Ann@Friend.example>\n"
          "X-Original-To: Bob@Ours.example\n"
          "From: Ann <ann@friend.example>\nTo: bob@ours.example, carol@other.example\nCc: dave@ours.example\n\nx\n");
    auto e = envelope_of(m.r, std::nullopt, {}, {"ours.example"});
    REQUIRE(e.ok());
    CHECK(*e->sender == "ann@friend.example");
    REQUIRE(e->rcpts == std::vector<std::string>{"bob@ours.example"});
    CHECK(e->from == std::vector<std::string>{"ann@friend.example"});

    auto o = envelope_of(m.r, std::string("<>"), {"<X@Y.example>", "x@y.example"}, {});
    REQUIRE(o.ok());
    CHECK(o->sender->empty());
    CHECK(o->rcpts == std::vector<std::string>{"x@y.example"});
    CHECK_FALSE(envelope_of(m.r, std::string("not an address"), {}, {}).ok());
    CHECK_FALSE(envelope_of(m.r, std::nullopt, {"junk"}, {}).ok());

    Msg plain("From bounce@list.example Mon Jan  1 00:00:00 2026\nFrom: a@b.example\n"
              "To: bob@ours.example, carol@other.example\nCc: dave@ours.example\n\nx\n");
    auto p = envelope_of(plain.r, std::nullopt, {}, {"ours.example"});
    CHECK(*p->sender == "bounce@list.example");
    CHECK(p->rcpts == std::vector<std::string>{"bob@ours.example", "dave@ours.example"});
    auto all = envelope_of(plain.r, std::nullopt, {}, {});
    CHECK(all->rcpts.size() == 3);

    Msg daemon("From MAILER-DAEMON Mon Jan  1 00:00:00 2026\nTo: bob@ours.example\n\nx\n");
    auto d = envelope_of(daemon.r, std::nullopt, {}, {});
    CHECK(d->sender->empty());  // Postfix's local writes <> as MAILER-DAEMON: the null sender
}

TEST_CASE("verify: forged verdict fields go, others' Authentication-Results stay") {
    Msg m("X-Mailstamp-Class: G forged\nx-mailstamp-other: y\n"
          "Authentication-Results: MX.Ours.example; x=pass\n"
          "Authentication-Results: (c (nested)) mx.ours.example 1; x=pass\n"
          "Authentication-Results: mx.ours.example.evil; x=pass\n"
          "Authentication-Results: relay.example; spf=pass\nX-Mailstampede: kept\nSubject: s\n\nx\n");
    CHECK(strip_verdicts(m.r, "mx.ours.example") == 4);
    std::ostringstream out;
    REQUIRE(m.r.write_header(out).ok());
    CHECK(out.str() == "Authentication-Results: mx.ours.example.evil; x=pass\n"
                       "Authentication-Results: relay.example; spf=pass\nX-Mailstampede: kept\nSubject: s\n\n");
}

TEST_CASE("verify: malformed Authentication-Results comments do not trip the stripper") {
    for (const char* v : {"(a\\", "(\\", "((", "(a) (b\\)", "", " ", "(x)", "(x)mx"}) {
        Msg m(std::string("Authentication-Results: ") + v + "\nSubject: s\n\nx\n");
        CHECK(strip_verdicts(m.r, "mx") == (std::string(v) == "(x)mx" ? 1u : 0u));
    }
}

TEST_CASE("verify: verdict fields name the category, reason and results") {
    Msg m("Subject: s\r\n\r\nx\r\n");
    Verdict v;
    v.category = Category::stamped;
    v.reason = "hashcash: 20 bits for b@x";
    v.hashcash = "pass";
    v.hashcash_why = "20 bits for b@x";
    add_verdict_fields(m.r, v, "mx");
    std::ostringstream out;
    REQUIRE(m.r.write_header(out).ok());
    CHECK(out.str() == "X-Mailstamp-Class: G (Stamped: hashcash: 20 bits for b@x) by mx\r\n"
                       "Authentication-Results: mx; x-mailstamp-hashcash=pass (20 bits for b@x);"
                       " x-mailstamp-postage=none\r\n"
                       "Subject: s\r\n\r\n");
    Msg odd("Subject: s\n\nx\n");
    Verdict w;
    w.postage = "fail";
    w.postage_why = "wrong recipient \"a)b\"@x (forged";
    add_verdict_fields(odd.r, w, "mx");
    CHECK(odd.r.get("Authentication-Results") ==
          "mx; x-mailstamp-hashcash=none; x-mailstamp-postage=fail (wrong recipient \"a_b\"@x _forged)");
    CHECK(parse_category("g") == Category::stamped);
    CHECK_FALSE(parse_category("Z").has_value());
}

TEST_CASE("verify: a hashcash stamp for one of our recipients passes once per message") {
    TmpDir d;
    auto store = open_store(d.file("s.db"));
    REQUIRE(store.ok());
    std::int64_t now = 1790000000;
    auto stamp = mint_hashcash("bob@ours.example", 8, now, 1);
    REQUIRE(stamp.ok());
    std::string text = "X-Hashcash: " + *stamp + "\nMessage-ID: <1@x>\nSubject: s\n\nbody\n";
    Msg m(text);
    Envelope env;
    env.rcpts = {"bob@ours.example"};
    PostagePolicy pol;
    pol.min_bits = 8;
    StoreLookups spend(**store, '+');
    Verdict v;
    REQUIRE(check_stamps(spend, m.r, env, body_hash("body\n"), pol, now, v).ok());
    CHECK(v.category == Category::stamped);
    CHECK(v.hashcash == "pass");
    CHECK(v.postage == "none");

    Verdict again;  // the same message: a retry, not a double spend
    REQUIRE(check_stamps(spend, m.r, env, body_hash("body\r\n"), pol, now, again).ok());
    CHECK(again.category == Category::stamped);

    Verdict other;  // the same stamp on another body
    REQUIRE(check_stamps(spend, m.r, env, body_hash("other\n"), pol, now, other).ok());
    CHECK(other.category == Category::unknown);
    CHECK(other.hashcash == "fail");
    CHECK(other.hashcash_why == "spent on another message");

    Envelope carol;
    carol.rcpts = {"carol@ours.example"};
    Verdict wrong;
    REQUIRE(check_stamps(spend, m.r, carol, body_hash("body\n"), pol, now, wrong).ok());
    CHECK(wrong.hashcash == "fail");
    CHECK(wrong.hashcash_why == "wrong resource");

    pol.min_bits = 30;
    Verdict weak;
    REQUIRE(check_stamps(spend, m.r, env, body_hash("x\n"), pol, now, weak).ok());
    CHECK(weak.hashcash == "fail");
}

TEST_CASE("verify: a filter's decision on a store counts the hit of a whitelisted From") {
    TmpDir d;
    auto store = open_store(d.file("s.db"));
    REQUIRE(store.ok());
    auto e = parse_wl_entry("ann@friend.example");
    REQUIRE(e.ok());
    REQUIRE((*store)->wl_insert(*e).ok());
    Envelope env;
    env.sender = "list@lists.example";
    env.from = {"ann@friend.example"};
    env.rcpts = {"bob@ours.example"};
    Msg m("From: ann@friend.example\n\nhi\n");
    StoreLookups look(**store, '+');
    std::optional<TokenHolds> holds;
    auto no_body = []() -> Result<std::string> { return std::string(); };
    auto w = decide_filter(look, holds, env, m.r, '+', PostagePolicy{}, no_body, nullptr);
    REQUIRE(w.ok());
    CHECK(w->category == Category::whitelist);
    CHECK(w->reason == "sender ann@friend.example is whitelisted");
    auto hit = wl_match(**store, "ann@friend.example", "");
    CHECK((*hit)->hits == 1);

    env.from.clear();
    std::optional<TokenHolds> holds2;
    auto u = decide_filter(look, holds2, env, m.r, '+', PostagePolicy{}, no_body, nullptr);
    REQUIRE(u.ok());
    CHECK(u->category == Category::unknown);
}
