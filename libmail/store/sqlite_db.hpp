// The SQLite connection under the store's backend: prepared statements, binding and stepping, errors and
// transactions. Private to store/: only the SQLite backend's files include it.
#pragma once
#include "libmail/base/error.hpp"

#include <sqlite3.h>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
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
    /// The statement for sql with a... bound to ?1, ?2, ... in order. Text is bound in place, so it must
    /// outlive the statement's next step: a temporary std::string is refused.
    template <class... A>
    Result<sqlite3_stmt*> bound(const char* sql, A&&... a) {
        static_assert(((std::is_lvalue_reference_v<A> || !std::is_same_v<std::remove_cvref_t<A>, std::string>) && ...),
                      "a temporary string is gone before the statement steps");
        auto s = prep(sql);
        if (!s) return s;
        int i = 0;
        (bind(*s, ++i, a), ...);
        return s;
    }
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
    /// Runs sql with a... bound (as bound) to its end: how many rows it changed. For inside a transaction.
    template <class... A>
    Result<std::int64_t> run(const char* sql, std::string_view what, const A&... a) {
        auto s = bound(sql, a...);
        if (!s) return s.error();
        if (auto d = step_done(*s, what); !d) return d.error();
        return sqlite3_changes(db_);
    }
    /// run in a write transaction of its own (or as part of the open one).
    template <class... A>
    Result<std::int64_t> write_run(const char* sql, std::string_view what, const A&... a) {
        std::int64_t n = 0;
        auto r = write([&]() -> Result<void> {
            auto c = run(sql, what, a...);
            if (!c) return c.error();
            n = *c;
            return {};
        });
        if (!r) return r.error();
        return n;
    }
    /// write_run: whether it changed any row.
    template <class... A>
    Result<bool> write_any(const char* sql, std::string_view what, const A&... a) {
        auto n = write_run(sql, what, a...);
        if (!n) return n.error();
        return *n > 0;
    }
    /// The error of a count nobody needs, or nothing.
    static Result<void> no_count(const Result<std::int64_t>& n) {
        if (!n) return n.error();
        return {};
    }
    /// Steps s once, handing a row to read, and resets it: whether there was a row; an error naming what when
    /// the step (or s itself) failed.
    template <class F>
    Result<bool> step_row(Result<sqlite3_stmt*> s, std::string_view what, F&& read) {
        if (!s) return s.error();
        int rc = step_once(*s, read);
        if (rc != SQLITE_ROW && rc != SQLITE_DONE) return err(rc, what);
        return rc == SQLITE_ROW;
    }
    /// The row s yields (step_row) as read makes it, or nothing when it yields none.
    template <class F>
    auto first_row(Result<sqlite3_stmt*> s, std::string_view what, F&& read)
        -> Result<std::optional<std::invoke_result_t<F&, sqlite3_stmt*>>> {
        std::optional<std::invoke_result_t<F&, sqlite3_stmt*>> out;
        auto f = step_row(std::move(s), what, [&](sqlite3_stmt* q) { out = read(q); });
        if (!f) return f.error();
        return out;
    }
    /// step_row for a statement that always yields a row (an aggregate): none is an error too.
    template <class F>
    Result<void> step_one(Result<sqlite3_stmt*> s, std::string_view what, F&& read) {
        if (!s) return s.error();
        int rc = step_once(*s, read);
        if (rc != SQLITE_ROW) return err(rc, what);
        return {};
    }
    /// Steps s through its rows, handing each to fn, and resets it. fn may return a Result<void>: its error
    /// stops the walk and is returned.
    template <class F>
    Result<void> each_row(Result<sqlite3_stmt*> s, std::string_view what, F&& fn) {
        if (!s) return s.error();
        int rc;
        while ((rc = sqlite3_step(*s)) == SQLITE_ROW) {
            if constexpr (std::is_void_v<std::invoke_result_t<F&, sqlite3_stmt*>>) {
                fn(*s);
            } else if (auto r = fn(*s); !r) {
                sqlite3_reset(*s);
                return r;
            }
        }
        sqlite3_reset(*s);
        if (rc != SQLITE_DONE) return err(rc, what);
        return {};
    }
    /// Every row of s as read makes it, in order.
    template <class F>
    auto all_rows(Result<sqlite3_stmt*> s, std::string_view what, F&& read)
        -> Result<std::vector<std::invoke_result_t<F&, sqlite3_stmt*>>> {
        std::vector<std::invoke_result_t<F&, sqlite3_stmt*>> out;
        auto r = each_row(std::move(s), what, [&](sqlite3_stmt* q) { out.push_back(read(q)); });
        if (!r) return r.error();
        return out;
    }
    /// Runs fn in one IMMEDIATE transaction (inside an open one: as part of it): all of it lands, or none.
    Result<void> write(const std::function<Result<void>()>& fn);

protected:
    sqlite3* db_;
    std::string path_;

private:
    template <class F>
    static int step_once(sqlite3_stmt* s, F& read) {
        int rc = sqlite3_step(s);
        if (rc == SQLITE_ROW) read(s);
        sqlite3_reset(s);
        return rc;
    }
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

/// Reads the columns of a row in order: `SqliteRow(s) >> a >> b`, as text, integers, or a one-a-line list.
class SqliteRow {
public:
    explicit SqliteRow(sqlite3_stmt* s) : s_(s) {}
    /// The next column as text.
    SqliteRow& operator>>(std::string& v) {
        v = SqliteDb::col(s_, i_++);
        return *this;
    }
    /// The next column as an integer.
    SqliteRow& operator>>(std::int64_t& v) {
        v = sqlite3_column_int64(s_, i_++);
        return *this;
    }
    /// The next column as a list join_lines stored.
    SqliteRow& operator>>(std::vector<std::string>& v) {
        v = SqliteDb::split_lines(SqliteDb::col(s_, i_++));
        return *this;
    }

private:
    sqlite3_stmt* s_;
    int i_ = 0;
};

} // namespace mail
