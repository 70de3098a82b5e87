#include "libmail/store/store.hpp"
#include "pg_rig.hpp"
#include "tmpdir.hpp"

#include <catch2/catch.hpp>
#include <sqlite3.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <thread>

using namespace mail;

TEST_CASE("store: a new personal store is 0600, WAL, at the current schema version") {
    TmpDir d;
    std::string p = d.file("sub/dir/store.db");
    StoreOptions o;
    o.create = StoreCreate::dirs;  // as for the default per-user path
    auto s = open_store(p, o);
    REQUIRE(s.ok());
    struct stat st;
    REQUIRE(::stat(p.c_str(), &st) == 0);
    CHECK((st.st_mode & 0777) == 0600);
    REQUIRE(::stat(d.file("sub").c_str(), &st) == 0);
    CHECK((st.st_mode & 0777) == 0700);
    sqlite3* db;
    REQUIRE(sqlite3_open(p.c_str(), &db) == SQLITE_OK);
    sqlite3_stmt* q;
    REQUIRE(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &q, nullptr) == SQLITE_OK);
    REQUIRE(sqlite3_step(q) == SQLITE_ROW);
    CHECK(std::string(reinterpret_cast<const char*>(sqlite3_column_text(q, 0))) == "wal");
    sqlite3_finalize(q);
    REQUIRE(sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &q, nullptr) == SQLITE_OK);
    REQUIRE(sqlite3_step(q) == SQLITE_ROW);
    CHECK(sqlite3_column_int(q, 0) == store_schema_version());
    sqlite3_finalize(q);
    sqlite3_close(db);
}

TEST_CASE("store: in a setgid group-writable directory the store is 0660") {
    TmpDir d;
    std::string dir = d.file("sys");
    REQUIRE(::mkdir(dir.c_str(), 0770) == 0);
    REQUIRE(::chmod(dir.c_str(), 02770) == 0);
    auto s = open_store(dir + "/store.db");
    REQUIRE(s.ok());
    struct stat st;
    REQUIRE(::stat((dir + "/store.db").c_str(), &st) == 0);
    CHECK((st.st_mode & 0777) == 0660);
}

TEST_CASE("store: never creates a missing store, file creates only the last component, dirs the directories") {
    TmpDir d;
    StoreOptions never;
    never.create = StoreCreate::never;
    auto missing = open_store(d.file("typo.db"), never);
    REQUIRE_FALSE(missing.ok());
    CHECK(missing.error().kind == ErrorKind::tempfail);
    CHECK(missing.error().text.find(d.file("typo.db")) != std::string::npos);
    CHECK(::access(d.file("typo.db").c_str(), F_OK) != 0);
    StoreOptions file;
    file.create = StoreCreate::file;
    auto deep = open_store(d.file("no/such/dir/s.db"), file);
    REQUIRE_FALSE(deep.ok());
    CHECK(deep.error().kind == ErrorKind::tempfail);
    CHECK(::access(d.file("no").c_str(), F_OK) != 0);
    { REQUIRE(open_store(d.file("s.db"), file).ok()); }
    CHECK(open_store(d.file("s.db"), never).ok());  // an existing store opens read-write
    StoreOptions dirs;
    dirs.create = StoreCreate::dirs;
    REQUIRE(open_store(d.file("x/mailstamp/s.db"), dirs).ok());
    struct stat st;
    REQUIRE(::stat(d.file("x/mailstamp").c_str(), &st) == 0);
    CHECK((st.st_mode & 0777) == 0700);
}

TEST_CASE("store: a store from a newer program is refused with tempfail") {
    TmpDir d;
    std::string p = d.file("s.db");
    { REQUIRE(open_store(p).ok()); }
    sqlite3* db;
    REQUIRE(sqlite3_open(p.c_str(), &db) == SQLITE_OK);
    REQUIRE(sqlite3_exec(db, "PRAGMA user_version=999", nullptr, nullptr, nullptr) == SQLITE_OK);
    sqlite3_close(db);
    auto s = open_store(p);
    REQUIRE_FALSE(s.ok());
    CHECK(s.error().kind == ErrorKind::tempfail);
    CHECK(s.error().text.find("newer") != std::string::npos);
}

TEST_CASE("store: on PostgreSQL, tables are made once at the current version; a newer schema is refused; a filter "
          "never makes them") {
    if (pg_test_uri().empty()) return;  // the PostgreSQL pass (make test) runs it
    TmpDir d;
    std::string p = test_store(d, "s.db");
    StoreOptions never;
    never.create = StoreCreate::never;
    auto none = open_store(p, never);
    REQUIRE_FALSE(none.ok());
    CHECK(none.error().kind == ErrorKind::tempfail);
    CHECK(none.error().text.find("no mailstamp tables") != std::string::npos);
    { REQUIRE(open_store(p).ok()); }
    { REQUIRE(open_store(p).ok()); }  // opened again: nothing more to do
    // One row per step it took: version 7 (the whole schema), then one for each later version.
    CHECK(test_store_count(p, "mailstamp_schema") == store_schema_version() - 6);
    REQUIRE(open_store(p, never).ok());
    pg_test_exec(p, "INSERT INTO mailstamp_schema(version, applied) VALUES(999, 0)");
    auto s = open_store(p);
    REQUIRE_FALSE(s.ok());
    CHECK(s.error().kind == ErrorKind::tempfail);
    CHECK(s.error().text.find("schema version 999 is newer") != std::string::npos);
}

TEST_CASE("store: a file that is not a database is a tempfail, not a crash") {
    TmpDir d;
    std::string p = d.file("junk.db");
    FILE* f = fopen(p.c_str(), "w");
    REQUIRE(f);
    fputs("this is not sqlite, just some text that is long enough to be a header......................\n", f);
    fclose(f);
    auto s = open_store(p);
    REQUIRE_FALSE(s.ok());
    CHECK(s.error().kind == ErrorKind::tempfail);
}

TEST_CASE("store: whitelist insert is idempotent, lookup, hit and remove") {
    TmpDir d;
    auto s = open_store(test_store(d, "s.db"));
    REQUIRE(s.ok());
    Store& st = **s;
    WlEntry e;
    e.kind = WlKind::address;
    e.value = "a@example.org";
    e.created = 100;
    CHECK(*st.wl_insert(e) == true);
    CHECK(*st.wl_insert(e) == false);
    e.scope = "example.net";
    CHECK(*st.wl_insert(e) == true);
    auto found = st.wl_lookup({"a@example.org"}, {""});
    REQUIRE(found.ok());
    REQUIRE(found->size() == 1);
    CHECK(found->front().scope.empty());
    REQUIRE(st.wl_hit(found->front().id, 500).ok());
    found = st.wl_lookup({"a@example.org"}, {"", "example.net"});
    REQUIRE(found->size() == 2);
    for (auto& f : *found)
        if (f.scope.empty()) {
            CHECK(f.hits == 1);
            CHECK(f.last_hit == 500);
        }
    CHECK(*st.wl_remove(WlKind::address, "a@example.org", "") == true);
    CHECK(*st.wl_remove(WlKind::address, "a@example.org", "") == false);
    CHECK(st.wl_lookup({"a@example.org"}, {""})->empty());
}

TEST_CASE("store: a failed transaction leaves nothing behind") {
    TmpDir d;
    auto s = open_store(test_store(d, "s.db"));
    REQUIRE(s.ok());
    Store& st = **s;
    auto r = st.transaction([&]() -> Result<void> {
        WlEntry e;
        e.value = "x@y.org";
        REQUIRE(st.wl_insert(e).ok());
        return Error{ErrorKind::data, "stop"};
    });
    CHECK_FALSE(r.ok());
    CHECK(st.wl_lookup({"x@y.org"}, {""})->empty());
}

TEST_CASE("store: domains, secrets and token records") {
    TmpDir d;
    auto s = open_store(test_store(d, "s.db"));
    REQUIRE(s.ok());
    Store& st = **s;
    CHECK(*st.domain_add("b.org", 1));
    CHECK(*st.domain_add("a.org", 1));
    CHECK_FALSE(*st.domain_add("a.org", 1));
    CHECK(*st.domain_list() == std::vector<std::string>{"a.org", "b.org"});
    CHECK(*st.domain_remove("a.org"));
    CHECK(*st.domain_list() == std::vector<std::string>{"b.org"});

    CHECK(*st.secret_add("token", std::string("k1\0x", 4), 1) == 1);
    CHECK(*st.secret_add("token", "k2", 2) == 2);
    auto keys = st.secrets("token");
    REQUIRE(keys->size() == 2);
    CHECK(keys->front().key_id == 2);
    CHECK(keys->back().bytes == std::string("k1\0x", 4));

    TokenRecord r{"abc", TokenState::used, "u@x.org", 1000, 10};
    auto first = st.token_consume(r);
    REQUIRE(first.ok());
    CHECK_FALSE(first->has_value());
    auto second = st.token_consume(r);
    REQUIRE(second->has_value());
    CHECK(**second == TokenState::used);
    REQUIRE(st.token_revoke(r).ok());
    CHECK((*st.token_get("abc"))->state == TokenState::revoked);
    CHECK(st.token_list(999)->size() == 1);
    CHECK(st.token_list(1001)->empty());
    CHECK(*st.token_expire(1001) == 1);
    CHECK_FALSE(st.token_get("abc")->has_value());
}

TEST_CASE("store: 20 concurrent writer processes all succeed") {
    TmpDir d;
    std::string p = test_store(d, "s.db");
    std::vector<pid_t> kids;
    for (int i = 0; i < 20; ++i) {
        pid_t pid = fork();
        REQUIRE(pid >= 0);
        if (pid == 0) {
            int rc = 0;
            {
                auto s = open_store(p);
                if (!s) _exit(10);
                for (int j = 0; j < 25 && rc == 0; ++j) {
                    WlEntry e;
                    e.value = "w" + std::to_string(i) + "-" + std::to_string(j) + "@example.org";
                    auto r = (*s)->transaction([&]() -> Result<void> {
                        auto ins = (*s)->wl_insert(e);
                        if (!ins) return ins.error();
                        return {};
                    });
                    if (!r) rc = 11;
                }
            }
            _exit(rc);
        }
        kids.push_back(pid);
    }
    int failures = 0;
    for (pid_t k : kids) {
        int status = 0;
        waitpid(k, &status, 0);
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) ++failures;
    }
    CHECK(failures == 0);
    auto s = open_store(p);
    REQUIRE(s.ok());
    CHECK((*s)->wl_stats()->total == 500);
}

TEST_CASE("store: a spent stamp is fresh once, the same message again, another message a double spend") {
    TmpDir d;
    auto s = open_store(test_store(d, "s.db"));
    REQUIRE(s.ok());
    SpendRecord r{"1:20:261122:a@x::r:1", "<m1>|hash1", 100, 1000};
    CHECK(*(*s)->spend(r) == SpendState::fresh);
    CHECK(*(*s)->spend(r) == SpendState::same_message);
    r.message = "<m2>|hash2";
    CHECK(*(*s)->spend(r) == SpendState::other_message);
    CHECK(*(*s)->spend_expire(999) == 0);
    CHECK(*(*s)->spend_expire(1001) == 1);
    CHECK(*(*s)->spend(r) == SpendState::fresh);
}

TEST_CASE("store: book_take takes every stamp asked for or none, soonest expiry first") {
    TmpDir d;
    auto s = open_store(test_store(d, "s.db"));
    REQUIRE(s.ok());
    CHECK(*(*s)->book_add(Book{"b1", "cert1", 2, 0, 500, 1}));
    CHECK(*(*s)->book_add(Book{"b2", "cert2", 3, 0, 400, 1}));
    CHECK_FALSE(*(*s)->book_add(Book{"b2", "cert2", 3, 0, 400, 1}));
    auto t = (*s)->book_take(4, 100);
    REQUIRE(t.ok());
    REQUIRE(t->size() == 4);
    CHECK((*t)[0].book == "b2");
    CHECK((*t)[2].index == 2);
    CHECK((*t)[3].book == "b1");
    CHECK((*t)[3].index == 0);
    CHECK((*s)->book_take(2, 100)->empty());  // only one left
    CHECK((*s)->book_take(1, 600)->empty());  // expired
    auto last = (*s)->book_take(1, 100);
    REQUIRE(last->size() == 1);
    CHECK((*last)[0].index == 1);
    auto books = (*s)->book_list();
    REQUIRE(books->size() == 2);
    CHECK((*books)[0].next == 3);
    CHECK((*books)[1].next == 2);
}

TEST_CASE("store: sent volume counts the window and forgets older messages") {
    TmpDir d;
    auto s = open_store(test_store(d, "s.db"));
    REQUIRE(s.ok());
    CHECK(*(*s)->volume_add("a@x", 2, 1000, 100) == 0);
    CHECK(*(*s)->volume_add("a@x", 1, 1050, 100) == 2);
    CHECK(*(*s)->volume_add("b@x", 1, 1050, 100) == 0);
    CHECK(*(*s)->volume_add("a@x", 0, 1120, 100) == 1);
}

TEST_CASE("store: the WAL file is kept but emptied when the last connection closes") {
    TmpDir d;
    std::string p = d.path + "/s.db";
    {
        auto s = open_store(p);
        REQUIRE(s.ok());
        for (int i = 0; i < 200; ++i) {
            WlEntry e;
            e.value = "u" + std::to_string(i) + "@example.org";
            REQUIRE((*s)->wl_insert(e).ok());
        }
    }
    struct stat st {};
    REQUIRE(::stat((p + "-wal").c_str(), &st) == 0);  // kept: no inode churn per message
    CHECK(st.st_size == 0);                           // emptied: nothing to replay on the next open
}

TEST_CASE("store: users are added once, read, given a new hash, listed by name and removed") {
    TmpDir d;
    auto s = open_store(test_store(d, "s.db"));
    REQUIRE(s.ok());
    Store& st = **s;
    CHECK(st.user_list()->empty());
    CHECK_FALSE(st.user_get("alice")->has_value());
    CHECK(*st.user_add(User{"carol", "$scrypt$c", 10, 10}));
    CHECK(*st.user_add(User{"alice", "$scrypt$a", 20, 20}));
    CHECK_FALSE(*st.user_add(User{"alice", "$scrypt$other", 30, 30}));  // the name exists: left alone
    CHECK(*st.user_add(User{"Alice", "$scrypt$A", 40, 40}));            // names are exact, case and all

    auto a = st.user_get("alice");
    REQUIRE(a.ok());
    REQUIRE(a->has_value());
    CHECK((*a)->name == "alice");
    CHECK((*a)->hash == "$scrypt$a");
    CHECK((*a)->created == 20);
    CHECK((*a)->changed == 20);

    CHECK(*st.user_set_hash("alice", "$scrypt$new", 50));
    CHECK_FALSE(*st.user_set_hash("bob", "$scrypt$new", 50));
    CHECK_FALSE(st.user_get("bob")->has_value());  // setting a hash creates no user
    a = st.user_get("alice");
    REQUIRE(a->has_value());
    CHECK((*a)->hash == "$scrypt$new");
    CHECK((*a)->created == 20);
    CHECK((*a)->changed == 50);

    auto all = st.user_list();
    REQUIRE(all.ok());
    REQUIRE(all->size() == 3);
    CHECK((*all)[0].name == "Alice");  // byte order
    CHECK((*all)[1].name == "alice");
    CHECK((*all)[1].hash == "$scrypt$new");
    CHECK((*all)[2].name == "carol");
    CHECK((*all)[2].created == 10);

    CHECK(*st.user_remove("alice"));
    CHECK_FALSE(*st.user_remove("alice"));
    CHECK_FALSE(st.user_get("alice")->has_value());
    CHECK(st.user_get("Alice")->has_value());
    CHECK(st.user_list()->size() == 2);
}

TEST_CASE("store: users are kept across opens and take part in transactions") {
    TmpDir d;
    std::string p = test_store(d, "s.db");
    {
        auto s = open_store(p);
        REQUIRE(s.ok());
        CHECK(*(*s)->user_add(User{"dave", "h1", 1, 1}));
        auto r = (*s)->transaction([&]() -> Result<void> {
            REQUIRE(*(*s)->user_add(User{"erin", "h2", 2, 2}));
            REQUIRE(*(*s)->user_remove("dave"));
            return Error{ErrorKind::data, "stop"};
        });
        CHECK_FALSE(r.ok());
    }
    auto s = open_store(p, StoreOptions{1000, true});
    REQUIRE(s.ok());
    auto all = (*s)->user_list();
    REQUIRE(all.ok());
    REQUIRE(all->size() == 1);
    CHECK(all->front().name == "dave");
    CHECK(all->front().hash == "h1");
}

TEST_CASE("store: a version 2 store is migrated to the current version in place, keeping its data") {
    TmpDir d;
    std::string p = d.file("s.db");
    {
        auto s = open_store(p);
        REQUIRE(s.ok());
        CHECK(*(*s)->domain_add("example.org", 1));
        WlEntry e;
        e.value = "friend@good.example";
        e.auth = WlAuth::none;
        e.created = 1;
        CHECK(*(*s)->wl_insert(e));
    }
    // Turn it back into a version 2 store: the users table (2 -> 3), the held queue (3 -> 4) and the
    // SOURCE/GET tables (4 -> 5) go, and the whitelist's auth column (6 -> 7), and the digests' addresses (7 -> 8).
    sqlite3* db;
    REQUIRE(sqlite3_open(p.c_str(), &db) == SQLITE_OK);
    REQUIRE(sqlite3_exec(db, "DROP TABLE users; DROP TABLE held; DROP TABLE source_out; DROP TABLE source_in;"
                             " DROP TABLE source_rate; DROP TABLE token_holds; ALTER TABLE whitelist DROP COLUMN auth;"
                             " DROP TABLE digest_tokens;"
                             " PRAGMA user_version=2",
                         nullptr, nullptr, nullptr) == SQLITE_OK);
    sqlite3_close(db);
    {
        auto ro = open_store(p, StoreOptions{1000, true});  // read-only opens never migrate
        REQUIRE_FALSE(ro.ok());
        CHECK(ro.error().kind == ErrorKind::tempfail);
        CHECK(ro.error().text.find("schema version 2, expected " + std::to_string(store_schema_version())) !=
              std::string::npos);
    }
    auto s = open_store(p);
    REQUIRE(s.ok());
    CHECK(store_schema_version() >= 5);
    CHECK(*(*s)->domain_list() == std::vector<std::string>{"example.org"});
    // An entry from before the auth column needs what the default says: auto (issue 14).
    std::vector<WlEntry> wl;
    REQUIRE((*s)->wl_each([&](const WlEntry& e) { wl.push_back(e); }).ok());
    REQUIRE(wl.size() == 1);
    CHECK(wl.front().auth == WlAuth::automatic);
    CHECK(*(*s)->user_add(User{"frank", "h", 5, 5}));
    CHECK((*(*s)->user_get("frank"))->hash == "h");
    Held h;
    h.id = "0123456789abcdef";
    h.state = HeldState::pending;
    CHECK(*(*s)->held_add(h));
    REQUIRE(sqlite3_open(p.c_str(), &db) == SQLITE_OK);
    sqlite3_stmt* q;
    REQUIRE(sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &q, nullptr) == SQLITE_OK);
    REQUIRE(sqlite3_step(q) == SQLITE_ROW);
    CHECK(sqlite3_column_int(q, 0) == store_schema_version());
    sqlite3_finalize(q);
    sqlite3_close(db);
}

TEST_CASE("store: held messages: add once, find by each key, filter, atomic transitions, remove") {
    TmpDir d;
    auto s = open_store(test_store(d, "s.db"));
    REQUIRE(s.ok());
    Store& st = **s;
    Held h;
    h.id = "00000000000000a1";
    h.state = HeldState::pending;
    h.sender = "ann@x.example";
    h.rcpts = {"bob@ours.example", "carol@ours.example"};
    h.confirm = "conf1";
    h.bounce = "bnc1";
    h.msg_key = "key1";
    h.received = 100;
    CHECK(*st.held_add(h));
    CHECK_FALSE(*st.held_add(h));
    Held g = h;
    g.id = "00000000000000b2";
    g.sender = "dan@y.example";
    g.state = HeldState::quiet;
    g.confirm = "conf2";
    g.received = 200;
    CHECK(*st.held_add(g));
    for (auto [k, v] : {std::pair{HeldKey::id, "00000000000000a1"}, {HeldKey::confirm, "conf1"}, {HeldKey::bounce, "bnc1"},
                        {HeldKey::msg_key, "key1"}}) {
        auto f = st.held_find(k, v);
        REQUIRE(f.ok());
        REQUIRE(f->has_value());
        CHECK((*f)->rcpts == h.rcpts);
    }
    CHECK_FALSE(st.held_find(HeldKey::confirm, "nope")->has_value());
    std::vector<std::string> seen;
    auto collect = [&](const Held& x) { seen.push_back(x.id); };
    REQUIRE(st.held_each(HeldFilter{}, collect).ok());
    CHECK(seen == std::vector<std::string>{"00000000000000a1", "00000000000000b2"});
    seen.clear();
    REQUIRE(st.held_each(HeldFilter{150, "", {}}, collect).ok());
    CHECK(seen == std::vector<std::string>{"00000000000000a1"});
    seen.clear();
    REQUIRE(st.held_each(HeldFilter{INT64_MAX, "dan@y.example", {}}, collect).ok());
    CHECK(seen == std::vector<std::string>{"00000000000000b2"});
    seen.clear();
    REQUIRE(st.held_each(HeldFilter{INT64_MAX, "", {HeldState::quiet, HeldState::deletable}}, collect).ok());
    CHECK(seen == std::vector<std::string>{"00000000000000b2"});
    // Of two releases, one wins.
    CHECK(*st.held_transition(h.id, {HeldState::pending, HeldState::quiet}, HeldState::releasing, 300, "confirmed"));
    CHECK_FALSE(*st.held_transition(h.id, {HeldState::pending, HeldState::quiet}, HeldState::releasing, 301, "confirmed"));
    CHECK((*st.held_find(HeldKey::id, h.id))->note == "confirmed");
    REQUIRE(st.held_set_challenged(g.id, 400).ok());
    CHECK((*st.held_find(HeldKey::id, g.id))->challenged == 400);
    CHECK(*st.held_remove(h.id));
    CHECK_FALSE(*st.held_remove(h.id));
}

TEST_CASE("store: held states: stable names, stored as text, an unknown stored state is an error") {
    const std::pair<HeldState, const char*> names[] = {
        {HeldState::held, "held"},           {HeldState::pending, "pending"},     {HeldState::quiet, "quiet"},
        {HeldState::releasing, "releasing"}, {HeldState::deletable, "deletable"}, {HeldState::match, "match"},
        {HeldState::ended, "ended"}};
    for (auto [st, name] : names) {
        CHECK(to_string(st) == name);
        CHECK(parse_held_state(name) == st);
    }
    CHECK_FALSE(parse_held_state("Held").has_value());
    CHECK_FALSE(parse_held_state("").has_value());

    TmpDir d;
    const std::string path = d.file("s.db");
    auto s = open_store(path);
    REQUIRE(s.ok());
    Store& store = **s;
    Held h;
    h.id = "00000000000000c3";
    h.state = HeldState::quiet;
    h.received = 10;
    REQUIRE(*store.held_add(h));
    REQUIRE(*store.held_transition(h.id, {HeldState::quiet}, HeldState::deletable, 20, "expired"));
    sqlite3* db = nullptr;
    REQUIRE(sqlite3_open(path.c_str(), &db) == SQLITE_OK);
    auto state_text = [&] {
        sqlite3_stmt* q = nullptr;
        REQUIRE(sqlite3_prepare_v2(db, "SELECT state FROM held WHERE id='00000000000000c3'", -1, &q, nullptr) == SQLITE_OK);
        REQUIRE(sqlite3_step(q) == SQLITE_ROW);
        std::string t = reinterpret_cast<const char*>(sqlite3_column_text(q, 0));
        sqlite3_finalize(q);
        return t;
    };
    CHECK(state_text() == "deletable");  // the text stored before HeldState: no schema change
    REQUIRE(sqlite3_exec(db, "UPDATE held SET state='frozen' WHERE id='00000000000000c3'", nullptr, nullptr, nullptr) ==
            SQLITE_OK);
    sqlite3_close(db);
    // Never guessed at: a row in a state mailstamp does not write is a tempfail naming it.
    auto f = store.held_find(HeldKey::id, h.id);
    REQUIRE_FALSE(f.ok());
    CHECK(f.error().kind == ErrorKind::tempfail);
    CHECK(f.error().text.find("unknown state 'frozen'") != std::string::npos);
    int calls = 0;
    auto e = store.held_each(HeldFilter{}, [&](const Held&) { ++calls; });
    CHECK_FALSE(e.ok());
    CHECK(calls == 0);
    // A filter by state never meets it.
    REQUIRE(store.held_each(HeldFilter{INT64_MAX, "", {HeldState::deletable}}, [&](const Held&) { ++calls; }).ok());
    CHECK(calls == 0);
}

namespace {

SourceOut outgoing(std::string id, std::int64_t created) {
    SourceOut o;
    o.id = std::move(id);
    o.domain = "them.example";
    o.sender = "ann@ours.example";
    o.rcpts = {"bob@them.example", "carol@them.example"};
    o.path = "/spool/out/m1";
    o.size = 1234;
    o.created = created;
    o.expires = 5000;
    o.max_gets = 2;
    o.state = "notified";
    return o;
}

SourceIn partial(std::string domain, std::string id, std::int64_t received) {
    SourceIn p;
    p.id = std::move(id);
    p.domain = std::move(domain);
    p.sender = "dan@" + p.domain;
    p.rcpts = {"erin@ours.example"};
    p.client = "192.0.2.7";
    p.helo = "mx." + p.domain;
    p.received = received;
    p.expires = received + 3600;
    return p;
}

} // namespace

TEST_CASE("store: outgoing SOURCE rows keep every field, once per id, oldest first", "[store][source]") {
    TmpDir d;
    auto s = open_store(test_store(d, "s.db"));
    REQUIRE(s.ok());
    Store& st = **s;
    CHECK(st.source_out_list()->empty());
    SourceOut a = outgoing("0123456789abcdef0123456789abcdef", 200);
    a.gets = 1;
    a.max_gets = 3;
    a.state = "queued";
    a.tries = 2;
    a.next_try = 250;
    a.note = "421 try later";
    SourceOut b = outgoing("fedcba9876543210fedcba9876543210", 100);
    b.domain = "other.example";
    b.rcpts = {"x@other.example"};
    SourceOut c = outgoing("00000000000000000000000000000000", 200);  // same created as a: rowid breaks the tie
    c.rcpts = {};
    CHECK(*st.source_out_add(a));
    CHECK(*st.source_out_add(b));
    CHECK(*st.source_out_add(c));
    SourceOut dup = b;
    dup.domain = "changed.example";
    CHECK_FALSE(*st.source_out_add(dup));  // the id exists: left alone

    auto all = st.source_out_list();
    REQUIRE(all.ok());
    REQUIRE(all->size() == 3);
    CHECK((*all)[0].id == b.id);
    CHECK((*all)[0].domain == "other.example");
    CHECK((*all)[1].id == a.id);
    CHECK((*all)[2].id == c.id);
    CHECK((*all)[2].rcpts.empty());
    const SourceOut& r = (*all)[1];
    CHECK(r.domain == a.domain);
    CHECK(r.sender == a.sender);
    CHECK(r.rcpts == a.rcpts);
    CHECK(r.path == a.path);
    CHECK(r.size == 1234);
    CHECK(r.created == 200);
    CHECK(r.expires == 5000);
    CHECK(r.gets == 1);
    CHECK(r.max_gets == 3);
    CHECK(r.state == "queued");
    CHECK(r.tries == 2);
    CHECK(r.next_try == 250);
    CHECK(r.note == "421 try later");

    // The rows of one message share its file.
    CHECK(*st.source_out_path_uses("/spool/out/m1") == 3);
    CHECK(*st.source_out_path_uses("/spool/out/none") == 0);
    CHECK(*st.source_out_remove(b.id));
    CHECK_FALSE(*st.source_out_remove(b.id));
    CHECK(*st.source_out_path_uses("/spool/out/m1") == 2);
    CHECK(st.source_out_list()->size() == 2);

    REQUIRE(st.source_out_update(a.id, "failed", 3, 0, "550 no such user").ok());
    REQUIRE(st.source_out_update("ffffffffffffffffffffffffffffffff", "sent", 1, 0, "").ok());  // no row: nothing
    all = st.source_out_list();
    REQUIRE(all->size() == 2);
    CHECK((*all)[0].state == "failed");
    CHECK((*all)[0].tries == 3);
    CHECK((*all)[0].next_try == 0);
    CHECK((*all)[0].note == "550 no such user");
    CHECK((*all)[0].gets == 1);  // not touched by an update
}

TEST_CASE("store: an outgoing row is claimed for a notice only when queued and due, once", "[store][source]") {
    TmpDir d;
    auto s = open_store(test_store(d, "s.db"));
    REQUIRE(s.ok());
    Store& st = **s;
    SourceOut o = outgoing("0123456789abcdef0123456789abcdef", 100);
    o.state = "queued";
    o.next_try = 500;
    REQUIRE(*st.source_out_add(o));
    CHECK_FALSE(*st.source_out_claim(o.id, 499, 600));  // not due yet
    CHECK(*st.source_out_claim(o.id, 500, 600));
    CHECK(st.source_out_list()->front().next_try == 600);
    CHECK_FALSE(*st.source_out_claim(o.id, 500, 700));  // taken: another process would get false
    CHECK(*st.source_out_claim(o.id, 650, 700));        // due again when the claim runs out
    REQUIRE(st.source_out_update(o.id, "notified", 1, 0, "250 ok"));
    CHECK_FALSE(*st.source_out_claim(o.id, 10000, 10100));  // no longer queued
    CHECK(*st.source_out_remove(o.id));
    CHECK_FALSE(*st.source_out_claim(o.id, 10000, 10100));  // gone
}

TEST_CASE("store: GET serves a notified row before expiry, max_gets times, counting each", "[store][source]") {
    TmpDir d;
    auto s = open_store(test_store(d, "s.db"));
    REQUIRE(s.ok());
    Store& st = **s;
    SourceOut o = outgoing("0123456789abcdef0123456789abcdef", 100);
    o.state = "queued";
    o.expires = 1000;
    o.max_gets = 3;
    REQUIRE(*st.source_out_add(o));
    // Queued is served too: the peer may GET before the sender has recorded the 250 to its SOURCE.
    auto q = st.source_out_get(o.id, 200);
    REQUIRE(q.ok());
    REQUIRE(q->has_value());
    CHECK((*q)->gets == 1);
    CHECK_FALSE(st.source_out_get("ffffffffffffffffffffffffffffffff", 200)->has_value());
    REQUIRE(st.source_out_update(o.id, "notified", 1, 0, "250 ok"));
    CHECK_FALSE(st.source_out_get(o.id, 1000)->has_value());  // expired: served until expires, not at it
    CHECK(st.source_out_list()->front().gets == 1);            // refusals count nothing
    for (int i = 2; i <= 3; ++i) {
        auto g = st.source_out_get(o.id, 999);
        REQUIRE(g.ok());
        REQUIRE(g->has_value());
        CHECK((*g)->gets == i);
        CHECK((*g)->id == o.id);
        CHECK((*g)->path == o.path);
        CHECK((*g)->rcpts == o.rcpts);
        CHECK((*g)->state == "notified");
    }
    CHECK_FALSE(st.source_out_get(o.id, 999)->has_value());  // max_gets reached
    CHECK(st.source_out_list()->front().gets == 3);

    SourceOut x = outgoing("fedcba9876543210fedcba9876543210", 100);
    x.state = "sent";
    REQUIRE(*st.source_out_add(x));
    CHECK_FALSE(st.source_out_get(x.id, 200)->has_value());  // given by DATA: no GET
}

TEST_CASE("store: of concurrent GETs from two store objects exactly max_gets are served", "[store][source]") {
    TmpDir d;
    std::string p = test_store(d, "s.db");
    SourceOut o = outgoing("0123456789abcdef0123456789abcdef", 100);
    o.max_gets = 3;
    o.expires = 1000;
    {
        auto s = open_store(p);
        REQUIRE(s.ok());
        REQUIRE(*(*s)->source_out_add(o));
    }
    // One store object per thread, as two msourced processes would have: separate connections to one file.
    // Each is opened with SQLITE_OPEN_FULLMUTEX, so store_multithread_init is not needed for this.
    auto s1 = open_store(p);
    auto s2 = open_store(p);
    REQUIRE(s1.ok());
    REQUIRE(s2.ok());
    std::atomic<int> served{0}, failed{0};
    auto run = [&](Store& st) {
        for (int i = 0; i < 10; ++i) {
            auto g = st.source_out_get(o.id, 500);
            if (!g)
                ++failed;
            else if (g->has_value())
                ++served;
        }
    };
    std::thread t1(run, std::ref(**s1));
    std::thread t2(run, std::ref(**s2));
    t1.join();
    t2.join();
    CHECK(failed == 0);
    CHECK(served == 3);
    CHECK((*s1)->source_out_list()->front().gets == 3);
}

TEST_CASE("store: partial SOURCE rows keep every field, once per (domain, id), and are claimed once", "[store][source]") {
    TmpDir d;
    auto s = open_store(test_store(d, "s.db"));
    REQUIRE(s.ok());
    Store& st = **s;
    CHECK(st.source_in_list()->empty());
    SourceIn a = partial("b.example", "0123456789abcdef0123456789abcdef", 300);
    a.rcpts = {"erin@ours.example", "fay@ours.example"};
    a.tries = 1;
    a.next_try = 400;
    a.note = "connection refused";
    SourceIn b = partial("b.example", "11111111111111111111111111111111", 200);
    SourceIn c = partial("a.example", "22222222222222222222222222222222", 900);
    SourceIn e = partial("a.example", "0123456789abcdef0123456789abcdef", 900);  // same id, other domain
    CHECK(*st.source_in_add(a));
    CHECK(*st.source_in_add(b));
    CHECK(*st.source_in_add(c));
    CHECK(*st.source_in_add(e));
    SourceIn dup = a;
    dup.sender = "other@b.example";
    CHECK_FALSE(*st.source_in_add(dup));

    auto all = st.source_in_list();
    REQUIRE(all.ok());
    REQUIRE(all->size() == 4);
    CHECK((*all)[0].id == c.id);  // a.example, received 900, added first
    CHECK((*all)[1].id == e.id);
    CHECK((*all)[1].domain == "a.example");
    CHECK((*all)[2].id == b.id);  // b.example, received 200
    CHECK((*all)[3].id == a.id);  // b.example, received 300
    const SourceIn& r = (*all)[3];
    CHECK(r.domain == "b.example");
    CHECK(r.sender == "dan@b.example");
    CHECK(r.rcpts == a.rcpts);
    CHECK(r.client == "192.0.2.7");
    CHECK(r.helo == "mx.b.example");
    CHECK(r.received == 300);
    CHECK(r.expires == 3900);
    CHECK(r.tries == 1);
    CHECK(r.next_try == 400);
    CHECK(r.note == "connection refused");

    CHECK_FALSE(*st.source_in_claim("b.example", a.id, 399, 500));  // not due
    CHECK(*st.source_in_claim("b.example", a.id, 400, 500));
    CHECK_FALSE(*st.source_in_claim("b.example", a.id, 400, 500));  // a second fetcher gets false
    CHECK(*st.source_in_claim("a.example", a.id, 400, 500));        // the same id of another domain is its own row
    REQUIRE(st.source_in_retry("b.example", a.id, 2, 800, "451 busy").ok());
    all = st.source_in_list();
    CHECK((*all)[3].tries == 2);
    CHECK((*all)[3].next_try == 800);
    CHECK((*all)[3].note == "451 busy");
    CHECK((*all)[1].tries == 0);  // the other domain's row is untouched
    CHECK_FALSE(*st.source_in_claim("b.example", a.id, 799, 900));
    CHECK(*st.source_in_claim("b.example", a.id, 800, 900));

    CHECK(*st.source_in_remove("b.example", a.id));
    CHECK_FALSE(*st.source_in_remove("b.example", a.id));
    CHECK_FALSE(*st.source_in_claim("b.example", a.id, 10000, 10100));  // gone
    CHECK(st.source_in_list()->size() == 3);
}

TEST_CASE("store: rate_hit allows limit events per fixed window, then starts again", "[store][source]") {
    TmpDir d;
    std::string p = test_store(d, "s.db");
    auto s = open_store(p);
    REQUIRE(s.ok());
    Store& st = **s;
    // Window 100: times 1000..1099 are one window.
    CHECK(*st.rate_hit("192.0.2.1", 1000, 100, 3));
    CHECK(*st.rate_hit("192.0.2.1", 1050, 100, 3));
    CHECK(*st.rate_hit("192.0.2.2", 1050, 100, 3));  // another key counts apart
    CHECK(*st.rate_hit("192.0.2.1", 1099, 100, 3));
    CHECK_FALSE(*st.rate_hit("192.0.2.1", 1099, 100, 3));  // the fourth in the window
    CHECK_FALSE(*st.rate_hit("192.0.2.1", 1099, 100, 3));
    CHECK(*st.rate_hit("192.0.2.1", 1099, 50, 3));  // another window length counts apart
    CHECK(*st.rate_hit("192.0.2.1", 1100, 100, 3));  // the next window
    CHECK(*st.rate_hit("192.0.2.1", 1150, 100, 3));
    CHECK(*st.rate_hit("192.0.2.1", 1199, 100, 3));
    CHECK_FALSE(*st.rate_hit("192.0.2.1", 1199, 100, 3));
    CHECK_FALSE(*st.rate_hit("192.0.2.3", 1200, 100, 0));  // limit 0 allows nothing
    CHECK_FALSE(st.rate_hit("192.0.2.1", 1200, 0, 3).ok());

    // Rows of past windows, of every key, are gone once a later hit passes their end.
    CHECK(*st.rate_hit("192.0.2.9", 5000, 100, 3));
    CHECK(test_store_count(p, "source_rate") == 1);
}

TEST_CASE("store: rate_count looks at and adds to the windows of rate_hit", "[store][auth]") {
    TmpDir d;
    auto s = open_store(test_store(d, "s.db"));
    REQUIRE(s.ok());
    Store& st = **s;
    CHECK(*st.rate_count("auth:fail 192.0.2.1", 1000, 100, 0) == 0);  // looking writes nothing
    CHECK(*st.rate_count("auth:fail 192.0.2.1", 1000, 100, 1) == 1);
    CHECK(*st.rate_count("auth:fail 192.0.2.1", 1099, 100, 1) == 2);
    CHECK(*st.rate_count("auth:fail 192.0.2.1", 1099, 100, 0) == 2);
    CHECK(*st.rate_count("auth:fail 192.0.2.2", 1099, 100, 0) == 0);  // another key counts apart
    CHECK(*st.rate_count("auth:fail 192.0.2.1", 1099, 50, 0) == 0);   // another window length too
    CHECK(*st.rate_count("auth:fail 192.0.2.1", 1100, 100, 0) == 0);  // the next window starts at 0
    CHECK(*st.rate_count("auth:fail 192.0.2.1", 1100, 100, 3) == 3);
    // The same rows as rate_hit: a hit is one more, and a count sees it.
    CHECK(*st.rate_hit("auth:fail 192.0.2.1", 1150, 100, 4));
    CHECK(*st.rate_count("auth:fail 192.0.2.1", 1150, 100, 0) == 4);
    CHECK_FALSE(st.rate_count("auth:fail 192.0.2.1", 1150, 0, 1).ok());
}

TEST_CASE("store: a version 4 store is migrated to the current version, keeping its data", "[store][source]") {
    TmpDir d;
    std::string p = d.file("s.db");
    Held h;
    h.id = "0123456789abcdef";
    h.state = HeldState::pending;
    h.sender = "ann@x.example";
    h.rcpts = {"bob@ours.example"};
    {
        auto s = open_store(p);
        REQUIRE(s.ok());
        CHECK(*(*s)->domain_add("example.org", 1));
        CHECK(*(*s)->user_add(User{"gina", "h", 1, 1}));
        CHECK(*(*s)->held_add(h));
    }
    // Turn it back into a version 4 store: the SOURCE/GET tables (4 -> 5) go.
    sqlite3* db;
    REQUIRE(sqlite3_open(p.c_str(), &db) == SQLITE_OK);
    REQUIRE(sqlite3_exec(db, "DROP TABLE source_out; DROP TABLE source_in; DROP TABLE source_rate;"
                             " PRAGMA user_version=4",
                         nullptr, nullptr, nullptr) == SQLITE_OK);
    // ... and the token reservations and users' senders (5 -> 6).
    REQUIRE(sqlite3_exec(db, "DROP TABLE token_holds; ALTER TABLE users DROP COLUMN senders", nullptr, nullptr,
                         nullptr) == SQLITE_OK);
    // ... and the whitelist's auth column (6 -> 7), and the digests' addresses (7 -> 8).
    REQUIRE(sqlite3_exec(db, "ALTER TABLE whitelist DROP COLUMN auth; DROP TABLE digest_tokens", nullptr, nullptr,
                         nullptr) == SQLITE_OK);
    sqlite3_close(db);
    {
        auto ro = open_store(p, StoreOptions{1000, true});
        REQUIRE_FALSE(ro.ok());
        CHECK(ro.error().text.find("schema version 4, expected " + std::to_string(store_schema_version())) != std::string::npos);
    }
    auto s = open_store(p);
    REQUIRE(s.ok());
    CHECK(store_schema_version() >= 5);
    CHECK(*(*s)->domain_list() == std::vector<std::string>{"example.org"});
    CHECK((*(*s)->user_get("gina"))->hash == "h");
    auto g = (*s)->held_find(HeldKey::id, h.id);
    REQUIRE(g->has_value());
    CHECK((*g)->rcpts == h.rcpts);
    CHECK(*(*s)->source_out_add(outgoing("0123456789abcdef0123456789abcdef", 1)));
    CHECK(*(*s)->source_in_add(partial("a.example", "0123456789abcdef0123456789abcdef", 1)));
    CHECK(*(*s)->rate_hit("192.0.2.1", 1, 60, 1));
    REQUIRE(sqlite3_open(p.c_str(), &db) == SQLITE_OK);
    sqlite3_stmt* q;
    REQUIRE(sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &q, nullptr) == SQLITE_OK);
    REQUIRE(sqlite3_step(q) == SQLITE_ROW);
    CHECK(sqlite3_column_int(q, 0) == store_schema_version());
    sqlite3_finalize(q);
    sqlite3_close(db);
}

TEST_CASE("store: the SOURCE state column takes only the four states", "[store][source]") {
    TmpDir d;
    auto s = open_store(d.file("s.db"));
    REQUIRE(s.ok());
    SourceOut o = outgoing("0123456789abcdef0123456789abcdef", 1);
    o.state = "bogus";
    CHECK_FALSE((*s)->source_out_add(o).ok());
    o.state = "queued";
    REQUIRE(*(*s)->source_out_add(o));
    CHECK_FALSE((*s)->source_out_update(o.id, "done", 1, 0, "").ok());
    CHECK((*s)->source_out_list()->front().state == "queued");
}
