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

// Prepared once per store object, reset before each use.
Result<sqlite3_stmt*> SqliteDb::prep(const char* sql) {
    auto it = stmts_.find(sql);
    if (it == stmts_.end()) {
        auto st = std::make_unique<Stmt>();
        int rc = sqlite3_prepare_v3(db_, sql, -1, SQLITE_PREPARE_PERSISTENT, &st->s_, nullptr);
        if (rc != SQLITE_OK) return err(rc, "prepare");
        it = stmts_.emplace(sql, std::move(st)).first;
    }
    sqlite3_stmt* s = it->second->s_;
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
    return s;
}

std::string SqliteDb::join_lines(const std::vector<std::string>& v) {
    std::string out;
    for (const auto& x : v) {
        if (!out.empty()) out += '\n';
        out += x;
    }
    return out;
}

std::vector<std::string> SqliteDb::split_lines(const std::string& t) {
    std::vector<std::string> out;
    for (std::size_t b = 0; b < t.size();) {
        std::size_t e = t.find('\n', b);
        if (e == std::string::npos) e = t.size();
        if (e > b) out.push_back(t.substr(b, e - b));
        b = e + 1;
    }
    return out;
}

Result<void> SqliteDb::step_done(sqlite3_stmt* s, std::string_view what) {
    int rc = sqlite3_step(s);
    sqlite3_reset(s);
    if (rc != SQLITE_DONE) return err(rc, what);
    return {};
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
