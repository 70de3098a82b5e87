// The admission core with fake lookups: no store, no sockets, no files.
#include "libmail/mail/message.hpp"
#include "libmail/policy/admission.hpp"
#include "libmail/policy/hashcash.hpp"

#include <catch2/catch.hpp>

#include <map>
#include <set>
#include <sstream>

using namespace mail;

namespace {

struct FakeWhitelist : WhitelistLookup {
    std::map<std::pair<std::string, std::string>, WlEntry> entries;  // (sender, rcpt) -> entry; rcpt "" unscoped
    std::map<std::string, WlEntry> unconditional;                    // rcpt -> entry
    std::vector<std::int64_t> hits;
    bool fail = false;
    void add(std::int64_t id, const std::string& sender, const std::string& rcpt = "") {
        WlEntry e;
        e.id = id;
        e.value = sender;
        entries[{sender, rcpt}] = e;
    }
    Result<std::optional<WlEntry>> match(std::string_view sender, std::string_view rcpt) override {
        if (fail) return Error{ErrorKind::tempfail, "down"};
        if (auto u = unconditional.find(std::string(rcpt)); u != unconditional.end()) return std::optional<WlEntry>(u->second);
        for (std::string r : {std::string(rcpt), std::string()})
            if (auto e = entries.find({std::string(sender), r}); e != entries.end()) return std::optional<WlEntry>(e->second);
        return std::optional<WlEntry>();
    }
    void hit(std::int64_t id, std::int64_t) override { hits.push_back(id); }
};

struct FakeTokens : TokenLookup {
    std::map<std::string, TokenCheck> state;  // address -> what reserve says (ok when not listed)
    std::vector<std::string> reserved, released, claimed, given_back;
    std::map<std::string, std::int64_t> counts;
    int issued = 0;
    Result<TokenVerdict> reserve(std::string_view address, std::string_view, std::string_view holder, std::int64_t,
                                 std::int64_t, std::optional<TokenRecord>& hold) override {
        REQUIRE_FALSE(holder.empty());
        reserved.emplace_back(address);
        TokenVerdict v;
        auto s = state.find(std::string(address));
        v.check = s == state.end() ? TokenCheck::ok : s->second;
        if (v.check == TokenCheck::ok) {
            TokenRecord r;
            r.id = std::string(address);
            hold = r;
        }
        return v;
    }
    Result<std::string> issue(const TokenRequest& req, std::int64_t) override {
        return "tok" + std::to_string(++issued) + "-" + req.recipient;
    }
    Result<bool> rate(const std::string& key, std::int64_t, std::int64_t, std::int64_t limit) override {
        return ++counts[key] <= limit;
    }
    Result<std::optional<TokenState>> claim(const TokenRecord& r, std::string_view) override {
        claimed.push_back(r.id);
        return std::optional<TokenState>();
    }
    void release(std::string_view id, std::string_view) override { released.emplace_back(id); }
    Result<void> give_back(std::string_view id) override {
        given_back.emplace_back(id);
        return {};
    }
};

struct FakeSite : SiteLookup {
    std::vector<std::string> doms{"ours.example"};
    std::map<std::string, std::vector<std::string>> users;
    Result<std::vector<std::string>> domains() override { return doms; }
    Result<std::vector<Secret>> batv_keys() override { return std::vector<Secret>{Secret{1, std::string(32, 'k'), 0}}; }
    Result<std::optional<std::vector<std::string>>> senders_of(std::string_view user) override {
        auto u = users.find(std::string(user));
        if (u == users.end()) return std::optional<std::vector<std::string>>();
        return std::optional<std::vector<std::string>>(u->second);
    }
};

struct FakeSpend : SpendLookup {
    std::map<std::string, std::string> spent;  // stamp -> message
    Result<SpendState> spend(const SpendRecord& r) override {
        auto [it, fresh] = spent.emplace(r.stamp, r.message);
        if (fresh) return SpendState::fresh;
        return it->second == r.message ? SpendState::same_message : SpendState::other_message;
    }
    void expire(std::int64_t) override {}
};

struct Rig {
    FakeWhitelist wl;
    FakeTokens tokens;
    FakeSite site;
    FakeSpend spend;
    std::int64_t clock = 1790000000;
    Lookups look{wl, tokens, site, spend, [this] { return clock; }};
    GatePolicy policy;
    Gate gate{policy, look};
    Facts facts(std::optional<std::string> sender) {
        Facts f;
        f.client = "192.0.2.1:2525";
        f.sender = sender;
        f.sender_match = sender.value_or("");
        f.holder = "h1";
        return f;
    }
};

struct Msg {
    std::istringstream in;
    MessageReader r;
    explicit Msg(const std::string& text) : in(text), r(in) { REQUIRE(r.read_header().ok()); }
};

std::string token_for(const std::string& rcpt, std::uint8_t flags = token_flag::once) {
    TokenRequest req;
    req.recipient = rcpt;
    req.flags = flags;
    req.expires = 1790000000 + 86400;
    auto t = make_token(req, Secret{1, std::string(32, 's'), 0}, "abc");
    REQUIRE(t.ok());
    return *t;
}

const auto no_body = []() -> Result<std::string> { return std::string("not asked"); };

} // namespace

TEST_CASE("admission: RCPT accepts a whitelisted sender and counts the hit") {
    Rig g;
    g.wl.add(7, "ann@friend.example");
    Decision d = g.gate.at_rcpt(g.facts("ann@friend.example"), "bob@ours.example");
    CHECK(d.outcome == Outcome::accept);
    CHECK(d.category == Category::whitelist);
    CHECK(d.reason == "sender ann@friend.example is whitelisted");
    CHECK(d.deliver_to == "bob@ours.example");
    CHECK(g.wl.hits == std::vector<std::int64_t>{7});
}

TEST_CASE("admission: a token's base recipient's scoped entry admits without touching the token") {
    Rig g;
    g.wl.add(3, "pal@pal.example", "bob@ours.example");
    std::string tok = token_for("bob@ours.example");
    Decision d = g.gate.at_rcpt(g.facts("pal@pal.example"), tok);
    CHECK(d.outcome == Outcome::accept);
    CHECK(d.category == Category::whitelist);
    CHECK(d.deliver_to == "bob@ours.example");
    CHECK(g.tokens.reserved.empty());
    CHECK_FALSE(d.hold);
}

TEST_CASE("admission: a stranger's one-time token is reserved, not used; a busy one is not admitted") {
    Rig g;
    std::string tok = token_for("bob@ours.example");
    Decision d = g.gate.at_rcpt(g.facts("x@stranger.example"), tok);
    CHECK(d.outcome == Outcome::accept);
    CHECK(d.reason == "token address " + tok);
    REQUIRE(d.hold);
    CHECK(g.tokens.claimed.empty());
    g.tokens.state[tok] = TokenCheck::reserved;
    Decision busy = g.gate.at_rcpt(g.facts("y@stranger.example"), tok);
    CHECK(busy.outcome == Outcome::provisional);
    CHECK(busy.busy);
    CHECK(busy.deliver_to == "bob@ours.example");
}

TEST_CASE("admission: postmaster is always taken") {
    Rig g;
    Decision d = g.gate.at_rcpt(g.facts("x@stranger.example"), "postmaster@ours.example");
    CHECK(d.outcome == Outcome::accept);
    CHECK(d.category == Category::whitelist);
    g.policy.refuse_unknown = true;
    CHECK(g.gate.at_rcpt(g.facts("x@stranger.example"), "PostMaster@ours.example").outcome == Outcome::accept);
}

TEST_CASE("admission: an unknown sender waits for the end of message, or gets 550 with a token within limits") {
    Rig g;
    Decision d = g.gate.at_rcpt(g.facts("x@stranger.example"), "bob@ours.example");
    CHECK(d.outcome == Outcome::provisional);
    CHECK(d.category == Category::unknown);

    g.policy.refuse_unknown = true;
    g.policy.token_limit_sender = 1;
    Decision r = g.gate.at_rcpt(g.facts("x@stranger.example"), "bob@ours.example");
    CHECK(r.outcome == Outcome::refuse);
    CHECK(r.reply.code == 550);
    CHECK(r.token == "tok1-bob@ours.example");
    bool named = false;
    for (const auto& l : r.reply.lines) named = named || l.find("<" + r.token + ">") != std::string::npos;
    CHECK(named);
    Decision again = g.gate.at_rcpt(g.facts("x@stranger.example"), "bob@ours.example");
    CHECK(again.reply.code == 550);
    CHECK(again.token.empty());
    CHECK(again.reason == "token limit: sender x@stranger.example");
}

TEST_CASE("admission: the null sender is a notice, never a token's use; with BATV only to signed addresses") {
    Rig g;
    std::string tok = token_for("bob@ours.example");
    Decision d = g.gate.at_rcpt(g.facts(std::string()), tok);
    CHECK(d.outcome == Outcome::provisional);
    CHECK(d.category == Category::information);
    CHECK(g.tokens.reserved.empty());
    g.policy.refuse_unknown = true;
    CHECK(g.gate.at_rcpt(g.facts(std::string()), "bob@ours.example").outcome == Outcome::provisional);
    g.policy.batv = true;
    Decision b = g.gate.at_rcpt(g.facts(std::string()), "bob@ours.example");
    CHECK(b.outcome == Outcome::refuse);
    CHECK(b.reply.code == 550);
    CHECK(b.reason == "unsigned bounce");
}

TEST_CASE("admission: relay control refuses other domains and routing forms, and takes an authenticated user's") {
    Rig g;
    g.policy.relay_control = true;
    CHECK(g.gate.at_rcpt(g.facts("a@b.example"), "x@elsewhere.example").reply.code == 554);
    CHECK(g.gate.at_rcpt(g.facts("a@b.example"), "x%y@ours.example").reply.code == 554);
    CHECK(g.gate.at_rcpt(g.facts("a@b.example"), "x@[192.0.2.1]").reply.code == 554);
    Facts user = g.facts("me@ours.example");
    user.user = "me";
    Decision d = g.gate.at_rcpt(user, "x@elsewhere.example");
    CHECK(d.outcome == Outcome::accept);
    CHECK(d.outgoing);
}

TEST_CASE("admission: a lookup that fails is a tempfail, never a guess") {
    Rig g;
    g.wl.fail = true;
    Decision d = g.gate.at_rcpt(g.facts("a@b.example"), "bob@ours.example");
    CHECK(d.outcome == Outcome::tempfail);
    CHECK(d.reply.code == 451);
}

TEST_CASE("admission: MAIL of an authenticated user: home domains and owned addresses only") {
    Rig g;
    g.site.users["me"] = {"me@ours.example"};
    Facts f = g.facts("me@ours.example");
    CHECK(g.gate.at_mail(f).outcome == Outcome::accept);  // no user: nothing to check
    f.user = "me";
    CHECK(g.gate.at_mail(f).outcome == Outcome::accept);
    f.sender = f.sender_match = "boss@ours.example";
    CHECK(g.gate.at_mail(f).reply.code == 553);
    f.sender = f.sender_match = "me@elsewhere.example";
    CHECK(g.gate.at_mail(f).reason == "sender not in the home domains");
    f.sender = f.sender_match = "";
    CHECK(g.gate.at_mail(f).reply.code == 553);
}

TEST_CASE("admission: end of message: a whitelisted From, then stamps, then the null sender's notice, else B") {
    Rig g;
    g.wl.add(9, "ann@friend.example");
    Facts f = g.facts("list@lists.example");
    std::vector<Decision> ds{g.gate.at_rcpt(f, "bob@ours.example")};
    Msg plain("From: ann@friend.example\nSubject: s\n\nbody\n");
    auto w = g.gate.at_end(f, ds, plain.r, {"ann@friend.example"}, no_body);
    REQUIRE(w.ok());
    CHECK(w->verdict.category == Category::whitelist);
    CHECK(w->verdict.reason == "sender ann@friend.example is whitelisted");

    auto stamp = mint_hashcash("bob@ours.example", 8, g.clock, 1);
    REQUIRE(stamp.ok());
    g.policy.postage.min_bits = 8;
    Msg stamped("X-Hashcash: " + *stamp + "\nMessage-ID: <1@x>\n\nbody\n");
    bool asked = false;
    auto hash = [&]() -> Result<std::string> {
        asked = true;
        return std::string("h1");
    };
    auto s = g.gate.at_end(f, ds, stamped.r, {}, hash);
    REQUIRE(s.ok());
    CHECK(asked);
    CHECK(s->verdict.category == Category::stamped);
    CHECK(s->verdict.hashcash == "pass");

    auto b = g.gate.at_end(f, ds, plain.r, {}, no_body);
    CHECK(b->verdict.category == Category::unknown);
    Facts null = g.facts(std::string());
    std::vector<Decision> nd{g.gate.at_rcpt(null, "bob@ours.example")};
    CHECK(g.gate.at_end(null, nd, plain.r, {}, no_body)->verdict.category == Category::information);
}

TEST_CASE("admission: a postage-flagged token needs its stamp at end of message") {
    Rig g;
    g.policy.postage.min_bits = 8;
    std::string tok = token_for("bob@ours.example", token_flag::once | token_flag::postage);
    Facts f = g.facts("x@stranger.example");
    std::vector<Decision> ds{g.gate.at_rcpt(f, tok)};
    REQUIRE(ds.front().stamp_for == tok);
    Msg plain("Subject: s\n\nbody\n");
    auto r = g.gate.at_end(f, ds, plain.r, {}, no_body);
    REQUIRE(r.ok());
    CHECK(r->outcome == Outcome::refuse);
    CHECK(r->reply.code == 550);
    auto stamp = mint_hashcash(tok, 8, g.clock, 1);
    REQUIRE(stamp.ok());
    Msg ok("X-Hashcash: " + *stamp + "\n\nbody\n");
    CHECK(g.gate.at_end(f, ds, ok.r, {}, no_body)->outcome == Outcome::accept);
}

TEST_CASE("admission: a filter's message takes the best recipient's category and keeps only its token") {
    Rig g;
    g.wl.add(4, "x@stranger.example", "carol@ours.example");
    std::string tok = token_for("bob@ours.example");
    Envelope env;
    env.sender = "x@stranger.example";
    env.rcpts = {tok, "carol@ours.example"};
    Msg plain("Subject: s\n\nbody\n");
    std::vector<TokenRecord> holds;
    auto v = g.gate.decide(g.facts("x@stranger.example"), env, plain.r, no_body, holds);
    REQUIRE(v.ok());
    CHECK(v->category == Category::whitelist);
    CHECK(v->reason == "sender x@stranger.example is whitelisted");
    CHECK(holds.empty());  // the whitelist entry admitted it: the token is released, not used
    CHECK(g.tokens.released == std::vector<std::string>{tok});

    env.rcpts = {tok};
    auto t = g.gate.decide(g.facts("x@stranger.example"), env, plain.r, no_body, holds);
    CHECK(t->reason == "token address " + tok);
    REQUIRE(holds.size() == 1);

    env.rcpts = {"dave@ours.example"};
    std::vector<TokenRecord> none;
    CHECK(g.gate.decide(g.facts("x@stranger.example"), env, plain.r, no_body, none)->category == Category::unknown);
}

TEST_CASE("admission: a filter's token holds are given back unless the message went out") {
    FakeTokens tokens;
    {
        TokenHolds h(tokens, "h1");
        h.records().push_back(TokenRecord{"t1", TokenState::used, "bob@ours.example", 0, 0});
        h.records().push_back(TokenRecord{"t2", TokenState::used, "bob@ours.example", 0, 0});
        REQUIRE(h.claim(100).ok());
    }
    CHECK(tokens.claimed.size() == 2);
    CHECK(tokens.given_back.size() == 2);  // never committed: the write failed
    FakeTokens kept;
    {
        TokenHolds h(kept, "h2");
        h.records().push_back(TokenRecord{"t3", TokenState::used, "bob@ours.example", 0, 0});
        REQUIRE(h.claim(100).ok());
        h.commit();
    }
    CHECK(kept.given_back.empty());
    FakeTokens unclaimed;
    {
        TokenHolds h(unclaimed, "h3");
        h.records().push_back(TokenRecord{"t4", TokenState::used, "bob@ours.example", 0, 0});
    }
    CHECK(unclaimed.released == std::vector<std::string>{"t4"});
}
