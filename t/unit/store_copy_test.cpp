// store_copy and store_summary (mailstamp-store(8)): every table copied, a batch at a time, on either
// engine as the target (PostgreSQL when MAILSTAMP_TEST_PG_URI names a server: pg_rig.hpp).
#include "libmail/store/store_copy.hpp"
#include "pg_rig.hpp"
#include "tmpdir.hpp"

#include <catch2/catch.hpp>

#include <map>

using namespace mail;

namespace {

std::unique_ptr<Store> open(const std::string& where, bool read_only = false) {
    StoreOptions o;
    o.read_only = read_only;
    auto s = open_store(where, o);
    REQUIRE(s);
    return std::move(*s);
}

std::map<std::string, std::int64_t> rows_of(Store& s) {
    auto sum = store_summary(s);
    REQUIRE(sum);
    CHECK(sum->schema == store_schema_version());
    std::map<std::string, std::int64_t> m;
    for (const auto& t : sum->tables) m[t.table] = t.rows;
    return m;
}

// Something in every table.
void fill(Store& s) {
    REQUIRE(s.domain_add("ours.example", 100));
    for (int i = 0; i < 7; ++i) {
        WlEntry e;
        e.value = "f" + std::to_string(i) + "@good.example";
        e.scope = i % 2 ? "ours.example" : "";
        e.note = "n" + std::to_string(i);
        e.auth = i == 3 ? WlAuth::dkim : WlAuth::automatic;
        e.created = 200 + i;
        REQUIRE(s.wl_insert(e));
    }
    REQUIRE(s.secret_add("token", std::string("\0\xff\x01key\x80", 7), 300));
    REQUIRE(s.secret_add("token", std::string(32, '\x7f'), 301));
    REQUIRE(s.token_revoke(TokenRecord{"tokrevoked", TokenState::revoked, "a@ours.example", 9999, 1}));
    REQUIRE(s.token_consume(TokenRecord{"tokused", TokenState::used, "b@ours.example", 9999, 1}));
    REQUIRE(s.token_reserve(TokenRecord{"tokheld", TokenState::used, "c@ours.example", 9999, 1}, "conn1", 5000));
    REQUIRE(s.spend(SpendRecord{"stamp1", "msg1", 10, 9999}));
    REQUIRE(s.book_add(Book{"b00k", "cert", 10, 2, 9999, 5}));
    // The same volume twice in the same second: two equal rows of the keyless table.
    REQUIRE(s.volume_add("me@ours.example", 3, 1000, 86400));
    REQUIRE(s.volume_add("me@ours.example", 3, 1000, 86400));
    REQUIRE(s.volume_add("you@ours.example", 1, 1001, 86400));
    REQUIRE(s.user_add(User{"alice", "$hash$", 1, 2, {"alice@ours.example", "@ours.example"}}));
    Held h;
    h.id = "0123456789abcdef";
    h.sender = "x@y.example";
    h.rcpts = {"a@ours.example", "b@ours.example"};
    h.subject = "hello";
    h.path = "/var/held/1";
    h.received = 50;
    h.expires = 9999;
    REQUIRE(s.held_add(h));
    REQUIRE(s.digest_add({DigestToken{"dt1", DigestAction::all, "a@ours.example", {"0123456789abcdef"}, "d1", 9999, 0},
                          DigestToken{"dt2", DigestAction::from, "a@ours.example", {}, "d1", 9999, 0}}));
    // source_out in an order its id does not sort in: the list keeps the order rows came in.
    for (const char* id : {"cc", "aa", "bb"}) {
        SourceOut o;
        o.id = id;
        o.domain = std::string(id) + ".example";
        o.sender = "me@ours.example";
        o.rcpts = {"r@" + o.domain};
        o.path = "/spool/" + std::string(id);
        o.state = "queued";
        o.max_gets = 3;
        o.expires = 9999;
        REQUIRE(s.source_out_add(o));
    }
    SourceIn in;
    in.id = "ff";
    in.domain = "their.example";
    in.sender = "t@their.example";
    in.rcpts = {"a@ours.example"};
    in.client = "192.0.2.1";
    in.helo = "mx.their.example";
    in.expires = 9999;
    REQUIRE(s.source_in_add(in));
    REQUIRE(s.rate_hit("192.0.2.1", 100, 60, 10));
}

} // namespace

TEST_CASE("store_copy: every table, in batches; run again it changes nothing; back again the same") {
    TmpDir d;
    std::string src = d.file("src.db");
    {
        auto s = open(src);
        fill(*s);
    }
    auto from = open(src, true);
    auto want = rows_of(*from);
    CHECK(want.size() == store_tables().size());
    CHECK(want["whitelist"] == 7);
    CHECK(want["sent"] == 3);
    CHECK(want["source_out"] == 3);
    for (const auto& [table, n] : want) {
        INFO(table);
        CHECK(n > 0);
    }

    std::string dst = test_store(d, "copy.to");
    auto to = open(dst);
    for (int run = 0; run < 2; ++run) {
        auto c = store_copy(*from, *to, 2);
        REQUIRE(c);
        REQUIRE(c->size() == want.size());
        for (const auto& t : *c) {
            INFO(t.table);
            CHECK(t.from == want[t.table]);
            CHECK(t.to == t.from);
        }
    }
    CHECK(rows_of(*to) == want);

    // The rows themselves: secrets byte for byte, whitelist ids, source_out's order, users' senders.
    auto a = from->secrets("token"), b = to->secrets("token");
    REQUIRE(a);
    REQUIRE(b);
    REQUIRE(b->size() == 2);
    for (std::size_t i = 0; i < 2; ++i) {
        CHECK((*a)[i].key_id == (*b)[i].key_id);
        CHECK((*a)[i].bytes == (*b)[i].bytes);
    }
    std::vector<std::string> wa, wb;
    REQUIRE(from->wl_each([&](const WlEntry& e) {
        wa.push_back(std::to_string(e.id) + e.value + e.scope + e.note + std::string(to_string(e.auth)));
    }));
    REQUIRE(to->wl_each([&](const WlEntry& e) {
        wb.push_back(std::to_string(e.id) + e.value + e.scope + e.note + std::string(to_string(e.auth)));
    }));
    CHECK(wa == wb);
    auto la = from->source_out_list(), lb = to->source_out_list();
    REQUIRE(la);
    REQUIRE(lb);
    REQUIRE(lb->size() == 3);
    for (std::size_t i = 0; i < 3; ++i) CHECK((*la)[i].id == (*lb)[i].id);
    CHECK((*lb)[0].id == "cc");
    auto u = to->user_get("alice");
    REQUIRE(u);
    REQUIRE(*u);
    CHECK((*u)->senders == std::vector<std::string>{"alice@ours.example", "@ours.example"});
    auto tok = to->token_get("tokused");
    REQUIRE(tok);
    REQUIRE(*tok);
    CHECK((*tok)->recipient == "b@ours.example");
    // A new whitelist entry on the copy takes an id of its own.
    WlEntry e;
    e.value = "new@good.example";
    auto added = to->wl_insert(e);
    REQUIRE(added);
    CHECK(*added);

    // And back into a new file.
    std::string back = d.file("back.db");
    {
        auto b2 = open(back);
        auto c = store_copy(*to, *b2, 1000);
        REQUIRE(c);
        for (const auto& t : *c) CHECK(t.to == t.from);
    }
    auto w2 = want;
    w2["whitelist"] = 8;
    auto bk = open(back, true);
    CHECK(rows_of(*bk) == w2);
}

TEST_CASE("store_copy: a target holding a row its source lacks shows in the counts") {
    TmpDir d;
    auto from = open(d.file("a.db"));
    fill(*from);
    auto to = open(test_store(d, "copy.extra"));
    REQUIRE(to->domain_add("theirs.example", 1));
    auto c = store_copy(*from, *to);
    REQUIRE(c);
    bool seen = false;
    for (const auto& t : *c) {
        if (t.table != "domains") {
            CHECK(t.from == t.to);
            continue;
        }
        seen = true;
        CHECK(t.from == 1);
        CHECK(t.to == 2);
    }
    CHECK(seen);
}

TEST_CASE("store_summary: the engine and an empty store's counts") {
    TmpDir d;
    std::string where = test_store(d, "summary");
    auto s = open(where);
    auto sum = store_summary(*s);
    REQUIRE(sum);
    CHECK(sum->engine == (pg_test_uri().empty() ? "sqlite" : "postgresql"));
    CHECK(sum->schema == store_schema_version());
    REQUIRE(sum->tables.size() == store_tables().size());
    for (const auto& t : sum->tables) CHECK(t.rows == 0);
}
