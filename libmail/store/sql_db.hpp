// The SQL connection under the store (DESIGN §4), whichever engine holds it: statements with ?1, ?2, ...
// parameters, rows read by column, transactions. SqliteDb and PgDb implement SqlDb; SqlOps gives the store's
// table files one way to run a statement on either, so their SQL is written once. Private to store/.
#pragma once
#include "libmail/base/error.hpp"

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

namespace mail {

/// Bytes bound as a blob (SQLite BLOB, PostgreSQL bytea), not as text.
struct SqlBlob {
    std::string_view bytes;
};

/// One statement parameter: text, an integer or a blob. Text and blobs are views: what they view must outlive
/// the statement's run.
struct SqlArg {
    enum class Type { text, integer, blob };
    SqlArg(std::string_view v) : type(Type::text), text(v) {}
    SqlArg(const std::string& v) : type(Type::text), text(v) {}
    SqlArg(const char* v) : type(Type::text), text(v) {}
    SqlArg(std::int64_t v) : type(Type::integer), integer(v) {}
    SqlArg(int v) : type(Type::integer), integer(v) {}
    SqlArg(SqlBlob v) : type(Type::blob), text(v.bytes) {}
    Type type;
    std::string_view text;
    std::int64_t integer = 0;
};

/// A statement and its parameters, bound to ?1, ?2, ... in order.
struct SqlQuery {
    const char* sql;
    std::vector<SqlArg> args;
};

/// The current row of a statement: columns by index (0 based). NULL reads as "" or 0.
class SqlRow {
public:
    virtual ~SqlRow() = default;
    virtual std::string text(int i) const = 0;
    virtual std::int64_t integer(int i) const = 0;
    virtual std::string blob(int i) const = 0;
};

/// One open connection to the store's database.
class SqlDb {
public:
    virtual ~SqlDb() = default;
    /// What errors call the store: its path, or its URI without a password.
    virtual const std::string& name() const = 0;
    /// Runs sql (one or more statements, no parameters).
    virtual Result<void> exec(const char* sql) = 0;
    /// Runs q to its end: how many rows it changed; an error naming what when it fails.
    virtual Result<std::int64_t> changes(const SqlQuery& q, std::string_view what) = 0;
    /// Runs q, handing each row to fn until fn returns false (or an error, which is returned).
    virtual Result<void> rows(const SqlQuery& q, std::string_view what,
                              const std::function<Result<bool>(const SqlRow&)>& fn) = 0;
    /// Runs fn in one write transaction that excludes every other writer of the store (inside an open one:
    /// as part of it): all of it lands, or none.
    virtual Result<void> write(const std::function<Result<void>()>& fn) = 0;
};

/// Reads the columns of a row in order: `SqlReader(row) >> a >> b`, as text, integers, or a one-a-line list.
class SqlReader {
public:
    explicit SqlReader(const SqlRow& r) : r_(r) {}
    SqlReader& operator>>(std::string& v) {
        v = r_.text(i_++);
        return *this;
    }
    SqlReader& operator>>(std::int64_t& v) {
        v = r_.integer(i_++);
        return *this;
    }
    SqlReader& operator>>(int& v) {
        v = static_cast<int>(r_.integer(i_++));
        return *this;
    }
    SqlReader& operator>>(std::vector<std::string>& v);

private:
    const SqlRow& r_;
    int i_ = 0;
};

/// The statement helpers the store's table files use, over one connection.
class SqlOps {
public:
    explicit SqlOps(SqlDb& db) : db_(db) {}

    /// A list of addresses as stored: one a line (addresses hold no CR or LF).
    static std::string join_lines(const std::vector<std::string>& v);
    /// The list join_lines stored in t.
    static std::vector<std::string> split_lines(const std::string& t);

    /// sql with a... bound to ?1, ?2, ... in order. Text is bound as a view, so it must outlive the statement's
    /// run: a temporary std::string is refused.
    template <class... A>
    static SqlQuery bound(const char* sql, A&&... a) {
        static_assert(((std::is_lvalue_reference_v<A> || !std::is_same_v<std::remove_cvref_t<A>, std::string>) && ...),
                      "a temporary string is gone before the statement runs");
        return SqlQuery{sql, {SqlArg(a)...}};
    }
    /// sql without parameters.
    static SqlQuery prep(const char* sql) { return SqlQuery{sql, {}}; }
    /// Runs sql with a... bound to its end: how many rows it changed. For inside a transaction.
    template <class... A>
    Result<std::int64_t> run(const char* sql, std::string_view what, const A&... a) {
        return db_.changes(bound(sql, a...), what);
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
    /// Hands the first row of q (if any) to read: whether there was one.
    template <class F>
    Result<bool> step_row(const SqlQuery& q, std::string_view what, F&& read) {
        bool any = false;
        auto r = db_.rows(q, what, [&](const SqlRow& row) -> Result<bool> {
            read(row);
            any = true;
            return false;
        });
        if (!r) return r.error();
        return any;
    }
    /// The first row of q as read makes it, or nothing when it yields none.
    template <class F>
    auto first_row(const SqlQuery& q, std::string_view what, F&& read)
        -> Result<std::optional<std::invoke_result_t<F&, const SqlRow&>>> {
        std::optional<std::invoke_result_t<F&, const SqlRow&>> out;
        auto f = step_row(q, what, [&](const SqlRow& row) { out = read(row); });
        if (!f) return f.error();
        return out;
    }
    /// step_row for a statement that always yields a row (an aggregate): none is an error too.
    template <class F>
    Result<void> step_one(const SqlQuery& q, std::string_view what, F&& read) {
        auto f = step_row(q, what, read);
        if (!f) return f.error();
        if (!*f) return Error{ErrorKind::software, "store " + db_.name() + ": " + std::string(what) + ": no row"};
        return {};
    }
    /// Hands each row of q to fn. fn may return a Result<void>: its error stops the walk and is returned.
    template <class F>
    Result<void> each_row(const SqlQuery& q, std::string_view what, F&& fn) {
        return db_.rows(q, what, [&](const SqlRow& row) -> Result<bool> {
            if constexpr (std::is_void_v<std::invoke_result_t<F&, const SqlRow&>>) {
                fn(row);
            } else if (auto r = fn(row); !r) {
                return r.error();
            }
            return true;
        });
    }
    /// Every row of q as read makes it, in order.
    template <class F>
    auto all_rows(const SqlQuery& q, std::string_view what, F&& read)
        -> Result<std::vector<std::invoke_result_t<F&, const SqlRow&>>> {
        std::vector<std::invoke_result_t<F&, const SqlRow&>> out;
        auto r = each_row(q, what, [&](const SqlRow& row) { out.push_back(read(row)); });
        if (!r) return r.error();
        return out;
    }
    /// Runs fn in one write transaction (SqlDb::write).
    Result<void> write(const std::function<Result<void>()>& fn) { return db_.write(fn); }
    /// Runs sql without parameters.
    Result<void> exec(const char* sql) { return db_.exec(sql); }

protected:
    SqlDb& db_;
};

} // namespace mail
