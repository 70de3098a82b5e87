// The PostgreSQL connection under the store's backend (pg_db.hpp).
#include "libmail/store/pg_db.hpp"

#include <array>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <unistd.h>
#include <vector>

namespace mail {

namespace {

// Type OIDs of the parameters (pg_type.h, stable across releases).
constexpr Oid oid_bytea = 17;
constexpr Oid oid_int8 = 20;
constexpr Oid oid_text = 25;

// The store's writer lock: a transaction-level advisory lock on this key serializes writers of one database,
// as SQLite's BEGIN IMMEDIATE does for one file. ("mailst" in ASCII.)
// BEGIN and the lock go in one message: one round trip.
constexpr const char* begin_locked = "BEGIN; SELECT pg_advisory_xact_lock(120265265263476)";

// At most this many idle connections per store URI are kept for the next open in this process.
constexpr std::size_t pool_idle_max = 4;

// Idle connections by URI, for this process only: a child after fork must never use (or close) its
// parent's connections, whose server sessions the parent still owns.
struct Pool {
    std::mutex m;
    pid_t pid = ::getpid();
    std::map<std::string, std::vector<std::unique_ptr<PgConn>>> idle;
    ~Pool() {
        if (pid != ::getpid())
            for (auto& [uri, v] : idle)
                for (auto& c : v) c->conn = nullptr;  // the parent's: leave them alone
    }
    // Drops what a parent process left (without closing it) once this process has forked.
    void forked() {
        if (pid == ::getpid()) return;
        for (auto& [uri, v] : idle)
            for (auto& c : v) c->conn = nullptr;
        idle.clear();
        pid = ::getpid();
    }
};

Pool& pool() {
    static Pool p;
    return p;
}

// The statement with ?1, ?2, ... written as PostgreSQL's $1, $2, ... (outside quoted strings).
std::string dollar_params(const char* sql) {
    std::string out;
    bool quoted = false;
    for (const char* p = sql; *p; ++p) {
        char c = *p;
        if (c == '\'') quoted = !quoted;
        if (c == '?' && !quoted && p[1] >= '0' && p[1] <= '9') c = '$';
        out += c;
    }
    return out;
}

// The first line of a libpq message, without its "ERROR:  " prefix.
std::string first_line(const char* m) {
    std::string s = m ? m : "";
    if (auto nl = s.find('\n'); nl != std::string::npos) s.resize(nl);
    for (const char* p : {"ERROR:  ", "FATAL:  "})
        if (s.rfind(p, 0) == 0) s.erase(0, std::strlen(p));
    return s;
}

// The current row of a result, read as text (PostgreSQL's text output of each column).
class PgRow final : public SqlRow {
public:
    PgRow(const PGresult* r, int row) : r_(r), row_(row) {}
    std::string text(int i) const override {
        if (PQgetisnull(r_, row_, i)) return {};
        return std::string(PQgetvalue(r_, row_, i), static_cast<size_t>(PQgetlength(r_, row_, i)));
    }
    std::int64_t integer(int i) const override {
        if (PQgetisnull(r_, row_, i)) return 0;
        return std::strtoll(PQgetvalue(r_, row_, i), nullptr, 10);
    }
    std::string blob(int i) const override {
        if (PQgetisnull(r_, row_, i)) return {};
        size_t n = 0;
        unsigned char* b = PQunescapeBytea(reinterpret_cast<const unsigned char*>(PQgetvalue(r_, row_, i)), &n);
        if (!b) return {};
        std::string out(reinterpret_cast<const char*>(b), n);
        PQfreemem(b);
        return out;
    }

private:
    const PGresult* r_;
    int row_;
};

// Owns a PGresult.
struct ResultGuard {
    PGresult* r;
    ~ResultGuard() { PQclear(r); }
};

} // namespace

PgConn::~PgConn() {
    if (conn) PQfinish(conn);
}

PgDb::PgDb(std::unique_ptr<PgConn> c, std::string uri, int lock_timeout_ms, bool read_only)
    : c_(std::move(c)), uri_(std::move(uri)), lock_timeout_ms_(lock_timeout_ms), read_only_(read_only) {}

PgDb::~PgDb() {
    if (!c_ || !c_->conn) return;
    if (PQstatus(c_->conn) != CONNECTION_OK || PQtransactionStatus(c_->conn) != PQTRANS_IDLE) return;
    auto& p = pool();
    std::lock_guard<std::mutex> lock(p.m);
    p.forked();
    auto& v = p.idle[uri_];
    if (v.size() < pool_idle_max) v.push_back(std::move(c_));
}

Result<std::unique_ptr<PgConn>> PgDb::connect(const std::string& uri) {
    {
        auto& p = pool();
        std::lock_guard<std::mutex> lock(p.m);
        p.forked();
        auto it = p.idle.find(uri);
        if (it != p.idle.end() && !it->second.empty()) {
            auto c = std::move(it->second.back());
            it->second.pop_back();
            if (PQstatus(c->conn) == CONNECTION_OK) return c;
        }
    }
    // connect_timeout and application_name first: the URI's own settings come after them and win.
    const char* keys[] = {"connect_timeout", "fallback_application_name", "dbname", nullptr};
    const char* vals[] = {"10", "mailstamp", uri.c_str(), nullptr};
    auto c = std::make_unique<PgConn>();
    c->conn = PQconnectdbParams(keys, vals, 1);
    if (!c->conn) return Error{ErrorKind::tempfail, "store " + uri + ": connect: out of memory"};
    if (PQstatus(c->conn) != CONNECTION_OK)
        return Error{ErrorKind::tempfail, "store " + uri + ": connect: " + first_line(PQerrorMessage(c->conn))};
    return c;
}

Result<void> PgDb::setup() {
    std::string s = "SET lock_timeout = " + std::to_string(lock_timeout_ms_ > 0 ? lock_timeout_ms_ : 1) +
                    "; SET statement_timeout = 60000; SET default_transaction_read_only = " +
                    (read_only_ ? "on" : "off") + "; SET client_min_messages = warning";
    if (c_->settings == s) return {};  // a pooled connection, set up so already
    c_->settings.clear();
    auto r = exec(s.c_str());
    if (r) c_->settings = std::move(s);
    return r;
}

Error PgDb::err(const PGresult* r, std::string_view what) const {
    const char* state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : nullptr;
    std::string msg = first_line(r ? PQresultErrorMessage(r) : PQerrorMessage(c_->conn));
    if (msg.empty()) msg = first_line(PQerrorMessage(c_->conn));
    ErrorKind kind = ErrorKind::tempfail;
    // Class 42: syntax or an unknown table or column; 23: a constraint; 22: a value out of range. Everything
    // else (connections, timeouts, lock waits, shutdowns, resources, read-only) is worth trying again later.
    if (state && (std::strncmp(state, "42", 2) == 0 || std::strncmp(state, "23", 2) == 0 ||
                  std::strncmp(state, "22", 2) == 0))
        kind = ErrorKind::software;
    std::string t = "store " + uri_ + ": " + std::string(what) + ": " + msg;
    if (state) t += std::string(" (SQLSTATE ") + state + ")";
    return Error{kind, t};
}

Result<void> PgDb::ready() {
    if (PQstatus(c_->conn) == CONNECTION_OK) return {};
    if (depth_ > 0) return err(nullptr, "connection lost in a transaction");
    PQreset(c_->conn);
    c_->stmts.clear();
    c_->settings.clear();
    if (PQstatus(c_->conn) != CONNECTION_OK) return err(nullptr, "reconnect");
    return setup();
}

Result<void> PgDb::exec(const char* sql) {
    for (int attempt = 0;; ++attempt) {
        if (auto r = ready(); !r) return r;
        ResultGuard g{PQexec(c_->conn, sql)};
        auto st = PQresultStatus(g.r);
        if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) return {};
        // A connection found dead by the statement (the server restarted): once more, outside a transaction,
        // for a statement that starts one or only sets the session up.
        bool lost = PQstatus(c_->conn) != CONNECTION_OK;
        bool safe = std::strncmp(sql, "BEGIN", 5) == 0 || std::strncmp(sql, "SET ", 4) == 0;
        if (!(lost && safe && depth_ == 0 && attempt == 0)) return err(g.r, "exec");
    }
}

Result<PGresult*> PgDb::run(const SqlQuery& q, std::string_view what, bool retry) {
    const int n = static_cast<int>(q.args.size());
    std::vector<Oid> types(static_cast<size_t>(n));
    std::vector<const char*> values(static_cast<size_t>(n));
    std::vector<int> lengths(static_cast<size_t>(n)), formats(static_cast<size_t>(n), 1);
    std::vector<std::array<unsigned char, 8>> ints(static_cast<size_t>(n));
    std::string key = q.sql;
    key += '\0';
    for (int i = 0; i < n; ++i) {
        const auto& a = q.args[static_cast<size_t>(i)];
        auto k = static_cast<size_t>(i);
        switch (a.type) {
        case SqlArg::Type::text:
            types[k] = oid_text;
            values[k] = a.text.data() ? a.text.data() : "";
            lengths[k] = static_cast<int>(a.text.size());
            key += 't';
            break;
        case SqlArg::Type::blob:
            types[k] = oid_bytea;
            values[k] = a.text.data() ? a.text.data() : "";
            lengths[k] = static_cast<int>(a.text.size());
            key += 'b';
            break;
        case SqlArg::Type::integer: {
            auto u = static_cast<std::uint64_t>(a.integer);
            for (int b = 0; b < 8; ++b) ints[k][static_cast<size_t>(b)] = static_cast<unsigned char>(u >> (56 - 8 * b));
            types[k] = oid_int8;
            values[k] = reinterpret_cast<const char*>(ints[k].data());
            lengths[k] = 8;
            key += 'i';
            break;
        }
        }
    }
    for (int attempt = 0;; ++attempt) {
        if (auto r = ready(); !r) return r.error();
        auto it = c_->stmts.find(key);
        if (it == c_->stmts.end()) {
            std::string name = "ms" + std::to_string(++c_->next);
            ResultGuard g{PQprepare(c_->conn, name.c_str(), dollar_params(q.sql).c_str(), n, types.data())};
            if (PQresultStatus(g.r) != PGRES_COMMAND_OK) {
                if (retry && attempt == 0 && depth_ == 0 && PQstatus(c_->conn) != CONNECTION_OK) continue;
                return err(g.r, what);
            }
            it = c_->stmts.emplace(key, name).first;
        }
        PGresult* r = PQexecPrepared(c_->conn, it->second.c_str(), n, values.data(), lengths.data(), formats.data(), 0);
        auto st = PQresultStatus(r);
        if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) return r;
        ResultGuard g{r};
        if (retry && attempt == 0 && depth_ == 0 && PQstatus(c_->conn) != CONNECTION_OK) continue;
        return err(r, what);
    }
}

Result<std::int64_t> PgDb::changes(const SqlQuery& q, std::string_view what) {
    auto r = run(q, what, false);
    if (!r) return r.error();
    ResultGuard g{*r};
    return std::strtoll(PQcmdTuples(g.r), nullptr, 10);
}

Result<void> PgDb::rows(const SqlQuery& q, std::string_view what,
                        const std::function<Result<bool>(const SqlRow&)>& fn) {
    // A statement that only reads is run again once on a connection found lost; one that writes is not
    // (whether it landed is unknown), and neither is anything inside a transaction.
    bool reads = std::strncmp(q.sql, "SELECT", 6) == 0;
    auto r = run(q, what, reads);
    if (!r) return r.error();
    ResultGuard g{*r};
    int n = PQntuples(g.r);
    for (int i = 0; i < n; ++i) {
        auto more = fn(PgRow(g.r, i));
        if (!more) return more.error();
        if (!*more) break;
    }
    return {};
}

Result<void> PgDb::write(const std::function<Result<void>()>& fn) {
    if (depth_ > 0) {  // nested: part of the outer transaction
        ++depth_;
        auto r = fn();
        --depth_;
        return r;
    }
    auto rollback = [&] {
        if (PQstatus(c_->conn) == CONNECTION_OK && PQtransactionStatus(c_->conn) != PQTRANS_IDLE)
            PQclear(PQexec(c_->conn, "ROLLBACK"));
    };
    if (auto l = exec(begin_locked); !l) {  // BEGIN worked and the lock did not: the transaction is open
        rollback();
        return l;
    }
    ++depth_;
    auto r = fn();
    if (!r) {
        rollback();
        --depth_;
        return r;
    }
    auto c = exec("COMMIT");
    if (!c) rollback();
    --depth_;
    return c;
}

} // namespace mail
