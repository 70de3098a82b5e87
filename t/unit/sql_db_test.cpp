// Unit tests of the SQL layer under the store (libmail/store/sql_db.hpp) on SQLite, and on PostgreSQL when the
// tests have a server (MAILSTAMP_TEST_PG_URI): the same statements behave the same on both.
#include "libmail/store/pg_db.hpp"
#include "libmail/store/sqlite_db.hpp"
#include "pg_rig.hpp"

#include <catch2/catch.hpp>

#include <memory>

using namespace mail;

namespace {

// A connection to an empty database holding table t(k TEXT PRIMARY KEY, n INTEGER, l TEXT): SQLite in memory,
// or a temporary table of a PostgreSQL session; SqlOps over it.
struct MemDb : SqlOps {
    std::unique_ptr<SqlDb> conn;
    bool pg;
    explicit MemDb(bool on_pg) : MemDb(make(on_pg), on_pg) {}
    MemDb(std::unique_ptr<SqlDb> c, bool on_pg) : SqlOps(*c), conn(std::move(c)), pg(on_pg) {
        REQUIRE(exec(pg ? "DROP TABLE IF EXISTS pg_temp.t; CREATE TEMP TABLE t(k TEXT PRIMARY KEY, n BIGINT NOT NULL,"
                          " l TEXT NOT NULL DEFAULT '')"
                        : "CREATE TABLE t(k TEXT PRIMARY KEY, n INTEGER NOT NULL, l TEXT NOT NULL DEFAULT '')")
                    .ok());
    }
    static std::unique_ptr<SqlDb> make(bool on_pg) {
        if (on_pg) {
            auto c = PgDb::connect(pg_test_uri());
            REQUIRE(c);
            auto db = std::make_unique<PgDb>(std::move(*c), pg_test_uri(), 1000, false);
            REQUIRE(db->setup());
            return db;
        }
        sqlite3* db = nullptr;
        REQUIRE(sqlite3_open(":memory:", &db) == SQLITE_OK);
        return std::make_unique<SqliteDb>(db, ":memory:");
    }
    std::string name() const { return conn->name(); }
};

// The engines under test: SQLite, and PostgreSQL when there is a server.
std::vector<bool> engines() {
    if (pg_test_uri().empty()) return {false};
    return {false, true};
}

} // namespace

TEST_CASE("sql_db: join_lines and split_lines keep a list; empty lines are dropped") {
    std::vector<std::string> v{"a@example.org", "b@example.org"};
    CHECK(SqlOps::join_lines(v) == "a@example.org\nb@example.org");
    CHECK(SqlOps::split_lines(SqlOps::join_lines(v)) == v);
    CHECK(SqlOps::join_lines({}).empty());
    CHECK(SqlOps::split_lines("").empty());
    CHECK(SqlOps::split_lines("\na\n\nb\n") == std::vector<std::string>{"a", "b"});
}

TEST_CASE("sql_db: run and write_any bind in order and count the rows changed") {
    for (bool pg : engines()) {
        MemDb db(pg);
        INFO(db.name());
        std::string k = "one";
        CHECK(*db.write_any("INSERT INTO t(k,n) VALUES(?1,?2) ON CONFLICT DO NOTHING", "add", k, std::int64_t{1}));
        CHECK_FALSE(*db.write_any("INSERT INTO t(k,n) VALUES(?1,?2) ON CONFLICT DO NOTHING", "add", k, std::int64_t{2}));
        CHECK(*db.write_run("INSERT INTO t(k,n) VALUES(?1,?2)", "add", std::string_view("two"), std::int64_t{2}) == 1);
        CHECK(*db.write_run("UPDATE t SET n=n+?1", "bump", std::int64_t{10}) == 2);
        auto n = db.first_row(db.bound("SELECT n FROM t WHERE k=?1", k), "read",
                              [](const SqlRow& s) { return s.integer(0); });
        REQUIRE(n.ok());
        CHECK(*n == std::optional<std::int64_t>(11));
        auto none = db.first_row(db.bound("SELECT n FROM t WHERE k=?1", std::string_view("three")), "read",
                                 [](const SqlRow& s) { return s.integer(0); });
        REQUIRE(none.ok());
        CHECK_FALSE(none->has_value());
    }
}

TEST_CASE("sql_db: a failed step is an error naming what was done, and the statement is usable again") {
    for (bool pg : engines()) {
        MemDb db(pg);
        INFO(db.name());
        std::string k = "one";
        REQUIRE(db.write_run("INSERT INTO t(k,n) VALUES(?1,1)", "add", k).ok());
        auto dup = db.write_run("INSERT INTO t(k,n) VALUES(?1,1)", "add again", k);
        REQUIRE_FALSE(dup.ok());
        CHECK(dup.error().kind == ErrorKind::software);
        CHECK(dup.error().text.find("store " + db.name() + ": add again: ") == 0);
        CHECK(dup.error().text.find(pg ? "unique" : "UNIQUE") != std::string::npos);
        std::string k2 = "two";
        CHECK(db.write_run("INSERT INTO t(k,n) VALUES(?1,1)", "add", k2).ok());
        auto bad = db.write_run("INSERT INTO nowhere VALUES(1)", "add");
        REQUIRE_FALSE(bad.ok());
        CHECK(bad.error().kind == ErrorKind::software);
        CHECK(bad.error().text.find(pg ? ": add: " : ": prepare: ") != std::string::npos);
    }
}

TEST_CASE("sql_db: write lands all of it or none; nested writes are part of the outer one") {
    for (bool pg : engines()) {
        MemDb db(pg);
        INFO(db.name());
        std::string a = "a", b = "b";
        auto r = db.write([&]() -> Result<void> {
            if (auto x = db.run("INSERT INTO t(k,n) VALUES(?1,1)", "add", a); !x) return x.error();
            return db.write([&]() -> Result<void> {
                if (auto x = db.run("INSERT INTO t(k,n) VALUES(?1,1)", "add", b); !x) return x.error();
                return Error{ErrorKind::data, "stop"};
            });
        });
        REQUIRE_FALSE(r.ok());
        CHECK(r.error().text == "stop");
        auto count = [&] {
            std::int64_t n = -1;
            REQUIRE(db.step_one(db.prep("SELECT count(*) FROM t"), "count",
                                [&](const SqlRow& s) { n = s.integer(0); })
                        .ok());
            return n;
        };
        CHECK(count() == 0);
        auto add_a = [&]() -> Result<void> { return SqlOps::no_count(db.run("INSERT INTO t(k,n) VALUES(?1,1)", "add", a)); };
        REQUIRE(db.write(add_a).ok());
        CHECK(count() == 1);
    }
}

TEST_CASE("sql_db: step_one wants a row; all_rows and SqlReader read every row in order") {
    for (bool pg : engines()) {
        MemDb db(pg);
        INFO(db.name());
        auto none = db.step_one(db.prep("SELECT n FROM t"), "read one", [](const SqlRow&) {});
        REQUIRE_FALSE(none.ok());
        CHECK(none.error().text.find("read one: ") != std::string::npos);
        std::string x = "x", y = "y", lines = "a\nb";
        REQUIRE(db.write_run("INSERT INTO t(k,n,l) VALUES(?1,?2,?3)", "add", x, std::int64_t{5}, lines).ok());
        REQUIRE(db.write_run("INSERT INTO t(k,n) VALUES(?1,?2)", "add", y, std::int64_t{6}).ok());
        struct Row {
            std::string k;
            std::int64_t n = 0;
            std::vector<std::string> l;
        };
        auto rows = db.all_rows(db.prep("SELECT k,n,l FROM t ORDER BY k"), "list", [](const SqlRow& s) {
            Row r;
            SqlReader(s) >> r.k >> r.n >> r.l;
            return r;
        });
        REQUIRE(rows.ok());
        REQUIRE(rows->size() == 2);
        CHECK((*rows)[0].k == "x");
        CHECK((*rows)[0].n == 5);
        CHECK((*rows)[0].l == std::vector<std::string>{"a", "b"});
        CHECK((*rows)[1].k == "y");
        CHECK((*rows)[1].l.empty());
    }
}

TEST_CASE("sql_db: each_row stops at the first error its function returns") {
    for (bool pg : engines()) {
        MemDb db(pg);
        INFO(db.name());
        for (std::string k : {"a", "b", "c"}) REQUIRE(db.write_run("INSERT INTO t(k,n) VALUES(?1,1)", "add", k).ok());
        std::vector<std::string> seen;
        auto r = db.each_row(db.prep("SELECT k FROM t ORDER BY k"), "walk", [&](const SqlRow& s) -> Result<void> {
            seen.push_back(s.text(0));
            if (seen.size() == 2) return Error{ErrorKind::tempfail, "enough"};
            return {};
        });
        REQUIRE_FALSE(r.ok());
        CHECK(r.error().text == "enough");
        CHECK(seen == std::vector<std::string>{"a", "b"});
        // The walk starts over when run again.
        seen.clear();
        REQUIRE(db.each_row(db.prep("SELECT k FROM t ORDER BY k"), "walk", [&](const SqlRow& s) {
                      seen.push_back(s.text(0));
                  }).ok());
        CHECK(seen.size() == 3);
    }
}
