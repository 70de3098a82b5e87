// Stores for the unit tests on either engine: a file in the test's directory, or, when
// MAILSTAMP_TEST_PG_URI names a PostgreSQL database (make test's second pass, t/pg.sh), a fresh database
// on that server for each name, emptied before each test.
#pragma once
#include "tmpdir.hpp"

#include <libpq-fe.h>
#include <sqlite3.h>

#include <catch2/catch.hpp>

#include <cstdlib>
#include <set>
#include <string>

/// The URI of the tests' PostgreSQL server, or "" when the tests run on SQLite only.
inline std::string pg_test_uri() {
    const char* u = std::getenv("MAILSTAMP_TEST_PG_URI");
    return u ? u : "";
}

/// Runs sql on the database at uri; fails the test when it fails.
inline void pg_test_exec(const std::string& uri, const std::string& sql) {
    PGconn* c = PQconnectdb(uri.c_str());
    REQUIRE(PQstatus(c) == CONNECTION_OK);
    PQclear(PQexec(c, "SET client_min_messages = warning"));
    PGresult* r = PQexec(c, sql.c_str());
    INFO(PQresultErrorMessage(r));
    CHECK((PQresultStatus(r) == PGRES_COMMAND_OK || PQresultStatus(r) == PGRES_TUPLES_OK));
    PQclear(r);
    PQfinish(c);
}

/// uri with its database replaced by db (uri is postgresql:///NAME?params or postgresql://host/NAME?params).
inline std::string pg_uri_with_db(const std::string& uri, const std::string& db) {
    auto q = uri.find('?');
    std::string head = uri.substr(0, q), tail = q == std::string::npos ? "" : uri.substr(q);
    auto slash = head.find('/', head.find("//") + 2);
    return head.substr(0, slash) + "/" + db + tail;
}

/// The store named name for this test: d.file(name) on SQLite; on PostgreSQL the empty database unit_NAME
/// (made on first use: names are letters, digits and dots).
inline std::string test_store(const TmpDir& d, const std::string& name) {
    std::string uri = pg_test_uri();
    if (uri.empty()) return d.file(name);
    std::string db = "unit_";
    for (char c : name) db += (std::isalnum(static_cast<unsigned char>(c)) ? c : '_');
    static std::set<std::string> made;
    if (!made.count(db)) {
        pg_test_exec(uri, "DROP DATABASE IF EXISTS " + db + " WITH (FORCE)");
        pg_test_exec(uri, "CREATE DATABASE " + db);
        made.insert(db);
    }
    std::string u = pg_uri_with_db(uri, db);
    pg_test_exec(u, "DROP SCHEMA public CASCADE; CREATE SCHEMA public");
    return u;
}

/// The number of rows in table of the store test_store named (either engine), or -1 when it cannot be read.
inline long long test_store_count(const std::string& store, const std::string& table) {
    std::string sql = "SELECT count(*) FROM " + table;
    long long n = -1;
    if (store.rfind("postgresql://", 0) == 0) {
        PGconn* c = PQconnectdb(store.c_str());
        PGresult* r = PQexec(c, sql.c_str());
        if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1) n = std::atoll(PQgetvalue(r, 0, 0));
        PQclear(r);
        PQfinish(c);
        return n;
    }
    sqlite3* db = nullptr;
    if (sqlite3_open_v2(store.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK) {
        sqlite3_stmt* q = nullptr;
        if (sqlite3_prepare_v2(db, sql.c_str(), -1, &q, nullptr) == SQLITE_OK && sqlite3_step(q) == SQLITE_ROW)
            n = sqlite3_column_int64(q, 0);
        sqlite3_finalize(q);
    }
    sqlite3_close(db);
    return n;
}
