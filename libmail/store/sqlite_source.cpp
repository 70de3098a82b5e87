// SQLite store: SOURCE/GET (msourced): outgoing and partial messages, client rates.
#include "libmail/store/sqlite_store.hpp"

namespace mail {

namespace {

constexpr const char* source_out_cols =
    "id,domain,sender,rcpts,path,size,created,expires,gets,max_gets,state,tries,next_try,note";

} // namespace

// ---- SOURCE/GET (msourced) ----

SourceOut SqliteStore::read_source_out(sqlite3_stmt* s) {
    SourceOut o;
    o.id = col(s, 0);
    o.domain = col(s, 1);
    o.sender = col(s, 2);
    o.rcpts = split_lines(col(s, 3));
    o.path = col(s, 4);
    o.size = sqlite3_column_int64(s, 5);
    o.created = sqlite3_column_int64(s, 6);
    o.expires = sqlite3_column_int64(s, 7);
    o.gets = sqlite3_column_int64(s, 8);
    o.max_gets = sqlite3_column_int64(s, 9);
    o.state = col(s, 10);
    o.tries = sqlite3_column_int64(s, 11);
    o.next_try = sqlite3_column_int64(s, 12);
    o.note = col(s, 13);
    return o;
}

Result<bool> SqliteStore::source_out_add(const SourceOut& o) {
    bool added = false;
    std::string rcpts = join_lines(o.rcpts);
    auto r = write([&]() -> Result<void> {
        // ON CONFLICT, not OR IGNORE: a state the CHECK refuses is an error, not "the id exists".
        auto s = prep("INSERT INTO source_out(id,domain,sender,rcpts,path,size,created,expires,gets,max_gets,"
                      "state,tries,next_try,note) VALUES(?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13,?14)"
                      " ON CONFLICT(id) DO NOTHING");
        if (!s) return s.error();
        bind(*s, 1, o.id);
        bind(*s, 2, o.domain);
        bind(*s, 3, o.sender);
        bind(*s, 4, rcpts);
        bind(*s, 5, o.path);
        bind(*s, 6, o.size);
        bind(*s, 7, o.created);
        bind(*s, 8, o.expires);
        bind(*s, 9, o.gets);
        bind(*s, 10, o.max_gets);
        bind(*s, 11, o.state);
        bind(*s, 12, o.tries);
        bind(*s, 13, o.next_try);
        bind(*s, 14, o.note);
        if (auto d = step_done(*s, "hold outgoing message"); !d) return d;
        added = sqlite3_changes(db_) > 0;
        return {};
    });
    if (!r) return r.error();
    return added;
}

Result<std::vector<SourceOut>> SqliteStore::source_out_list() {
    static const std::string sql =
        std::string("SELECT ") + source_out_cols + " FROM source_out ORDER BY created, rowid";
    std::vector<SourceOut> out;
    auto s = prep(sql.c_str());
    if (!s) return s.error();
    int rc;
    while ((rc = sqlite3_step(*s)) == SQLITE_ROW) out.push_back(read_source_out(*s));
    sqlite3_reset(*s);
    if (rc != SQLITE_DONE) return err(rc, "list outgoing messages");
    return out;
}

Result<bool> SqliteStore::source_out_claim(std::string_view id, std::int64_t now, std::int64_t until) {
    bool taken = false;
    auto r = write([&]() -> Result<void> {
        auto s = prep("UPDATE source_out SET next_try=?3 WHERE id=?1 AND state='queued' AND next_try<=?2");
        if (!s) return s.error();
        bind(*s, 1, id);
        bind(*s, 2, now);
        bind(*s, 3, until);
        if (auto d = step_done(*s, "claim outgoing message"); !d) return d;
        taken = sqlite3_changes(db_) > 0;
        return {};
    });
    if (!r) return r.error();
    return taken;
}

Result<void> SqliteStore::source_out_update(std::string_view id, std::string_view state, std::int64_t tries,
                               std::int64_t next_try, std::string_view note) {
    return write([&]() -> Result<void> {
        auto s = prep("UPDATE source_out SET state=?2, tries=?3, next_try=?4, note=?5 WHERE id=?1");
        if (!s) return s.error();
        bind(*s, 1, id);
        bind(*s, 2, state);
        bind(*s, 3, tries);
        bind(*s, 4, next_try);
        bind(*s, 5, note);
        return step_done(*s, "change outgoing message");
    });
}

Result<std::optional<SourceOut>> SqliteStore::source_out_get(std::string_view id, std::int64_t now) {
    static const std::string sql = std::string("SELECT ") + source_out_cols + " FROM source_out WHERE id=?1";
    std::optional<SourceOut> out;
    // The count and the read are one write transaction, so no GET past max_gets slips in between.
    auto r = write([&]() -> Result<void> {
        auto u = prep("UPDATE source_out SET gets=gets+1"
                      " WHERE id=?1 AND state IN ('queued','notified') AND ?2<expires AND gets<max_gets");
        if (!u) return u.error();
        bind(*u, 1, id);
        bind(*u, 2, now);
        if (auto d = step_done(*u, "count GET"); !d) return d;
        if (sqlite3_changes(db_) == 0) return {};
        auto s = prep(sql.c_str());
        if (!s) return s.error();
        bind(*s, 1, id);
        int rc = sqlite3_step(*s);
        if (rc == SQLITE_ROW) out = read_source_out(*s);
        sqlite3_reset(*s);
        if (rc != SQLITE_ROW) return err(rc, "read outgoing message");
        return {};
    });
    if (!r) return r.error();
    return out;
}

Result<bool> SqliteStore::source_out_remove(std::string_view id) {
    bool done = false;
    auto r = write([&]() -> Result<void> {
        auto s = prep("DELETE FROM source_out WHERE id=?1");
        if (!s) return s.error();
        bind(*s, 1, id);
        if (auto d = step_done(*s, "remove outgoing message"); !d) return d;
        done = sqlite3_changes(db_) > 0;
        return {};
    });
    if (!r) return r.error();
    return done;
}

Result<std::int64_t> SqliteStore::source_out_path_uses(std::string_view path) {
    auto s = prep("SELECT count(*) FROM source_out WHERE path=?1");
    if (!s) return s.error();
    bind(*s, 1, path);
    int rc = sqlite3_step(*s);
    std::int64_t n = rc == SQLITE_ROW ? sqlite3_column_int64(*s, 0) : 0;
    sqlite3_reset(*s);
    if (rc != SQLITE_ROW) return err(rc, "count outgoing messages");
    return n;
}

SourceIn SqliteStore::read_source_in(sqlite3_stmt* s) {
    SourceIn p;
    p.id = col(s, 0);
    p.domain = col(s, 1);
    p.sender = col(s, 2);
    p.rcpts = split_lines(col(s, 3));
    p.client = col(s, 4);
    p.helo = col(s, 5);
    p.received = sqlite3_column_int64(s, 6);
    p.expires = sqlite3_column_int64(s, 7);
    p.tries = sqlite3_column_int64(s, 8);
    p.next_try = sqlite3_column_int64(s, 9);
    p.note = col(s, 10);
    return p;
}

Result<bool> SqliteStore::source_in_add(const SourceIn& p) {
    bool added = false;
    std::string rcpts = join_lines(p.rcpts);
    auto r = write([&]() -> Result<void> {
        auto s = prep("INSERT INTO source_in(id,domain,sender,rcpts,client,helo,received,expires,tries,"
                      "next_try,note) VALUES(?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11) ON CONFLICT(domain,id) DO NOTHING");
        if (!s) return s.error();
        bind(*s, 1, p.id);
        bind(*s, 2, p.domain);
        bind(*s, 3, p.sender);
        bind(*s, 4, rcpts);
        bind(*s, 5, p.client);
        bind(*s, 6, p.helo);
        bind(*s, 7, p.received);
        bind(*s, 8, p.expires);
        bind(*s, 9, p.tries);
        bind(*s, 10, p.next_try);
        bind(*s, 11, p.note);
        if (auto d = step_done(*s, "record partial message"); !d) return d;
        added = sqlite3_changes(db_) > 0;
        return {};
    });
    if (!r) return r.error();
    return added;
}

Result<std::vector<SourceIn>> SqliteStore::source_in_list() {
    std::vector<SourceIn> out;
    auto s = prep("SELECT id,domain,sender,rcpts,client,helo,received,expires,tries,next_try,note"
                  " FROM source_in ORDER BY domain, received, rowid");
    if (!s) return s.error();
    int rc;
    while ((rc = sqlite3_step(*s)) == SQLITE_ROW) out.push_back(read_source_in(*s));
    sqlite3_reset(*s);
    if (rc != SQLITE_DONE) return err(rc, "list partial messages");
    return out;
}

Result<bool> SqliteStore::source_in_claim(std::string_view domain, std::string_view id, std::int64_t now,
                             std::int64_t until) {
    bool taken = false;
    auto r = write([&]() -> Result<void> {
        auto s = prep("UPDATE source_in SET next_try=?4 WHERE domain=?1 AND id=?2 AND next_try<=?3");
        if (!s) return s.error();
        bind(*s, 1, domain);
        bind(*s, 2, id);
        bind(*s, 3, now);
        bind(*s, 4, until);
        if (auto d = step_done(*s, "claim partial message"); !d) return d;
        taken = sqlite3_changes(db_) > 0;
        return {};
    });
    if (!r) return r.error();
    return taken;
}

Result<void> SqliteStore::source_in_retry(std::string_view domain, std::string_view id, std::int64_t tries,
                             std::int64_t next_try, std::string_view note) {
    return write([&]() -> Result<void> {
        auto s = prep("UPDATE source_in SET tries=?3, next_try=?4, note=?5 WHERE domain=?1 AND id=?2");
        if (!s) return s.error();
        bind(*s, 1, domain);
        bind(*s, 2, id);
        bind(*s, 3, tries);
        bind(*s, 4, next_try);
        bind(*s, 5, note);
        return step_done(*s, "change partial message");
    });
}

Result<bool> SqliteStore::source_in_remove(std::string_view domain, std::string_view id) {
    bool done = false;
    auto r = write([&]() -> Result<void> {
        auto s = prep("DELETE FROM source_in WHERE domain=?1 AND id=?2");
        if (!s) return s.error();
        bind(*s, 1, domain);
        bind(*s, 2, id);
        if (auto d = step_done(*s, "remove partial message"); !d) return d;
        done = sqlite3_changes(db_) > 0;
        return {};
    });
    if (!r) return r.error();
    return done;
}

// One row per (key, window length), holding the count of the current window and when it ends.
Result<bool> SqliteStore::rate_hit(std::string_view key, std::int64_t now, std::int64_t window, std::int64_t limit) {
    if (window <= 0) return Error{ErrorKind::software, "rate window must be positive"};
    std::int64_t ends = (now / window + 1) * window;
    std::int64_t n = 0;
    auto r = write([&]() -> Result<void> {
        auto d = prep("DELETE FROM source_rate WHERE ends<=?1");
        if (!d) return d.error();
        bind(*d, 1, now);
        if (auto x = step_done(*d, "prune rates"); !x) return x;
        auto u = prep("INSERT INTO source_rate(key,span,ends,n) VALUES(?1,?2,?3,1) ON CONFLICT(key,span)"
                      " DO UPDATE SET n=CASE WHEN ends=excluded.ends THEN n+1 ELSE 1 END, ends=excluded.ends");
        if (!u) return u.error();
        bind(*u, 1, key);
        bind(*u, 2, window);
        bind(*u, 3, ends);
        if (auto x = step_done(*u, "count rate"); !x) return x;
        auto q = prep("SELECT n FROM source_rate WHERE key=?1 AND span=?2");
        if (!q) return q.error();
        bind(*q, 1, key);
        bind(*q, 2, window);
        int rc = sqlite3_step(*q);
        if (rc == SQLITE_ROW) n = sqlite3_column_int64(*q, 0);
        sqlite3_reset(*q);
        if (rc != SQLITE_ROW) return err(rc, "read rate");
        return {};
    });
    if (!r) return r.error();
    return n <= limit;
}

Result<std::int64_t> SqliteStore::rate_count(std::string_view key, std::int64_t now, std::int64_t window,
                                 std::int64_t add) {
    if (window <= 0) return Error{ErrorKind::software, "rate window must be positive"};
    std::int64_t ends = (now / window + 1) * window;
    std::int64_t n = 0;
    auto read = [&]() -> Result<void> {
        auto q = prep("SELECT n FROM source_rate WHERE key=?1 AND span=?2 AND ends=?3");
        if (!q) return q.error();
        bind(*q, 1, key);
        bind(*q, 2, window);
        bind(*q, 3, ends);
        int rc = sqlite3_step(*q);
        n = rc == SQLITE_ROW ? sqlite3_column_int64(*q, 0) : 0;
        sqlite3_reset(*q);
        if (rc != SQLITE_ROW && rc != SQLITE_DONE) return err(rc, "read rate");
        return {};
    };
    if (add <= 0) {
        if (auto r = read(); !r) return r.error();
        return n;
    }
    auto r = write([&]() -> Result<void> {
        auto d = prep("DELETE FROM source_rate WHERE ends<=?1");
        if (!d) return d.error();
        bind(*d, 1, now);
        if (auto x = step_done(*d, "prune rates"); !x) return x;
        auto u = prep("INSERT INTO source_rate(key,span,ends,n) VALUES(?1,?2,?3,?4) ON CONFLICT(key,span)"
                      " DO UPDATE SET n=CASE WHEN ends=excluded.ends THEN n+excluded.n ELSE excluded.n END,"
                      " ends=excluded.ends");
        if (!u) return u.error();
        bind(*u, 1, key);
        bind(*u, 2, window);
        bind(*u, 3, ends);
        bind(*u, 4, add);
        if (auto x = step_done(*u, "count rate"); !x) return x;
        return read();
    });
    if (!r) return r.error();
    return n;
}

} // namespace mail
