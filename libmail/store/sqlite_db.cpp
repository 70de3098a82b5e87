// The SQLite connection under the store's backend (sqlite_db.hpp).
#include "libmail/store/sqlite_db.hpp"

#include <cstring>

namespace mail {

namespace {

// Lock contention, full disks and unreadable files are all "try again later":
// the MTA keeps the message and retries (DESIGN §4).
ErrorKind kind_of(int rc) {
    switch (rc & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
    case SQLITE_FULL:
    case SQLITE_IOERR:
    case SQLITE_CANTOPEN:
    case SQLITE_PROTOCOL:
    case SQLITE_NOMEM:
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
        return ErrorKind::tempfail;
    case SQLITE_READONLY:
    case SQLITE_PERM:
    case SQLITE_AUTH:
        return ErrorKind::tempfail;
    default:
        return ErrorKind::software;
    }
}

} // namespace

SqliteDb::~SqliteDb() {
    stmts_.clear();
    sqlite3_close_v2(db_);
}

Error SqliteDb::err(int rc, std::string_view what) const {
    std::string t = "store ";
    t += path_;
    t += ": ";
    t += what;
    t += ": ";
    t += sqlite3_errstr(rc);
    const char* m = sqlite3_errmsg(db_);
    if (m && std::strcmp(m, sqlite3_errstr(rc)) != 0) {
        t += " (";
        t += m;
        t += ")";
    }
    return Error{kind_of(rc), t};
}

Result<void> SqliteDb::exec(const char* sql) {
    int rc = sqlite3_exec(db_, sql, nullptr, nullptr, nullptr);
    if (rc != SQLITE_OK) return err(rc, "exec");
    return {};
}

namespace {

// The current row of a stepped SQLite statement.
class SqliteRow final : public SqlRow {
public:
    explicit SqliteRow(sqlite3_stmt* s) : s_(s) {}
    std::string text(int i) const override {
        auto p = reinterpret_cast<const char*>(sqlite3_column_text(s_, i));
        return p ? std::string(p, static_cast<size_t>(sqlite3_column_bytes(s_, i))) : std::string();
    }
    std::int64_t integer(int i) const override { return sqlite3_column_int64(s_, i); }
    std::string blob(int i) const override {
        auto p = static_cast<const char*>(sqlite3_column_blob(s_, i));
        return p ? std::string(p, static_cast<size_t>(sqlite3_column_bytes(s_, i))) : std::string();
    }

private:
    sqlite3_stmt* s_;
};

} // namespace

// Prepared once per store object, reset and bound before each use.
Result<sqlite3_stmt*> SqliteDb::prep(const SqlQuery& q) {
    auto it = stmts_.find(q.sql);
    if (it == stmts_.end()) {
        auto st = std::make_unique<Stmt>();
        int rc = sqlite3_prepare_v3(db_, q.sql, -1, SQLITE_PREPARE_PERSISTENT, &st->s_, nullptr);
        if (rc != SQLITE_OK) return err(rc, "prepare");
        it = stmts_.emplace(q.sql, std::move(st)).first;
    }
    sqlite3_stmt* s = it->second->s_;
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
    int i = 0;
    for (const auto& a : q.args) {
        ++i;
        switch (a.type) {
        case SqlArg::Type::text:
            sqlite3_bind_text(s, i, a.text.data(), static_cast<int>(a.text.size()), SQLITE_STATIC);
            break;
        case SqlArg::Type::integer: sqlite3_bind_int64(s, i, a.integer); break;
        case SqlArg::Type::blob:
            sqlite3_bind_blob(s, i, a.text.data(), static_cast<int>(a.text.size()), SQLITE_STATIC);
            break;
        }
    }
    return s;
}

Result<std::int64_t> SqliteDb::changes(const SqlQuery& q, std::string_view what) {
    auto s = prep(q);
    if (!s) return s.error();
    int rc = sqlite3_step(*s);
    sqlite3_reset(*s);
    if (rc != SQLITE_DONE) return err(rc, what);
    return sqlite3_changes(db_);
}

Result<void> SqliteDb::rows(const SqlQuery& q, std::string_view what,
                            const std::function<Result<bool>(const SqlRow&)>& fn) {
    auto s = prep(q);
    if (!s) return s.error();
    SqliteRow row(*s);
    int rc;
    while ((rc = sqlite3_step(*s)) == SQLITE_ROW) {
        auto more = fn(row);
        if (!more || !*more) {
            sqlite3_reset(*s);
            if (!more) return more.error();
            return {};
        }
    }
    sqlite3_reset(*s);
    if (rc != SQLITE_DONE) return err(rc, what);
    return {};
}

Result<int> SqliteDb::user_version() {
    int v = 0;
    auto r = rows(SqlQuery{"PRAGMA user_version", {}}, "read schema version", [&](const SqlRow& row) -> Result<bool> {
        v = static_cast<int>(row.integer(0));
        return false;
    });
    if (!r) return r.error();
    return v;
}

Result<void> SqliteDb::write(const std::function<Result<void>()>& fn) {
    if (depth_ > 0) {  // nested: part of the outer transaction
        ++depth_;
        auto r = fn();
        --depth_;
        return r;
    }
    // IMMEDIATE takes the write lock up front, so the busy timeout applies
    // instead of a deadlock-avoidance SQLITE_BUSY at the first write.
    if (auto r = exec("BEGIN IMMEDIATE"); !r) return r;
    ++depth_;
    auto r = fn();
    --depth_;
    if (!r) {
        (void)exec("ROLLBACK");
        return r;
    }
    if (auto c = exec("COMMIT"); !c) {
        (void)exec("ROLLBACK");
        return c;
    }
    return {};
}

} // namespace mail
