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
    void add(std::int64_t id, const std::string& sender, const std::string& rcpt = "", WlAuth auth = WlAuth::automatic) {
        WlEntry e;
        e.id = id;
        e.value = sender;
        e.auth = auth;
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
    Lookups look{wl, tokens, site, spend, [this] { return clock; }, nullptr};
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

TEST_CASE("admission: without relay control (inside the MTA) an authenticated user's mail goes out too") {
    Rig g;
    Facts user = g.facts("me@ours.example");
    user.user = "me";
    for (const char* rcpt : {"x@elsewhere.example", "bob@ours.example"}) {
        Decision d = g.gate.at_rcpt(user, rcpt);
        CHECK(d.outcome == Outcome::accept);
        CHECK(d.outgoing);
        CHECK(d.token.empty());
        CHECK(d.reason == "authenticated user me");
    }
    // Without a login the same stranger recipient is the core's as always: no outgoing mail.
    g.policy.refuse_unknown = true;
    Decision s = g.gate.at_rcpt(g.facts("me@ours.example"), "bob@ours.example");
    CHECK(!s.outgoing);
    CHECK(s.reply.code == 550);
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

// ---- sender authentication (issue 14): a whitelist hit counts only for an authenticated identity ----

namespace {

struct FakeAuth : AuthLookup {
    std::optional<spf::Outcome> spf;               // at MAIL
    std::optional<auth::Results> res;              // at end of message (filters: from the start)
    std::map<std::string, auth::Publishes> pub;    // domain -> what it publishes (nothing when not listed)
    std::vector<std::string> asked;                // publishes() calls
    std::vector<std::pair<std::string, std::string>> events;  // (event, identity)
    std::optional<spf::Outcome> spf_at_mail() override { return spf; }
    const auth::Results* results() override { return res ? &*res : nullptr; }
    auth::Publishes publishes(std::string_view d) override {
        asked.emplace_back(d);
        auto p = pub.find(std::string(d));
        return p == pub.end() ? auth::Publishes{} : p->second;
    }
    void note(std::string_view event, std::string_view identity, std::string_view) override {
        events.emplace_back(std::string(event), std::string(identity));
    }
    bool logged(const std::string& event) const {
        for (const auto& e : events)
            if (e.first == event) return true;
        return false;
    }
};

spf::Outcome spf_of(spf::SpfResult r, const std::string& domain) {
    spf::Outcome o;
    o.result = r;
    o.domain = domain;
    o.identity = "mailfrom";
    return o;
}

dkim::SignatureResult sig(dkim::Status s, const std::string& d) {
    dkim::SignatureResult r;
    r.status = s;
    r.domain = d;
    r.selector = "sel";
    return r;
}

// Results as the combined check gives them: SPF for the envelope domain, DKIM signatures, DMARC for From.
auth::Results results(spf::SpfResult spf, const std::string& env_domain, std::vector<dkim::SignatureResult> dk = {},
                      dmarc::Status dm = dmarc::Status::none, const std::string& from_domain = "") {
    auth::Results r;
    r.spf_checked = true;
    r.spf_mailfrom = spf_of(spf, env_domain);
    r.dkim = std::move(dk);
    r.dmarc.status = dm;
    r.dmarc.from_domain = from_domain;
    r.from_domain = from_domain;
    return r;
}

struct AuthRig : Rig {
    FakeAuth auth;
    AuthRig() { look.auth = &auth; }
    // good.example publishes SPF -all and DMARC p=reject; quiet.example nothing.
    void publishing() {
        auth.pub["good.example"] = auth::Publishes{true, true, false};
    }
};

using spf::SpfResult;

} // namespace

TEST_CASE("auth: an envelope sender's hit at RCPT needs SPF pass for its domain; the reason names the method") {
    AuthRig g;
    g.publishing();
    g.wl.add(7, "friend@good.example");
    g.auth.spf = spf_of(SpfResult::pass, "good.example");
    Decision d = g.gate.at_rcpt(g.facts("friend@good.example"), "bob@ours.example");
    CHECK(d.outcome == Outcome::accept);
    CHECK(d.category == Category::whitelist);
    CHECK(d.reason == "sender friend@good.example is whitelisted, spf pass");
    CHECK(g.wl.hits == std::vector<std::int64_t>{7});
    // An SPF pass for another domain (HELO, a different sender domain) does not speak for good.example.
    g.auth.spf = spf_of(SpfResult::pass, "evil.example");
    Decision other = g.gate.at_rcpt(g.facts("friend@good.example"), "bob@ours.example");
    CHECK(other.outcome == Outcome::provisional);
    CHECK(other.auth_pending);
}

TEST_CASE("auth: SPF fail at RCPT leaves an auto entry pending (DKIM may pass); the end of message decides") {
    AuthRig g;
    g.publishing();
    g.wl.add(7, "friend@good.example");
    g.auth.spf = spf_of(SpfResult::fail, "good.example");
    auto f = g.facts("friend@good.example");
    Decision d = g.gate.at_rcpt(f, "bob@ours.example");
    CHECK(d.outcome == Outcome::provisional);
    CHECK(d.category == Category::unknown);
    CHECK(d.auth_pending);
    CHECK(g.wl.hits.empty());
    // Even in the reject modes: no 550 for a sender that may still authenticate by DKIM.
    g.policy.refuse_unknown = true;
    Decision r = g.gate.at_rcpt(f, "bob@ours.example");
    CHECK(r.outcome == Outcome::provisional);
    CHECK(r.auth_pending);
    CHECK(r.token.empty());

    Msg plain("From: friend@good.example\nSubject: hi\n\nbody\n");
    std::vector<Decision> ds{d};
    // The message carries a DKIM signature of good.example that passes: whitelisted.
    g.auth.res = results(SpfResult::fail, "good.example", {sig(dkim::Status::pass, "good.example")});
    auto e = g.gate.at_end(f, ds, plain.r, {}, no_body);
    REQUIRE(e.ok());
    CHECK(e->verdict.category == Category::whitelist);
    CHECK(e->verdict.reason == "sender friend@good.example is whitelisted, dkim pass");
    // Without it: forged, Unknown, logged with the identity.
    g.auth.res = results(SpfResult::fail, "good.example");
    auto b = g.gate.at_end(f, ds, plain.r, {}, no_body);
    REQUIRE(b.ok());
    CHECK(b->outcome == Outcome::accept);
    CHECK(b->verdict.category == Category::unknown);
    CHECK(g.auth.logged("forged"));
    CHECK(g.auth.events.back().second == "friend@good.example");
}

TEST_CASE("auth: a domain that publishes nothing is an unauthenticated hit, logged; one that publishes is not") {
    AuthRig g;
    g.wl.add(7, "ann@quiet.example");
    g.auth.spf = spf_of(SpfResult::none, "quiet.example");
    Decision d = g.gate.at_rcpt(g.facts("ann@quiet.example"), "bob@ours.example");
    CHECK(d.outcome == Outcome::accept);
    CHECK(d.category == Category::whitelist);
    CHECK(d.reason == "sender ann@quiet.example is whitelisted");
    CHECK(g.auth.logged("unauthenticated_hit"));
    CHECK_FALSE(g.auth.logged("forged"));
    CHECK(g.auth.asked == std::vector<std::string>{"quiet.example"});

    // Publishing DMARC only is enough to need a pass.
    g.auth.pub["quiet.example"] = auth::Publishes{false, true, false};
    Decision p = g.gate.at_rcpt(g.facts("ann@quiet.example"), "bob@ours.example");
    CHECK(p.outcome == Outcome::provisional);
    CHECK(p.auth_pending);
}

TEST_CASE("auth: a domain that signs this message must pass even when it publishes no SPF or DMARC") {
    AuthRig g;
    g.wl.add(7, "ann@quiet.example");
    g.auth.res = results(SpfResult::none, "quiet.example", {sig(dkim::Status::fail, "quiet.example")});
    Envelope env;
    env.sender = "ann@quiet.example";
    env.rcpts = {"bob@ours.example"};
    Msg plain("From: ann@quiet.example\n\nbody\n");
    std::vector<TokenRecord> holds;
    auto v = g.gate.decide(g.facts("ann@quiet.example"), env, plain.r, no_body, holds);
    REQUIRE(v.ok());
    CHECK(v->category == Category::unknown);
    CHECK(g.auth.logged("forged"));
    CHECK_FALSE(g.auth.logged("unauthenticated_hit"));
}

TEST_CASE("auth: a From hit needs a DMARC-aligned pass; the forged whitelisted From is Unknown") {
    AuthRig g;
    g.publishing();
    g.wl.add(7, "friend@good.example");
    Envelope env;
    env.sender = "spammer@evil.example";
    env.rcpts = {"bob@ours.example"};
    env.from = {"friend@good.example"};
    Msg plain("From: friend@good.example\n\nbody\n");
    std::vector<TokenRecord> holds;
    // The attack of the issue: SPF passes for evil.example, DMARC fails for good.example.
    g.auth.res = results(SpfResult::pass, "evil.example", {}, dmarc::Status::fail, "good.example");
    auto v = g.gate.decide(g.facts("spammer@evil.example"), env, plain.r, no_body, holds);
    REQUIRE(v.ok());
    CHECK(v->category == Category::unknown);
    CHECK(g.auth.logged("forged"));
    // The real message: DKIM aligned, DMARC pass.
    g.auth.res = results(SpfResult::pass, "evil.example", {sig(dkim::Status::pass, "good.example")}, dmarc::Status::pass,
                         "good.example");
    auto w = g.gate.decide(g.facts("list@evil.example"), env, plain.r, no_body, holds);
    REQUIRE(w.ok());
    CHECK(w->category == Category::whitelist);
    CHECK(w->reason == "sender friend@good.example is whitelisted, dkim pass");
    // A DMARC pass alone (SPF aligned upstream, say) names dmarc.
    g.auth.res = results(SpfResult::none, "evil.example", {}, dmarc::Status::pass, "good.example");
    auto m = g.gate.decide(g.facts("list@evil.example"), env, plain.r, no_body, holds);
    REQUIRE(m.ok());
    CHECK(m->category == Category::whitelist);
    CHECK(m->reason == "sender friend@good.example is whitelisted, dmarc pass");
    // A DMARC pass for another From domain does not speak for good.example.
    g.auth.res = results(SpfResult::none, "evil.example", {}, dmarc::Status::pass, "evil.example");
    auto o = g.gate.decide(g.facts("list@evil.example"), env, plain.r, no_body, holds);
    REQUIRE(o.ok());
    CHECK(o->category == Category::unknown);
}

TEST_CASE("auth: a trusted ARC chain counts as a DMARC pass and the reason says so") {
    AuthRig g;
    g.publishing();
    g.wl.add(7, "friend@good.example");
    Envelope env;
    env.sender = "list-bounces@lists.example";
    env.rcpts = {"bob@ours.example"};
    env.from = {"friend@good.example"};
    Msg plain("From: friend@good.example\n\nbody\n");
    std::vector<TokenRecord> holds;
    auto r = results(SpfResult::pass, "lists.example", {sig(dkim::Status::fail, "good.example")}, dmarc::Status::fail,
                     "good.example");
    r.arc.status = dkim::ArcStatus::pass;
    r.arc.sealer = "lists.example";
    r.arc_trusted = true;
    g.auth.res = r;
    auto v = g.gate.decide(g.facts("list-bounces@lists.example"), env, plain.r, no_body, holds);
    REQUIRE(v.ok());
    CHECK(v->category == Category::whitelist);
    CHECK(v->reason == "sender friend@good.example is whitelisted, arc pass (sealed by lists.example)");
}

TEST_CASE("auth: spf, dkim and dmarc entries need exactly that method; none is the old behaviour") {
    AuthRig g;
    g.publishing();
    Envelope env;
    env.sender = "friend@good.example";
    env.rcpts = {"bob@ours.example"};
    Msg plain("From: friend@good.example\n\nbody\n");
    std::vector<TokenRecord> holds;
    auto decide = [&](WlAuth a, const auth::Results& r) {
        g.wl.add(7, "friend@good.example", "", a);
        g.auth.res = r;
        auto v = g.gate.decide(g.facts("friend@good.example"), env, plain.r, no_body, holds);
        REQUIRE(v.ok());
        return v->category;
    };
    auto spf_only = results(SpfResult::pass, "good.example");
    auto dkim_only = results(SpfResult::fail, "good.example", {sig(dkim::Status::pass, "good.example")});
    auto dmarc_only = results(SpfResult::softfail, "good.example", {}, dmarc::Status::pass, "good.example");
    auto nothing = results(SpfResult::fail, "good.example", {}, dmarc::Status::fail, "good.example");
    CHECK(decide(WlAuth::spf, spf_only) == Category::whitelist);
    CHECK(decide(WlAuth::spf, dkim_only) == Category::unknown);
    CHECK(decide(WlAuth::dkim, dkim_only) == Category::whitelist);
    CHECK(decide(WlAuth::dkim, spf_only) == Category::unknown);
    CHECK(decide(WlAuth::dmarc, dmarc_only) == Category::whitelist);
    CHECK(decide(WlAuth::dmarc, spf_only) == Category::unknown);
    CHECK(decide(WlAuth::automatic, spf_only) == Category::whitelist);
    CHECK(decide(WlAuth::automatic, dkim_only) == Category::whitelist);
    CHECK(decide(WlAuth::automatic, dmarc_only) == Category::whitelist);
    CHECK(decide(WlAuth::automatic, nothing) == Category::unknown);
    g.auth.events.clear();
    CHECK(decide(WlAuth::none, nothing) == Category::whitelist);
    CHECK(g.auth.events.empty());
    // An spf entry is decided at RCPT: SPF fail there is forged at once, so the reject modes answer 550.
    g.wl.add(7, "friend@good.example", "", WlAuth::spf);
    g.auth.res.reset();
    g.auth.spf = spf_of(SpfResult::fail, "good.example");
    g.policy.refuse_unknown = true;
    Decision d = g.gate.at_rcpt(g.facts("friend@good.example"), "bob@ours.example");
    CHECK(d.outcome == Outcome::refuse);
    CHECK(d.reply.code == 550);
    CHECK_FALSE(d.token.empty());
    // A recipient entry takes mail from anyone: no authentication asked.
    WlEntry all;
    all.id = 9;
    all.kind = WlKind::recipient;
    all.value = "all@ours.example";
    g.wl.unconditional["all@ours.example"] = all;
    CHECK(g.gate.at_rcpt(g.facts("friend@good.example"), "all@ours.example").outcome == Outcome::accept);
}

TEST_CASE("auth: a temporary DNS failure is a tempfail, never an acceptance or a refusal") {
    AuthRig g;
    g.publishing();
    g.wl.add(7, "friend@good.example");
    Envelope env;
    env.sender = "friend@good.example";
    env.rcpts = {"bob@ours.example"};
    Msg plain("From: friend@good.example\n\nbody\n");
    std::vector<TokenRecord> holds;
    g.auth.res = results(SpfResult::temperror, "good.example");
    auto v = g.gate.decide(g.facts("friend@good.example"), env, plain.r, no_body, holds);
    REQUIRE_FALSE(v.ok());
    CHECK(v.error().kind == ErrorKind::tempfail);
    // But a pass by another method stands: nothing retried could change it.
    g.auth.res = results(SpfResult::temperror, "good.example", {sig(dkim::Status::pass, "good.example")});
    auto w = g.gate.decide(g.facts("friend@good.example"), env, plain.r, no_body, holds);
    REQUIRE(w.ok());
    CHECK(w->category == Category::whitelist);

    // Not knowing what a domain publishes, the auto rule cannot say "publishes nothing": 451 at RCPT.
    g.auth.res.reset();
    g.auth.pub["quiet.example"] = auth::Publishes{false, false, true};
    g.wl.add(8, "ann@quiet.example");
    g.auth.spf = spf_of(SpfResult::none, "quiet.example");
    Decision d = g.gate.at_rcpt(g.facts("ann@quiet.example"), "bob@ours.example");
    CHECK(d.outcome == Outcome::tempfail);
    CHECK(d.reply.code == 451);
    // SPF temperror at RCPT waits for the end of message; still temporary there: 451 for the message.
    g.auth.spf = spf_of(SpfResult::temperror, "good.example");
    auto f = g.facts("friend@good.example");
    Decision p = g.gate.at_rcpt(f, "bob@ours.example");
    CHECK(p.auth_pending);
    std::vector<Decision> ds{p};
    g.auth.res = results(SpfResult::temperror, "good.example");
    auto e = g.gate.at_end(f, ds, plain.r, {}, no_body);
    REQUIRE(e.ok());
    CHECK(e->outcome == Outcome::tempfail);
    CHECK(e->reply.code == 451);
    // A temporary failure for a From hit too.
    g.auth.res = results(SpfResult::none, "evil.example", {sig(dkim::Status::temperror, "good.example")},
                         dmarc::Status::temperror, "good.example");
    env.sender = "x@evil.example";
    env.from = {"friend@good.example"};
    auto t = g.gate.decide(g.facts("x@evil.example"), env, plain.r, no_body, holds);
    REQUIRE_FALSE(t.ok());
    CHECK(t.error().kind == ErrorKind::tempfail);
}

TEST_CASE("auth: the method results go into the verdict for Authentication-Results") {
    AuthRig g;
    g.wl.add(7, "friend@good.example");
    g.auth.res = results(SpfResult::pass, "good.example");
    Envelope env;
    env.sender = "friend@good.example";
    env.rcpts = {"bob@ours.example"};
    Msg plain("From: friend@good.example\n\nbody\n");
    std::vector<TokenRecord> holds;
    auto v = g.gate.decide(g.facts("friend@good.example"), env, plain.r, no_body, holds);
    REQUIRE(v.ok());
    CHECK(v->auth_results == g.auth.res->method_results());
    Verdict x;
    x.category = Category::whitelist;
    x.reason = "r";
    x.auth_results = {"spf=pass smtp.mailfrom=friend@good.example", "dmarc=fail\r\nX-Evil: 1 header.from=good.example"};
    Msg out("Subject: s\n\nbody\n");
    add_verdict_fields(out.r, x, "mx.ours.example");
    auto ar = out.r.get("Authentication-Results");
    REQUIRE(ar);
    CHECK(ar->find("mx.ours.example; spf=pass smtp.mailfrom=friend@good.example; dmarc=fail  X-Evil: 1") == 0);
    CHECK(ar->find("x-mailstamp-hashcash=") != std::string::npos);
    CHECK(ar->find('\n') == std::string::npos);
}

TEST_CASE("auth: challenges go only to senders that authenticate") {
    AuthRig g;
    g.publishing();
    auto f = g.facts("friend@good.example");
    g.auth.res = results(SpfResult::pass, "good.example");
    CHECK(g.gate.challenge(f) == ChallengeAuth::send);
    g.auth.res = results(SpfResult::none, "good.example", {sig(dkim::Status::pass, "good.example")});
    CHECK(g.gate.challenge(f) == ChallengeAuth::send);
    g.auth.res = results(SpfResult::fail, "good.example");
    CHECK(g.gate.challenge(f) == ChallengeAuth::quiet);
    auto r = results(SpfResult::neutral, "good.example", {}, dmarc::Status::fail, "good.example");
    r.dmarc.policy = "reject";
    g.auth.res = r;
    CHECK(g.gate.challenge(f) == ChallengeAuth::quiet);
    // Publishes SPF, nothing passed (SPF not evaluated in a filter without the client): quiet.
    g.auth.res = results(SpfResult::none, "good.example");
    CHECK(g.gate.challenge(f) == ChallengeAuth::quiet);
    g.auth.res = results(SpfResult::temperror, "good.example");
    CHECK(g.gate.challenge(f) == ChallengeAuth::tempfail);
    // A domain that publishes nothing cannot authenticate: it is challenged as before.
    g.auth.res = results(SpfResult::none, "quiet.example");
    CHECK(g.gate.challenge(g.facts("ann@quiet.example")) == ChallengeAuth::send);
}

TEST_CASE("auth: a message fetched by GET from the sender domain's MX passes spf and auto entries, not dkim ones") {
    AuthRig g;
    g.publishing();
    g.policy.refuse_unknown = true;
    g.auth.spf = spf_of(SpfResult::fail, "good.example");  // the MX we fetched from is not in its SPF record
    g.wl.add(7, "friend@good.example");                    // auto
    auto f = g.facts("friend@good.example");
    // Sent by DATA: an spf fail leaves the auto entry pending.
    CHECK(g.gate.at_rcpt(f, "bob@ours.example").outcome == Outcome::provisional);
    // Fetched from good.example's MX: whitelisted at RCPT, and the reason says how.
    f.fetched_from = "Good.Example";
    Decision d = g.gate.at_rcpt(f, "bob@ours.example");
    CHECK(d.outcome == Outcome::accept);
    CHECK(d.category == Category::whitelist);
    CHECK(d.reason == "sender friend@good.example is whitelisted, fetched from the MX of good.example");
    CHECK_FALSE(g.auth.logged("forged"));
    // Fetched from another domain's MX: it speaks for that domain only.
    f.fetched_from = "evil.example";
    Decision other = g.gate.at_rcpt(f, "bob@ours.example");
    CHECK(other.outcome == Outcome::provisional);
    CHECK(other.auth_pending);
    // An spf entry counts the fetch as its SPF pass; a dkim entry still wants its signature.
    AuthRig s;
    s.publishing();
    s.policy.refuse_unknown = true;
    s.auth.spf = spf_of(SpfResult::fail, "good.example");
    s.wl.add(7, "friend@good.example", "", WlAuth::spf);
    auto fs = s.facts("friend@good.example");
    CHECK(s.gate.at_rcpt(fs, "bob@ours.example").outcome == Outcome::refuse);
    fs.fetched_from = "good.example";
    CHECK(s.gate.at_rcpt(fs, "bob@ours.example").outcome == Outcome::accept);
    AuthRig k;
    k.publishing();
    k.auth.spf = spf_of(SpfResult::fail, "good.example");
    k.wl.add(7, "friend@good.example", "", WlAuth::dkim);
    auto fk = k.facts("friend@good.example");
    fk.fetched_from = "good.example";
    Decision dk = k.gate.at_rcpt(fk, "bob@ours.example");
    CHECK(dk.outcome == Outcome::provisional);
    CHECK(dk.category == Category::unknown);
    // At the end of the message, a From match of the fetched domain passes the same way (aligned).
    Msg plain("From: friend@good.example\nSubject: hi\n\nbody\n");
    std::vector<Decision> ds{g.gate.at_rcpt(g.facts("friend@good.example"), "bob@ours.example")};
    g.auth.res = results(SpfResult::fail, "good.example");
    auto fe = g.facts("friend@good.example");
    fe.fetched_from = "good.example";
    auto e = g.gate.at_end(fe, ds, plain.r, {"friend@good.example"}, no_body);
    REQUIRE(e.ok());
    CHECK(e->verdict.category == Category::whitelist);
}
