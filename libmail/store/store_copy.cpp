// Copying a store and counting its rows: see store_copy.hpp. One description of the schema's tables (their
// columns, their types, the key that pages through them) drives generic statements both engines run.
#include "libmail/store/store_copy.hpp"

#include "libmail/store/pg_db.hpp"
#include "libmail/store/sql_store.hpp"
#include "libmail/store/sqlite_db.hpp"

#include <cstddef>

namespace mail {

namespace {

enum class Type { integer, text, blob };

struct Column {
    const char* name;
    Type type;
};

// A table as copied: its columns (not PostgreSQL's rowid, which the target numbers itself) and the columns
// whose order pages through it (a key of the table, or rowid where the order rows came in matters and both
// engines have one). No paging columns: the table has no key, and is replaced whole.
struct Table {
    const char* name;
    std::vector<Column> cols;
    std::vector<Column> page;
};

constexpr Type I = Type::integer, T = Type::text, B = Type::blob;

// The schema of this build (store_sqlite.cpp, store_pg.cpp). A new table or column goes here too.
const std::vector<Table>& tables() {
    static const std::vector<Table> t = {
        {"domains", {{"domain", T}, {"created", I}}, {{"domain", T}}},
        {"whitelist",
         {{"id", I}, {"kind", T}, {"value", T}, {"scope", T}, {"note", T}, {"source", T}, {"created", I},
          {"hits", I}, {"last_hit", I}, {"auth", T}},
         {{"id", I}}},
        {"secrets", {{"purpose", T}, {"key_id", I}, {"secret", B}, {"created", I}}, {{"purpose", T}, {"key_id", I}}},
        {"tokens", {{"id", T}, {"state", T}, {"recipient", T}, {"expires", I}, {"changed", I}}, {{"id", T}}},
        {"token_holds", {{"id", T}, {"holder", T}, {"until", I}}, {{"id", T}}},
        {"spent", {{"stamp", T}, {"message", T}, {"first_seen", I}, {"expires", I}}, {{"stamp", T}}},
        {"books", {{"id", T}, {"cert", T}, {"count", I}, {"next", I}, {"expires", I}, {"imported", I}}, {{"id", T}}},
        {"sent", {{"sender", T}, {"time", I}, {"n", I}}, {}},
        {"users", {{"name", T}, {"hash", T}, {"created", I}, {"changed", I}, {"senders", T}}, {{"name", T}}},
        {"held",
         {{"id", T}, {"state", T}, {"sender", T}, {"rcpts", T}, {"subject", T}, {"message_id", T}, {"msg_key", T},
          {"path", T}, {"size", I}, {"received", I}, {"expires", I}, {"confirm", T}, {"bounce", T},
          {"challenged", I}, {"changed", I}, {"note", T}, {"parent", T}},
         {{"id", T}}},
        {"digest_tokens",
         {{"id", T}, {"action", T}, {"recipient", T}, {"held", T}, {"digest", T}, {"expires", I}, {"used", I}},
         {{"id", T}}},
        {"source_out",
         {{"id", T}, {"domain", T}, {"sender", T}, {"rcpts", T}, {"path", T}, {"size", I}, {"created", I},
          {"expires", I}, {"gets", I}, {"max_gets", I}, {"state", T}, {"tries", I}, {"next_try", I}, {"note", T}},
         {{"rowid", I}}},
        {"source_in",
         {{"domain", T}, {"id", T}, {"sender", T}, {"rcpts", T}, {"client", T}, {"helo", T}, {"received", I},
          {"expires", I}, {"tries", I}, {"next_try", I}, {"note", T}},
         {{"rowid", I}}},
        {"source_rate", {{"key", T}, {"span", I}, {"ends", I}, {"n", I}}, {{"key", T}, {"span", I}}},
    };
    return t;
}

// A table's statements, made once: the engines keep prepared statements by their text.
struct Statements {
    std::string first;   // the first batch: ?1 = limit
    std::string next;    // the batch after a key: ?1.. = the key, then the limit
    std::string insert;  // one row, kept as it is when its key is there already
    std::string count;
    std::string clear;
};

std::string list(const std::vector<Column>& cols) {
    std::string s;
    for (const auto& c : cols) {
        if (!s.empty()) s += ',';
        s += c.name;
    }
    return s;
}

std::string params(std::size_t from, std::size_t n) {
    std::string s;
    for (std::size_t i = 0; i < n; ++i) {
        if (i) s += ',';
        s += '?' + std::to_string(from + i);
    }
    return s;
}

const std::vector<Statements>& statements() {
    static const std::vector<Statements> all = [] {
        std::vector<Statements> v;
        for (const auto& t : tables()) {
            Statements s;
            std::string name = t.name, cols = list(t.cols);
            if (t.page.empty()) {
                // No key: pages by position in the order of every column, which a snapshot-less reader
                // keeps only while nobody writes the table (mailstamp-store(8): copy a quiet store).
                s.first = "SELECT " + cols + " FROM " + name + " ORDER BY " + cols + " LIMIT ?1 OFFSET ?2";
            } else {
                std::string key = list(t.page);
                std::string select = "SELECT " + key + "," + cols + " FROM " + name;
                s.first = select + " ORDER BY " + key + " LIMIT ?1";
                s.next = select + " WHERE (" + key + ") > (" + params(1, t.page.size()) + ") ORDER BY " + key +
                         " LIMIT ?" + std::to_string(t.page.size() + 1);
            }
            s.insert = "INSERT INTO " + name + "(" + cols + ") VALUES(" + params(1, t.cols.size()) +
                       ") ON CONFLICT DO NOTHING";
            s.count = "SELECT count(*) FROM " + name;
            s.clear = "DELETE FROM " + name;
            v.push_back(std::move(s));
        }
        return v;
    }();
    return all;
}

// One column's value as read.
struct Value {
    std::int64_t i = 0;
    std::string s;
};
using Row = std::vector<Value>;

Value read(const SqlRow& r, int at, Type t) {
    Value v;
    switch (t) {
    case Type::integer: v.i = r.integer(at); break;
    case Type::text: v.s = r.text(at); break;
    case Type::blob: v.s = r.blob(at); break;
    }
    return v;
}

SqlArg arg(const Value& v, Type t) {
    switch (t) {
    case Type::integer: return SqlArg(v.i);
    case Type::text: return SqlArg(std::string_view(v.s));
    case Type::blob: return SqlArg(SqlBlob{v.s});
    }
    return SqlArg(v.i);
}

Result<SqlDb*> sql_of(Store& s) {
    auto* q = dynamic_cast<SqlStore*>(&s);
    if (!q) return Error{ErrorKind::software, "store: not an SQL store"};
    return &q->sql_db();
}

Result<std::int64_t> count(SqlDb& db, const Statements& s, const std::string& table) {
    std::int64_t n = 0;
    SqlOps ops(db);
    auto r = ops.step_one(SqlOps::prep(s.count.c_str()), "count " + table, [&](const SqlRow& row) { n = row.integer(0); });
    if (!r) return r.error();
    return n;
}

// Reads up to limit rows of t from db after the key last (none: from the start), or at offset when t has
// no key; each row holds the paging columns first, then the table's.
Result<std::vector<Row>> read_batch(SqlDb& db, const Table& t, const Statements& s, const Row* last,
                                    std::int64_t limit, std::int64_t offset) {
    SqlQuery q{last ? s.next.c_str() : s.first.c_str(), {}};
    if (last)
        for (std::size_t i = 0; i < t.page.size(); ++i) q.args.push_back(arg((*last)[i], t.page[i].type));
    q.args.emplace_back(limit);
    if (t.page.empty()) q.args.emplace_back(offset);
    std::vector<Row> out;
    auto r = db.rows(q, std::string("read ") + t.name, [&](const SqlRow& row) -> Result<bool> {
        Row v;
        v.reserve(t.page.size() + t.cols.size());
        int at = 0;
        for (const auto& c : t.page) v.push_back(read(row, at++, c.type));
        for (const auto& c : t.cols) v.push_back(read(row, at++, c.type));
        out.push_back(std::move(v));
        return true;
    });
    if (!r) return r.error();
    return out;
}

// Inserts rows (as read_batch read them) into db; in the caller's transaction.
Result<void> insert(SqlDb& db, const Table& t, const Statements& s, const std::vector<Row>& rows) {
    std::string what = std::string("copy into ") + t.name;
    for (const auto& row : rows) {
        SqlQuery q{s.insert.c_str(), {}};
        q.args.reserve(t.cols.size());
        for (std::size_t i = 0; i < t.cols.size(); ++i) q.args.push_back(arg(row[t.page.size() + i], t.cols[i].type));
        if (auto n = db.changes(q, what); !n) return n.error();
    }
    return {};
}

Result<void> copy_keyed(SqlDb& from, SqlDb& to, const Table& t, const Statements& s, std::int64_t batch) {
    Row last;
    bool have_last = false;
    for (;;) {
        auto rows = read_batch(from, t, s, have_last ? &last : nullptr, batch, 0);
        if (!rows) return rows.error();
        if (rows->empty()) return {};
        if (auto w = to.write([&] { return insert(to, t, s, *rows); }); !w) return w;
        if (static_cast<std::int64_t>(rows->size()) < batch) return {};
        last = std::move(rows->back());
        have_last = true;
    }
}

// A table without a key cannot tell its rows already copied from new ones: it is replaced whole, in one
// transaction, read a batch at a time.
Result<void> copy_whole(SqlDb& from, SqlDb& to, const Table& t, const Statements& s, std::int64_t batch) {
    return to.write([&]() -> Result<void> {
        SqlOps ops(to);
        if (auto n = ops.no_count(to.changes(SqlOps::prep(s.clear.c_str()), std::string("clear ") + t.name)); !n)
            return n;
        for (std::int64_t offset = 0;; offset += batch) {
            auto rows = read_batch(from, t, s, nullptr, batch, offset);
            if (!rows) return rows.error();
            if (auto r = insert(to, t, s, *rows); !r) return r;
            if (static_cast<std::int64_t>(rows->size()) < batch) return {};
        }
    });
}

} // namespace

std::vector<std::string> store_tables() {
    std::vector<std::string> v;
    for (const auto& t : tables()) v.emplace_back(t.name);
    return v;
}

Result<StoreSummary> store_summary(Store& s) {
    auto db = sql_of(s);
    if (!db) return db.error();
    StoreSummary out;
    if (auto* lite = dynamic_cast<SqliteDb*>(*db)) {
        out.engine = "sqlite";
        auto v = lite->user_version();
        if (!v) return v.error();
        out.schema = *v;
    } else {
        out.engine = dynamic_cast<PgDb*>(*db) ? "postgresql" : "unknown";
        SqlOps ops(**db);
        auto r = ops.step_one(SqlOps::prep("SELECT coalesce(max(version),0) FROM mailstamp_schema"),
                              "read schema version",
                              [&](const SqlRow& row) { out.schema = static_cast<int>(row.integer(0)); });
        if (!r) return r.error();
    }
    const auto& st = statements();
    for (std::size_t i = 0; i < tables().size(); ++i) {
        std::string name = tables()[i].name;
        auto n = count(**db, st[i], name);
        if (!n) return n.error();
        out.tables.push_back({name, *n});
    }
    return out;
}

Result<std::vector<TableCopy>> store_copy(Store& from_store, Store& to_store, std::int64_t batch,
                                          const std::function<void(const std::string&)>& progress) {
    auto from = sql_of(from_store);
    if (!from) return from.error();
    auto to = sql_of(to_store);
    if (!to) return to.error();
    if (batch < 1) batch = 1;
    const auto& st = statements();
    for (std::size_t i = 0; i < tables().size(); ++i) {
        const auto& t = tables()[i];
        if (progress) progress(t.name);
        auto r = t.page.empty() ? copy_whole(**from, **to, t, st[i], batch) : copy_keyed(**from, **to, t, st[i], batch);
        if (!r) return r.error();
    }
    // PostgreSQL numbers new whitelist entries from an identity, which the copied ids did not advance.
    if (dynamic_cast<PgDb*>(*to)) {
        SqlOps ops(**to);
        auto r = ops.write([&]() -> Result<void> {
            auto s = ops.step_row(SqlOps::prep("SELECT setval(pg_get_serial_sequence('whitelist','id'),"
                                               " coalesce(max(id),0)+1, false) FROM whitelist"),
                                  "reset the whitelist identity", [](const SqlRow&) {});
            if (!s) return s.error();
            return {};
        });
        if (!r) return r.error();
    }
    std::vector<TableCopy> out;
    for (std::size_t i = 0; i < tables().size(); ++i) {
        std::string name = tables()[i].name;
        auto a = count(**from, st[i], name);
        if (!a) return a.error();
        auto b = count(**to, st[i], name);
        if (!b) return b.error();
        out.push_back({name, *a, *b});
    }
    return out;
}

} // namespace mail
