// The SQLite connection under the store's backend: prepared statements, binding and stepping, errors and
// transactions. Private to store/: only the SQLite backend's files include it.
#pragma once
#include "libmail/base/error.hpp"

#include <sqlite3.h>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace mail {

/// One open SQLite connection and the statements prepared on it.
class SqliteDb {
public:
    /// Takes over db (closed with this object); path names the store in errors.
    SqliteDb(sqlite3* db, std::string path) : db_(db), path_(std::move(path)) {}
    SqliteDb(const SqliteDb&) = delete;
    SqliteDb& operator=(const SqliteDb&) = delete;
    ~SqliteDb();

    /// The error for result code rc of doing what: lock contention, full disks and unreadable files are tempfail.
    Error err(int rc, std::string_view what) const;
    /// Runs sql (one or more statements, no parameters).
    Result<void> exec(const char* sql);
    /// The statement for sql, prepared once per connection, reset and unbound.
    Result<sqlite3_stmt*> prep(const char* sql);
    /// Binds text v to parameter i; v must outlive the statement's next step.
    static void bind(sqlite3_stmt* s, int i, std::string_view v) {
        sqlite3_bind_text(s, i, v.data(), static_cast<int>(v.size()), SQLITE_STATIC);
    }
    /// Binds integer v to parameter i.
    static void bind(sqlite3_stmt* s, int i, std::int64_t v) { sqlite3_bind_int64(s, i, v); }
    /// Column i of the current row as text ("" for NULL).
    static std::string col(sqlite3_stmt* s, int i) {
        auto p = reinterpret_cast<const char*>(sqlite3_column_text(s, i));
        return p ? std::string(p, static_cast<size_t>(sqlite3_column_bytes(s, i))) : std::string();
    }
    /// A list of addresses as stored: one a line (addresses hold no CR or LF).
    static std::string join_lines(const std::vector<std::string>& v);
    /// The list join_lines stored in t.
    static std::vector<std::string> split_lines(const std::string& t);
    /// Steps s to its end and resets it; an error naming what unless it ends without a row.
    Result<void> step_done(sqlite3_stmt* s, std::string_view what);
    /// Runs fn in one IMMEDIATE transaction (inside an open one: as part of it): all of it lands, or none.
    Result<void> write(const std::function<Result<void>()>& fn);

protected:
    sqlite3* db_;
    std::string path_;

private:
    struct Stmt {
        Stmt() = default;
        Stmt(const Stmt&) = delete;
        Stmt& operator=(const Stmt&) = delete;
        ~Stmt() { sqlite3_finalize(s_); }
        sqlite3_stmt* s_ = nullptr;
    };
    std::map<std::string, std::unique_ptr<Stmt>, std::less<>> stmts_;
    int depth_ = 0;
};

} // namespace mail
