// The store (SQL, both engines): SOURCE/GET (msourced): outgoing and partial messages, client rates.
#include "libmail/store/sql_store.hpp"

namespace mail {

namespace {

constexpr const char* source_out_cols =
    "id,domain,sender,rcpts,path,size,created,expires,gets,max_gets,state,tries,next_try,note";

// The end of the window of window seconds that now falls in; an error for a window that is not positive.
Result<std::int64_t> window_end(std::int64_t now, std::int64_t window) {
    if (window <= 0) return Error{ErrorKind::software, "rate window must be positive"};
    return (now / window + 1) * window;
}

} // namespace

// ---- outgoing messages ----
SourceOut SqlStore::read_source_out(const SqlRow& s) {
    SourceOut o;
    SqlReader(s) >> o.id >> o.domain >> o.sender >> o.rcpts >> o.path >> o.size >> o.created >> o.expires >> o.gets >>
        o.max_gets >> o.state >> o.tries >> o.next_try >> o.note;
    return o;
}

Result<bool> SqlStore::source_out_add(const SourceOut& o) {
    std::string rcpts = join_lines(o.rcpts);
    // ON CONFLICT, not OR IGNORE: a state the CHECK refuses is an error, not "the id exists".
    return write_any("INSERT INTO source_out(id,domain,sender,rcpts,path,size,created,expires,gets,max_gets,"
                     "state,tries,next_try,note) VALUES(?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13,?14)"
                     " ON CONFLICT(id) DO NOTHING",
                     "hold outgoing message", o.id, o.domain, o.sender, rcpts, o.path, o.size, o.created, o.expires,
                     o.gets, o.max_gets, o.state, o.tries, o.next_try, o.note);
}

Result<std::vector<SourceOut>> SqlStore::source_out_list() {
    static const std::string sql =
        std::string("SELECT ") + source_out_cols + " FROM source_out ORDER BY created, rowid";
    return all_rows(prep(sql.c_str()), "list outgoing messages", read_source_out);
}

Result<bool> SqlStore::source_out_claim(std::string_view id, std::int64_t now, std::int64_t until) {
    return write_any("UPDATE source_out SET next_try=?3 WHERE id=?1 AND state='queued' AND next_try<=?2",
                     "claim outgoing message", id, now, until);
}

Result<void> SqlStore::source_out_update(std::string_view id, std::string_view state, std::int64_t tries,
                                            std::int64_t next_try, std::string_view note) {
    return no_count(write_run("UPDATE source_out SET state=?2, tries=?3, next_try=?4, note=?5 WHERE id=?1",
                              "change outgoing message", id, state, tries, next_try, note));
}

Result<std::optional<SourceOut>> SqlStore::source_out_get(std::string_view id, std::int64_t now) {
    static const std::string sql = std::string("SELECT ") + source_out_cols + " FROM source_out WHERE id=?1";
    std::optional<SourceOut> out;
    // The count and the read are one write transaction, so no GET past max_gets slips in between.
    auto r = write([&]() -> Result<void> {
        auto n = run("UPDATE source_out SET gets=gets+1"
                     " WHERE id=?1 AND state IN ('queued','notified') AND ?2<expires AND gets<max_gets",
                     "count GET", id, now);
        if (!n) return n.error();
        if (*n == 0) return {};
        return step_one(bound(sql.c_str(), id), "read outgoing message",
                        [&](const SqlRow& s) { out = read_source_out(s); });
    });
    if (!r) return r.error();
    return out;
}

Result<bool> SqlStore::source_out_remove(std::string_view id) {
    return write_any("DELETE FROM source_out WHERE id=?1", "remove outgoing message", id);
}

Result<std::int64_t> SqlStore::source_out_path_uses(std::string_view path) {
    std::int64_t n = 0;
    auto q = step_one(bound("SELECT count(*) FROM source_out WHERE path=?1", path), "count outgoing messages",
                      [&](const SqlRow& s) { n = s.integer(0); });
    if (!q) return q.error();
    return n;
}

// ---- partial messages ----
SourceIn SqlStore::read_source_in(const SqlRow& s) {
    SourceIn p;
    SqlReader(s) >> p.id >> p.domain >> p.sender >> p.rcpts >> p.client >> p.helo >> p.received >> p.expires >>
        p.tries >> p.next_try >> p.note;
    return p;
}

Result<bool> SqlStore::source_in_add(const SourceIn& p) {
    std::string rcpts = join_lines(p.rcpts);
    return write_any("INSERT INTO source_in(id,domain,sender,rcpts,client,helo,received,expires,tries,"
                     "next_try,note) VALUES(?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11) ON CONFLICT(domain,id) DO NOTHING",
                     "record partial message", p.id, p.domain, p.sender, rcpts, p.client, p.helo, p.received,
                     p.expires, p.tries, p.next_try, p.note);
}

Result<std::vector<SourceIn>> SqlStore::source_in_list() {
    return all_rows(prep("SELECT id,domain,sender,rcpts,client,helo,received,expires,tries,next_try,note"
                         " FROM source_in ORDER BY domain, received, rowid"),
                    "list partial messages", read_source_in);
}

Result<bool> SqlStore::source_in_claim(std::string_view domain, std::string_view id, std::int64_t now,
                                          std::int64_t until) {
    return write_any("UPDATE source_in SET next_try=?4 WHERE domain=?1 AND id=?2 AND next_try<=?3",
                     "claim partial message", domain, id, now, until);
}

Result<void> SqlStore::source_in_retry(std::string_view domain, std::string_view id, std::int64_t tries,
                                          std::int64_t next_try, std::string_view note) {
    return no_count(write_run("UPDATE source_in SET tries=?3, next_try=?4, note=?5 WHERE domain=?1 AND id=?2",
                              "change partial message", domain, id, tries, next_try, note));
}

Result<bool> SqlStore::source_in_remove(std::string_view domain, std::string_view id) {
    return write_any("DELETE FROM source_in WHERE domain=?1 AND id=?2", "remove partial message", domain, id);
}

// ---- client rates ----
// One row per (key, window length), holding the count of the current window and when it ends. (The
// table's own columns are named source_rate.X in DO UPDATE: PostgreSQL finds a bare one ambiguous there.)
Result<bool> SqlStore::rate_hit(std::string_view key, std::int64_t now, std::int64_t window, std::int64_t limit) {
    auto ends = window_end(now, window);
    if (!ends) return ends.error();
    std::int64_t n = 0;
    auto r = write([&]() -> Result<void> {
        if (auto d = run("DELETE FROM source_rate WHERE ends<=?1", "prune rates", now); !d) return d.error();
        auto u = run("INSERT INTO source_rate(key,span,ends,n) VALUES(?1,?2,?3,1) ON CONFLICT(key,span)"
                     " DO UPDATE SET n=CASE WHEN source_rate.ends=excluded.ends THEN source_rate.n+1 ELSE 1 END,"
                     " ends=excluded.ends",
                     "count rate", key, window, *ends);
        if (!u) return u.error();
        return step_one(bound("SELECT n FROM source_rate WHERE key=?1 AND span=?2", key, window), "read rate",
                        [&](const SqlRow& s) { n = s.integer(0); });
    });
    if (!r) return r.error();
    return n <= limit;
}

Result<std::int64_t> SqlStore::rate_count(std::string_view key, std::int64_t now, std::int64_t window,
                                             std::int64_t add) {
    auto ends = window_end(now, window);
    if (!ends) return ends.error();
    std::int64_t n = 0;
    auto read = [&]() -> Result<void> {
        auto f = step_row(bound("SELECT n FROM source_rate WHERE key=?1 AND span=?2 AND ends=?3", key, window, *ends),
                          "read rate", [&](const SqlRow& s) { n = s.integer(0); });
        if (!f) return f.error();
        return {};
    };
    if (add <= 0) {
        if (auto r = read(); !r) return r.error();
        return n;
    }
    auto r = write([&]() -> Result<void> {
        if (auto d = run("DELETE FROM source_rate WHERE ends<=?1", "prune rates", now); !d) return d.error();
        auto u = run("INSERT INTO source_rate(key,span,ends,n) VALUES(?1,?2,?3,?4) ON CONFLICT(key,span)"
                     " DO UPDATE SET n=CASE WHEN source_rate.ends=excluded.ends THEN source_rate.n+excluded.n"
                     " ELSE excluded.n END, ends=excluded.ends",
                     "count rate", key, window, *ends, add);
        if (!u) return u.error();
        return read();
    });
    if (!r) return r.error();
    return n;
}

} // namespace mail
