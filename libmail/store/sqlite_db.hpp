// The SQLite connection under the store's backend (SqlDb on SQLite): statements prepared once per connection,
// errors and IMMEDIATE transactions. Private to store/.
#pragma once
#include "libmail/store/sql_db.hpp"

#include <sqlite3.h>

#include <map>
#include <memory>

namespace mail {

/// One open SQLite connection and the statements prepared on it.
class SqliteDb final : public SqlDb {
public:
    /// Takes over db (closed with this object); path names the store in errors.
    SqliteDb(sqlite3* db, std::string path) : db_(db), path_(std::move(path)) {}
    SqliteDb(const SqliteDb&) = delete;
    SqliteDb& operator=(const SqliteDb&) = delete;
    ~SqliteDb() override;

    const std::string& name() const override { return path_; }
    Result<void> exec(const char* sql) override;
    Result<std::int64_t> changes(const SqlQuery& q, std::string_view what) override;
    Result<void> rows(const SqlQuery& q, std::string_view what,
                      const std::function<Result<bool>(const SqlRow&)>& fn) override;
    /// One IMMEDIATE transaction: SQLite's one writer at a time.
    Result<void> write(const std::function<Result<void>()>& fn) override;

    /// The error for result code rc of doing what: lock contention, full disks and unreadable files are tempfail.
    Error err(int rc, std::string_view what) const;
    /// The schema version (PRAGMA user_version).
    Result<int> user_version();
    sqlite3* handle() { return db_; }

private:
    /// The statement for q, prepared once per connection, reset and bound.
    Result<sqlite3_stmt*> prep(const SqlQuery& q);
    struct Stmt {
        Stmt() = default;
        Stmt(const Stmt&) = delete;
        Stmt& operator=(const Stmt&) = delete;
        ~Stmt() { sqlite3_finalize(s_); }
        sqlite3_stmt* s_ = nullptr;
    };
    sqlite3* db_;
    std::string path_;
    std::map<std::string, std::unique_ptr<Stmt>, std::less<>> stmts_;
    int depth_ = 0;
};

} // namespace mail
