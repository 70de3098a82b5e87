// The PostgreSQL connection under the store's backend (SqlDb on libpq): statements prepared once per
// connection, typed binary parameters, errors as tempfail or software, reconnection, and a small per-process
// pool of idle connections. Private to store/.
#pragma once
#include "libmail/store/sql_db.hpp"

#include <libpq-fe.h>

#include <memory>
#include <string>
#include <unordered_map>

namespace mail {

/// A libpq connection and the statements prepared on it (kept together when pooled).
struct PgConn {
    PGconn* conn = nullptr;
    std::unordered_map<std::string, std::string> stmts;  ///< SQL and parameter types -> statement name
    int next = 0;
    std::string settings;  ///< the SETs this session has had (PgDb::setup), empty before
    PgConn() = default;
    PgConn(const PgConn&) = delete;
    PgConn& operator=(const PgConn&) = delete;
    ~PgConn();
};

/// One PostgreSQL connection of the store.
class PgDb final : public SqlDb {
public:
    /// uri (without a password) names the store; lock_timeout_ms bounds the wait for the writer lock.
    PgDb(std::unique_ptr<PgConn> c, std::string uri, int lock_timeout_ms, bool read_only);
    PgDb(const PgDb&) = delete;
    PgDb& operator=(const PgDb&) = delete;
    /// Gives the connection back to the pool when it is healthy and outside a transaction.
    ~PgDb() override;

    const std::string& name() const override { return uri_; }
    Result<void> exec(const char* sql) override;
    Result<std::int64_t> changes(const SqlQuery& q, std::string_view what) override;
    Result<void> rows(const SqlQuery& q, std::string_view what,
                      const std::function<Result<bool>(const SqlRow&)>& fn) override;
    /// BEGIN and the store's writer lock (a transaction-level advisory lock): one writer at a time, as on SQLite.
    Result<void> write(const std::function<Result<void>()>& fn) override;

    /// Applies the session settings (timeouts, read-only) to a new or pooled connection.
    Result<void> setup();
    /// The error of doing what, from r (or the connection when r is null): lost connections, timeouts, lock
    /// waits, a server shutting down or out of resources are tempfail; bad SQL and constraint violations
    /// software.
    Error err(const PGresult* r, std::string_view what) const;

    /// Opens a connection to uri (from the pool when one is idle there).
    static Result<std::unique_ptr<PgConn>> connect(const std::string& uri);

private:
    /// Reconnects a lost connection (outside a transaction).
    Result<void> ready();
    /// Runs q: its result, or an error. Reads retry once on a connection that was lost before they ran.
    Result<PGresult*> run(const SqlQuery& q, std::string_view what, bool retry);
    std::unique_ptr<PgConn> c_;
    std::string uri_;
    int lock_timeout_ms_;
    bool read_only_;
    int depth_ = 0;
};

} // namespace mail
