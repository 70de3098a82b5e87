// mmilter's sessions without libmilter: MilterSession over a real store, each
// stage's reply and the end-of-message edits checked as values.
#include "libmail/app/context.hpp"
#include "libmail/daemon/milter_session.hpp"
#include "libmail/base/clock.hpp"
#include "libmail/policy/hashcash.hpp"
#include "libmail/store/store.hpp"
#include "store_rig.hpp"
#include "tmpdir.hpp"

#include <catch2/catch.hpp>

#include <algorithm>

using namespace mail;

namespace {

struct MRig : StoreRig {
    ProxyPolicy policy;

    MRig() : StoreRig("mmilter") {
        policy.hostname = policy.authserv_id = "mx.ours.example";
        policy.spf = false;
    }
};

using A = MilterReply::Action;

// Connect, HELO and MAIL on s.
void open(MilterSession& s, const std::string& from, const std::string& user = "") {
    REQUIRE(s.connect("192.0.2.7", "4711").action == A::cont);
    REQUIRE(s.helo("client.example").action == A::cont);
    REQUIRE(s.mail("<" + from + ">", user).action == A::cont);
}

// The header and body, then the end: the reply, with edits filled.
MilterReply message(MilterSession& s, std::vector<MilterEdit>& edits,
                    const std::vector<std::pair<std::string, std::string>>& fields = {{"Subject", "hi"}}) {
    for (const auto& [n, v] : fields) REQUIRE(s.header(n, v).action == A::cont);
    REQUIRE(s.end_of_header().action == A::cont);
    REQUIRE(s.body("hello\r\n").action == A::cont);
    return s.end_of_message(edits);
}

const MilterEdit* find(const std::vector<MilterEdit>& edits, MilterEdit::Kind k, const std::string& name) {
    auto it = std::find_if(edits.begin(), edits.end(), [&](const MilterEdit& e) { return e.kind == k && e.name == name; });
    return it == edits.end() ? nullptr : &*it;
}

std::string token_in(const MilterReply& r) {
    for (const auto& l : r.reply.lines) {
        auto a = l.find("this address: <");
        if (a == std::string::npos) continue;
        a += 15;
        return l.substr(a, l.find('>', a) - a);
    }
    return "";
}

} // namespace

TEST_CASE("milter: a whitelisted sender goes on with the verdict fields, forged ones deleted, the Subject tagged", "[milter]") {
    MRig r;
    MilterSession s(r.policy, *r.ctx, *r.store);
    open(s, "friend@good.example");
    REQUIRE(s.rcpt("<bob@ours.example>").action == A::cont);
    std::vector<MilterEdit> edits;
    auto m = message(s, edits,
                     {{"Subject", "hi"},
                      {"X-Mailstamp-Class", "G (forged) by mx.ours.example"},
                      {"Authentication-Results", "other.example; spf=pass"},
                      {"Authentication-Results", "mx.ours.example; x-mailstamp-hashcash=pass"}});
    REQUIRE(m.action == A::cont);
    auto* cls = find(edits, MilterEdit::Kind::insert_header, "X-Mailstamp-Class");
    REQUIRE(cls);
    CHECK(cls->index == 0);
    CHECK(cls->value.rfind("W (Whitelist: sender friend@good.example is whitelisted) by mx.ours.example", 0) == 0);
    CHECK(find(edits, MilterEdit::Kind::insert_header, "Authentication-Results"));
    auto* forged = find(edits, MilterEdit::Kind::change_header, "X-Mailstamp-Class");
    REQUIRE(forged);
    CHECK(forged->index == 1);
    CHECK(forged->value.empty());
    // Only our authserv-id's Authentication-Results goes: the second of its name.
    int ar = 0;
    for (const auto& e : edits)
        if (e.kind == MilterEdit::Kind::change_header && e.name == "Authentication-Results") {
            ++ar;
            CHECK(e.index == 2);
        }
    CHECK(ar == 1);
    auto* subj = find(edits, MilterEdit::Kind::change_header, "Subject");
    REQUIRE(subj);
    CHECK(subj->value == "[W] hi");
    CHECK(!find(edits, MilterEdit::Kind::del_rcpt, "<bob@ours.example>"));
}

TEST_CASE("milter: header values are taken as they follow the colon: a packed Subject tagged, tab-led forged fields deleted", "[milter]") {
    MRig r;
    MilterSession s(r.policy, *r.ctx, *r.store);
    open(s, "friend@good.example");
    REQUIRE(s.rcpt("<bob@ours.example>").action == A::cont);
    std::vector<MilterEdit> edits;
    auto m = message(s, edits,
                     {{"Subject", "hi"},
                      {"X-Mailstamp-Class", "\tG (forged) by mx.ours.example"},
                      {"Authentication-Results", " mx.ours.example;\n\tx-mailstamp-hashcash=pass"}});
    REQUIRE(m.action == A::cont);
    auto* subj = find(edits, MilterEdit::Kind::change_header, "Subject");
    REQUIRE(subj);
    CHECK(subj->value == "[W] hi");
    auto* forged = find(edits, MilterEdit::Kind::change_header, "X-Mailstamp-Class");
    REQUIRE(forged);
    CHECK(forged->value.empty());
    auto* ar = find(edits, MilterEdit::Kind::change_header, "Authentication-Results");
    REQUIRE(ar);
    CHECK(ar->index == 1);
    // Values of our own fields go without a leading space (the glue adds one where the MTA wants it).
    auto* cls = find(edits, MilterEdit::Kind::insert_header, "X-Mailstamp-Class");
    REQUIRE(cls);
    CHECK(cls->value.rfind("W ", 0) == 0);
}

TEST_CASE("milter: a stranger is refused at RCPT with a token; the token is taken once and goes to its base", "[milter]") {
    MRig r;
    std::string tok;
    {
        MilterSession s(r.policy, *r.ctx, *r.store);
        open(s, "stranger@bad.example");
        auto m = s.rcpt("<bob@ours.example>");
        REQUIRE(m.action == A::reject);
        CHECK(m.reply.code == 550);
        tok = token_in(m);
        REQUIRE(tok.rfind("bob+", 0) == 0);
    }
    {
        MilterSession s(r.policy, *r.ctx, *r.store);
        open(s, "other@bad.example");
        REQUIRE(s.rcpt("<" + tok + ">").action == A::cont);
        std::vector<MilterEdit> edits;
        REQUIRE(message(s, edits).action == A::cont);
        CHECK(find(edits, MilterEdit::Kind::del_rcpt, "<" + tok + ">"));
        CHECK(find(edits, MilterEdit::Kind::add_rcpt, "<bob@ours.example>"));
    }
    {
        MilterSession s(r.policy, *r.ctx, *r.store);
        open(s, "stranger@bad.example");
        CHECK(s.rcpt("<" + tok + ">").action == A::reject);
    }
}

TEST_CASE("milter: a token left unsent at the end of a transaction is let go (abort)", "[milter]") {
    MRig r;
    std::string tok;
    {
        MilterSession s(r.policy, *r.ctx, *r.store);
        open(s, "stranger@bad.example");
        tok = token_in(s.rcpt("<bob@ours.example>"));
        REQUIRE(!tok.empty());
    }
    MilterSession s(r.policy, *r.ctx, *r.store);
    open(s, "other@bad.example");
    REQUIRE(s.rcpt("<" + tok + ">").action == A::cont);
    s.abort();
    open(s, "other@bad.example");
    REQUIRE(s.rcpt("<" + tok + ">").action == A::cont);
    std::vector<MilterEdit> edits;
    CHECK(message(s, edits).action == A::cont);
}

TEST_CASE("milter: postmaster takes anyone's mail; categories do not share a transaction", "[milter]") {
    MRig r;
    r.policy.unknown = UnknownMode::mark;
    MilterSession s(r.policy, *r.ctx, *r.store);
    open(s, "stranger@bad.example");
    REQUIRE(s.rcpt("<postmaster@ours.example>").action == A::cont);
    auto m = s.rcpt("<bob@ours.example>");
    CHECK(m.action == A::tempfail);
    CHECK(m.reply.code == 452);
    REQUIRE(!m.reply.lines.empty());
    CHECK(m.reply.lines.front().rfind("4.5.3", 0) == 0);
    std::vector<MilterEdit> edits;
    REQUIRE(message(s, edits).action == A::cont);
    auto* cls = find(edits, MilterEdit::Kind::insert_header, "X-Mailstamp-Class");
    REQUIRE(cls);
    CHECK(cls->value[0] == 'W');
}

TEST_CASE("milter: bad-mail modes mark, quarantine, forward and postage", "[milter]") {
    MRig r;
    std::vector<MilterEdit> edits;
    SECTION("mark") {
        r.policy.unknown = UnknownMode::mark;
        MilterSession s(r.policy, *r.ctx, *r.store);
        open(s, "stranger@bad.example");
        REQUIRE(s.rcpt("<bob@ours.example>").action == A::cont);
        REQUIRE(message(s, edits).action == A::cont);
        auto* cls = find(edits, MilterEdit::Kind::insert_header, "X-Mailstamp-Class");
        REQUIRE(cls);
        CHECK(cls->value[0] == 'B');
        CHECK(!find(edits, MilterEdit::Kind::quarantine, "mailstamp: " + std::string()));
    }
    SECTION("quarantine") {
        r.policy.unknown = UnknownMode::quarantine;
        MilterSession s(r.policy, *r.ctx, *r.store);
        open(s, "stranger@bad.example");
        REQUIRE(s.rcpt("<bob@ours.example>").action == A::cont);
        REQUIRE(message(s, edits).action == A::cont);
        CHECK(std::any_of(edits.begin(), edits.end(),
                          [](const MilterEdit& e) { return e.kind == MilterEdit::Kind::quarantine; }));
    }
    SECTION("forward") {
        r.policy.unknown = UnknownMode::forward;
        r.policy.forward_to = "spam@ours.example";
        MilterSession s(r.policy, *r.ctx, *r.store);
        open(s, "stranger@bad.example");
        REQUIRE(s.rcpt("<bob@ours.example>").action == A::cont);
        REQUIRE(message(s, edits).action == A::cont);
        CHECK(find(edits, MilterEdit::Kind::del_rcpt, "<bob@ours.example>"));
        CHECK(find(edits, MilterEdit::Kind::add_rcpt, "<spam@ours.example>"));
    }
    SECTION("postage: unstamped mail refused at the end with a token") {
        r.policy.unknown = UnknownMode::postage;
        MilterSession s(r.policy, *r.ctx, *r.store);
        open(s, "stranger@bad.example");
        REQUIRE(s.rcpt("<bob@ours.example>").action == A::cont);
        auto m = message(s, edits);
        CHECK(m.action == A::reject);
        CHECK(m.reply.code == 550);
        CHECK(token_in(m).rfind("bob+", 0) == 0);
        CHECK(edits.empty());
    }
}

TEST_CASE("milter: forward-stamped sends a stranger's stamped mail to the forward address, marked G", "[milter]") {
    MRig r;
    r.policy.unknown = UnknownMode::forward;
    r.policy.forward_to = "spam@ours.example";
    r.policy.postage.min_bits = 8;
    auto stamp = mint_hashcash("bob@ours.example", 8, now());
    REQUIRE(stamp);
    std::vector<MilterEdit> edits;
    auto run = [&](const std::string& id) {
        MilterSession s(r.policy, *r.ctx, *r.store);
        open(s, "stranger@bad.example");
        REQUIRE(s.rcpt("<bob@ours.example>").action == A::cont);
        edits.clear();
        REQUIRE(message(s, edits, {{"X-Hashcash", *stamp}, {"Subject", "paid"}, {"Message-ID", "<" + id + "@bad.example>"}})
                    .action == A::cont);
        auto* cls = find(edits, MilterEdit::Kind::insert_header, "X-Mailstamp-Class");
        REQUIRE(cls);
        return cls->value;
    };
    SECTION("off: the stamped message is delivered to the recipient") {
        CHECK(run("m1")[0] == 'G');
        CHECK(!find(edits, MilterEdit::Kind::add_rcpt, "<spam@ours.example>"));
    }
    SECTION("on: it goes to the forward address, its verdict kept") {
        r.policy.forward_stamped = true;
        std::string cls = run("m2");
        CHECK(cls[0] == 'G');
        CHECK(cls.find("forwarded to spam@ours.example (forward-stamped)") != std::string::npos);
        CHECK(find(edits, MilterEdit::Kind::del_rcpt, "<bob@ours.example>"));
        CHECK(find(edits, MilterEdit::Kind::add_rcpt, "<spam@ours.example>"));
    }
}

TEST_CASE("milter: an oversized header section is refused, not cut", "[milter]") {
    MRig r;
    MilterSession s(r.policy, *r.ctx, *r.store);
    open(s, "friend@good.example");
    REQUIRE(s.rcpt("<bob@ours.example>").action == A::cont);
    std::string big(64 * 1024, 'x');
    for (int i = 0; i < 20; ++i) (void)s.header("X-Big", big);
    std::vector<MilterEdit> edits;
    auto m = message(s, edits);
    CHECK(m.action == A::reject);
    CHECK(m.reply.code == 552);
}

TEST_CASE("milter: a token's use is given back when the MTA refuses the end-of-message edits", "[milter]") {
    MRig r;
    std::string tok;
    {
        MilterSession s(r.policy, *r.ctx, *r.store);
        open(s, "stranger@bad.example");
        tok = token_in(s.rcpt("<bob@ours.example>"));
        REQUIRE(!tok.empty());
    }
    {
        MilterSession s(r.policy, *r.ctx, *r.store);
        open(s, "other@bad.example");
        REQUIRE(s.rcpt("<" + tok + ">").action == A::cont);
        std::vector<MilterEdit> edits;
        REQUIRE(message(s, edits).action == A::cont);
        // The glue could not make the edits: the message is tempfailed, so the token is as it was.
        s.edits_refused();
    }
    {
        MilterSession s(r.policy, *r.ctx, *r.store);
        open(s, "other@bad.example");
        REQUIRE(s.rcpt("<" + tok + ">").action == A::cont);
        std::vector<MilterEdit> edits;
        REQUIRE(message(s, edits).action == A::cont);
        // Taken by a message that went on: the next transaction does not give it back.
        open(s, "third@bad.example");
        s.edits_refused();
    }
    MilterSession s(r.policy, *r.ctx, *r.store);
    open(s, "stranger@bad.example");
    CHECK(s.rcpt("<" + tok + ">").action == A::reject);
}

TEST_CASE("milter: an authenticated user's mail to strangers goes out stamped, the recipients whitelisted for her", "[milter]") {
    MRig r;
    User u;
    u.name = "alice";
    u.hash = "x";
    u.senders = {"alice@ours.example"};
    REQUIRE(r.store->user_add(u));
    r.policy.stamp = StampKind::hashcash;
    r.policy.stamp_bits = "8";
    MilterSession s(r.policy, *r.ctx, *r.store);
    open(s, "alice@ours.example", "alice");
    // Strangers, and a recipient of ours: none refused, no token handed out.
    for (const char* rcpt : {"<carol@elsewhere.example>", "<dave@far.example>", "<bob@ours.example>"}) {
        MilterReply m = s.rcpt(rcpt);
        CHECK(m.action == A::cont);
        CHECK(token_in(m).empty());
    }
    std::vector<MilterEdit> edits;
    CHECK(message(s, edits).action == A::cont);
    int stamps = 0;
    for (const auto& e : edits) {
        if (e.kind == MilterEdit::Kind::insert_header && e.name == "X-Hashcash") ++stamps;
        CHECK(e.name != "X-Mailstamp-Class");
        CHECK(e.kind != MilterEdit::Kind::del_rcpt);
    }
    CHECK(stamps == 3);
    std::vector<std::string> listed;
    REQUIRE(r.store->wl_each([&](const WlEntry& e) {
        if (e.scope == "alice@ours.example") listed.push_back(e.value);
    }));
    std::sort(listed.begin(), listed.end());
    CHECK(listed == std::vector<std::string>{"bob@ours.example", "carol@elsewhere.example", "dave@far.example"});
}

TEST_CASE("milter: an authenticated user may send only as her own addresses", "[milter]") {
    MRig r;
    User u;
    u.name = "alice";
    u.hash = "x";
    u.senders = {"alice@ours.example"};
    REQUIRE(r.store->user_add(u));
    MilterSession s(r.policy, *r.ctx, *r.store);
    REQUIRE(s.connect("192.0.2.7", "4711").action == A::cont);
    MilterReply m = s.mail("<bob@ours.example>", "alice");
    CHECK(m.action == A::reject);
    CHECK(m.reply.code == 553);
}

TEST_CASE("milter: a recipient outside the protected domains is the MTA's to relay: no refusal, no token, no edit", "[milter]") {
    MRig r;
    MilterSession s(r.policy, *r.ctx, *r.store);
    // A client the MTA lets relay (mynetworks), not authenticated, writing to another domain.
    open(s, "someone@ours.example");
    MilterReply m = s.rcpt("<carol@elsewhere.example>");
    CHECK(m.action == A::cont);
    CHECK(token_in(m).empty());
    // One of ours in the same transaction waits for one of its own, as categories do.
    CHECK(s.rcpt("<bob@ours.example>").reply.code == 452);
    std::vector<MilterEdit> edits;
    CHECK(message(s, edits).action == A::cont);
    CHECK(edits.empty());
    // The other way round too: ours first, then a stranger's relay recipient.
    open(s, "stranger@bad.example");
    CHECK(s.rcpt("<friend2@ours.example>").action == A::reject);
    open(s, "friend@good.example");
    REQUIRE(s.rcpt("<bob@ours.example>").action == A::cont);
    CHECK(s.rcpt("<carol@elsewhere.example>").reply.code == 452);
}
