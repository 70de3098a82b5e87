// Unit tests of the SQLite connection helpers under the store (libmail/store/sqlite_db.hpp).
#include "libmail/store/sqlite_db.hpp"

#include <catch2/catch.hpp>

using namespace mail;

namespace {

// A connection to a fresh in-memory database holding table t(k TEXT PRIMARY KEY, n INTEGER, l TEXT).
struct MemDb : SqliteDb {
    MemDb() : SqliteDb(open(), ":memory:") {
        REQUIRE(exec("CREATE TABLE t(k TEXT PRIMARY KEY, n INTEGER NOT NULL, l TEXT NOT NULL DEFAULT '')").ok());
    }
    static sqlite3* open() {
        sqlite3* db = nullptr;
        REQUIRE(sqlite3_open(":memory:", &db) == SQLITE_OK);
        return db;
    }
};

} // namespace

TEST_CASE("sqlite_db: join_lines and split_lines keep a list; empty lines are dropped") {
    std::vector<std::string> v{"a@example.org", "b@example.org"};
    CHECK(SqliteDb::join_lines(v) == "a@example.org\nb@example.org");
    CHECK(SqliteDb::split_lines(SqliteDb::join_lines(v)) == v);
    CHECK(SqliteDb::join_lines({}).empty());
    CHECK(SqliteDb::split_lines("").empty());
    CHECK(SqliteDb::split_lines("\na\n\nb\n") == std::vector<std::string>{"a", "b"});
}

TEST_CASE("sqlite_db: run and write_any bind in order and count the rows changed") {
    MemDb db;
    std::string k = "one";
    CHECK(*db.write_any("INSERT OR IGNORE INTO t(k,n) VALUES(?1,?2)", "add", k, std::int64_t{1}));
    CHECK_FALSE(*db.write_any("INSERT OR IGNORE INTO t(k,n) VALUES(?1,?2)", "add", k, std::int64_t{2}));
    CHECK(*db.write_run("INSERT INTO t(k,n) VALUES(?1,?2)", "add", std::string_view("two"), std::int64_t{2}) == 1);
    CHECK(*db.write_run("UPDATE t SET n=n+?1", "bump", std::int64_t{10}) == 2);
    auto n = db.first_row(db.bound("SELECT n FROM t WHERE k=?1", k), "read",
                          [](sqlite3_stmt* s) { return sqlite3_column_int64(s, 0); });
    REQUIRE(n.ok());
    CHECK(*n == std::optional<std::int64_t>(11));
    auto none = db.first_row(db.bound("SELECT n FROM t WHERE k=?1", std::string_view("three")), "read",
                             [](sqlite3_stmt* s) { return sqlite3_column_int64(s, 0); });
    REQUIRE(none.ok());
    CHECK_FALSE(none->has_value());
}

TEST_CASE("sqlite_db: a failed step is an error naming what was done, and the statement is usable again") {
    MemDb db;
    std::string k = "one";
    REQUIRE(db.write_run("INSERT INTO t(k,n) VALUES(?1,1)", "add", k).ok());
    auto dup = db.write_run("INSERT INTO t(k,n) VALUES(?1,1)", "add again", k);
    REQUIRE_FALSE(dup.ok());
    CHECK(dup.error().kind == ErrorKind::software);
    CHECK(dup.error().text.find("store :memory:: add again: ") == 0);
    CHECK(dup.error().text.find("UNIQUE") != std::string::npos);
    std::string k2 = "two";
    CHECK(db.write_run("INSERT INTO t(k,n) VALUES(?1,1)", "add", k2).ok());
    auto bad = db.write_run("INSERT INTO nowhere VALUES(1)", "add");
    REQUIRE_FALSE(bad.ok());
    CHECK(bad.error().text.find(": prepare: ") != std::string::npos);
}

TEST_CASE("sqlite_db: write lands all of it or none; nested writes are part of the outer one") {
    MemDb db;
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
                            [&](sqlite3_stmt* s) { n = sqlite3_column_int64(s, 0); })
                    .ok());
        return n;
    };
    CHECK(count() == 0);
    auto add_a = [&]() -> Result<void> { return SqliteDb::no_count(db.run("INSERT INTO t(k,n) VALUES(?1,1)", "add", a)); };
    REQUIRE(db.write(add_a).ok());
    CHECK(count() == 1);
}

TEST_CASE("sqlite_db: step_one wants a row; all_rows and SqliteRow read every row in order") {
    MemDb db;
    auto none = db.step_one(db.prep("SELECT n FROM t"), "read one", [](sqlite3_stmt*) {});
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
    auto rows = db.all_rows(db.prep("SELECT k,n,l FROM t ORDER BY k"), "list", [](sqlite3_stmt* s) {
        Row r;
        SqliteRow(s) >> r.k >> r.n >> r.l;
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

TEST_CASE("sqlite_db: each_row stops at the first error its function returns") {
    MemDb db;
    for (std::string k : {"a", "b", "c"}) REQUIRE(db.write_run("INSERT INTO t(k,n) VALUES(?1,1)", "add", k).ok());
    std::vector<std::string> seen;
    auto r = db.each_row(db.prep("SELECT k FROM t ORDER BY k"), "walk", [&](sqlite3_stmt* s) -> Result<void> {
        seen.push_back(SqliteDb::col(s, 0));
        if (seen.size() == 2) return Error{ErrorKind::tempfail, "enough"};
        return {};
    });
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().text == "enough");
    CHECK(seen == std::vector<std::string>{"a", "b"});
    // The statement was reset: the same walk starts over.
    seen.clear();
    REQUIRE(db.each_row(db.prep("SELECT k FROM t ORDER BY k"), "walk", [&](sqlite3_stmt* s) {
                  seen.push_back(SqliteDb::col(s, 0));
              }).ok());
    CHECK(seen.size() == 3);
}
