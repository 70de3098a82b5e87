// SQLite backend of the store interface (DESIGN §4).
#include "libmail/store/store.hpp"

#include "libmail/base/text.hpp"

#include <sqlite3.h>

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <map>
#include <sys/stat.h>
#include <unistd.h>

namespace mail {

namespace {

// (CHECKs use OR, not IN: an IN list builds an ephemeral table on every
// insert, which doubled the cost of a bulk import.)
// Schema migrations, in order: migrations[i] takes user_version i to i+1.
// Append only; never edit a migration that has shipped.
const char* const migrations[] = {
    // 0 -> 1: protected domains, whitelist, secrets, token records.
    "CREATE TABLE domains(domain TEXT PRIMARY KEY, created INTEGER NOT NULL) WITHOUT ROWID;"
    "CREATE TABLE whitelist("
    "  id INTEGER PRIMARY KEY,"
    "  kind TEXT NOT NULL CHECK(kind='address' OR kind='domain' OR kind='subdomains' OR kind='recipient'),"
    "  value TEXT NOT NULL,"
    "  scope TEXT NOT NULL DEFAULT '',"
    "  note TEXT NOT NULL DEFAULT '',"
    "  source TEXT NOT NULL DEFAULT 'manual',"
    "  created INTEGER NOT NULL,"
    "  hits INTEGER NOT NULL DEFAULT 0,"
    "  last_hit INTEGER NOT NULL DEFAULT 0,"
    "  UNIQUE(value, scope, kind));"
    "CREATE TABLE secrets(purpose TEXT NOT NULL, key_id INTEGER NOT NULL, secret BLOB NOT NULL,"
    "  created INTEGER NOT NULL, PRIMARY KEY(purpose, key_id)) WITHOUT ROWID;"
    "CREATE TABLE tokens(id TEXT PRIMARY KEY,"
    "  state TEXT NOT NULL CHECK(state='used' OR state='revoked'),"
    "  recipient TEXT NOT NULL, expires INTEGER NOT NULL, changed INTEGER NOT NULL) WITHOUT ROWID;"
    "CREATE INDEX tokens_expires ON tokens(expires);",
    // 1 -> 2: spent stamps (double spend), stamp books, sent volume (timed stamps).
    "CREATE TABLE spent(stamp TEXT PRIMARY KEY, message TEXT NOT NULL, first_seen INTEGER NOT NULL,"
    "  expires INTEGER NOT NULL) WITHOUT ROWID;"
    "CREATE INDEX spent_expires ON spent(expires);"
    "CREATE TABLE books(id TEXT PRIMARY KEY, cert TEXT NOT NULL, count INTEGER NOT NULL,"
    "  next INTEGER NOT NULL DEFAULT 0, expires INTEGER NOT NULL, imported INTEGER NOT NULL) WITHOUT ROWID;"
    "CREATE TABLE sent(sender TEXT NOT NULL, time INTEGER NOT NULL, n INTEGER NOT NULL);"
    "CREATE INDEX sent_sender ON sent(sender, time);",
    // 2 -> 3: SMTP AUTH users (msmtp-proxy).
    "CREATE TABLE users(name TEXT PRIMARY KEY, hash TEXT NOT NULL, created INTEGER NOT NULL,"
    "  changed INTEGER NOT NULL) WITHOUT ROWID;",
    // 3 -> 4: mail held by mchallenge, and the notices that matched it.
    "CREATE TABLE held(id TEXT PRIMARY KEY, state TEXT NOT NULL, sender TEXT NOT NULL, rcpts TEXT NOT NULL,"
    "  subject TEXT NOT NULL, message_id TEXT NOT NULL, msg_key TEXT NOT NULL, path TEXT NOT NULL,"
    "  size INTEGER NOT NULL, received INTEGER NOT NULL, expires INTEGER NOT NULL, confirm TEXT NOT NULL,"
    "  bounce TEXT NOT NULL, challenged INTEGER NOT NULL, changed INTEGER NOT NULL, note TEXT NOT NULL,"
    "  parent TEXT NOT NULL);"
    "CREATE INDEX held_sender ON held(sender);"
    "CREATE INDEX held_received ON held(received);"
    "CREATE INDEX held_confirm ON held(confirm);"
    "CREATE INDEX held_bounce ON held(bounce);"
    "CREATE INDEX held_key ON held(msg_key);",
    // 4 -> 5: SOURCE/GET (msourced): outgoing messages held for GET, partial incoming ones, client rates.
    "CREATE TABLE source_out(id TEXT PRIMARY KEY, domain TEXT NOT NULL, sender TEXT NOT NULL,"
    "  rcpts TEXT NOT NULL, path TEXT NOT NULL, size INTEGER NOT NULL, created INTEGER NOT NULL,"
    "  expires INTEGER NOT NULL, gets INTEGER NOT NULL DEFAULT 0, max_gets INTEGER NOT NULL,"
    "  state TEXT NOT NULL CHECK(state='queued' OR state='notified' OR state='sent' OR state='failed'),"
    "  tries INTEGER NOT NULL DEFAULT 0, next_try INTEGER NOT NULL DEFAULT 0, note TEXT NOT NULL DEFAULT '');"
    "CREATE INDEX source_out_due ON source_out(state, next_try);"
    "CREATE INDEX source_out_path ON source_out(path);"
    "CREATE TABLE source_in(domain TEXT NOT NULL, id TEXT NOT NULL, sender TEXT NOT NULL, rcpts TEXT NOT NULL,"
    "  client TEXT NOT NULL, helo TEXT NOT NULL, received INTEGER NOT NULL, expires INTEGER NOT NULL,"
    "  tries INTEGER NOT NULL DEFAULT 0, next_try INTEGER NOT NULL DEFAULT 0, note TEXT NOT NULL DEFAULT '',"
    "  PRIMARY KEY(domain, id));"
    "CREATE INDEX source_in_next ON source_in(next_try);"
    "CREATE TABLE source_rate(key TEXT NOT NULL, span INTEGER NOT NULL, ends INTEGER NOT NULL,"
    "  n INTEGER NOT NULL, PRIMARY KEY(key, span)) WITHOUT ROWID;"
    "CREATE INDEX source_rate_ends ON source_rate(ends);",
    // 5 -> 6: one-time token reservations at RCPT (msmtp-proxy); the senders each SMTP AUTH user may use.
    "CREATE TABLE token_holds(id TEXT PRIMARY KEY, holder TEXT NOT NULL, until INTEGER NOT NULL) WITHOUT ROWID;"
    "CREATE INDEX token_holds_until ON token_holds(until);"
    "ALTER TABLE users ADD COLUMN senders TEXT NOT NULL DEFAULT '';",
};
constexpr int schema_version = sizeof(migrations) / sizeof(migrations[0]);

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

class Stmt {
public:
    Stmt() = default;
    Stmt(const Stmt&) = delete;
    Stmt& operator=(const Stmt&) = delete;
    ~Stmt() { sqlite3_finalize(s_); }
    sqlite3_stmt* s_ = nullptr;
};

class SqliteStore final : public Store {
public:
    SqliteStore(sqlite3* db, std::string path) : db_(db), path_(std::move(path)) {}
    ~SqliteStore() override {
        stmts_.clear();
        sqlite3_close_v2(db_);
    }

    Error err(int rc, std::string_view what) const {
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

    Result<void> exec(const char* sql) {
        int rc = sqlite3_exec(db_, sql, nullptr, nullptr, nullptr);
        if (rc != SQLITE_OK) return err(rc, "exec");
        return {};
    }

    // Prepared once per store object, reset before each use.
    Result<sqlite3_stmt*> prep(const char* sql) {
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

    // SQLITE_STATIC: every bound string outlives the statement's next step.
    static void bind(sqlite3_stmt* s, int i, std::string_view v) {
        sqlite3_bind_text(s, i, v.data(), static_cast<int>(v.size()), SQLITE_STATIC);
    }
    static void bind(sqlite3_stmt* s, int i, std::int64_t v) { sqlite3_bind_int64(s, i, v); }
    static std::string col(sqlite3_stmt* s, int i) {
        auto p = reinterpret_cast<const char*>(sqlite3_column_text(s, i));
        return p ? std::string(p, static_cast<size_t>(sqlite3_column_bytes(s, i))) : std::string();
    }

    // Recipient lists are stored one address per line (addresses hold no CR or LF).
    static std::string join_lines(const std::vector<std::string>& v) {
        std::string out;
        for (const auto& x : v) {
            if (!out.empty()) out += '\n';
            out += x;
        }
        return out;
    }
    static std::vector<std::string> split_lines(const std::string& t) {
        std::vector<std::string> out;
        for (std::size_t b = 0; b < t.size();) {
            std::size_t e = t.find('\n', b);
            if (e == std::string::npos) e = t.size();
            if (e > b) out.push_back(t.substr(b, e - b));
            b = e + 1;
        }
        return out;
    }

    Result<void> step_done(sqlite3_stmt* s, std::string_view what) {
        int rc = sqlite3_step(s);
        sqlite3_reset(s);
        if (rc != SQLITE_DONE) return err(rc, what);
        return {};
    }

    Result<void> migrate() {
        auto v = user_version();
        if (!v) return v.error();
        if (*v == schema_version) return {};
        if (*v > schema_version)
            return Error{ErrorKind::tempfail, "store " + path_ + ": schema version " + std::to_string(*v) +
                                                   " is newer than this program's (" +
                                                   std::to_string(schema_version) + ")"};
        return transaction([&]() -> Result<void> {
            auto cur = user_version();  // another process may have migrated meanwhile
            if (!cur) return cur.error();
            for (int i = *cur; i < schema_version; ++i) {
                if (auto r = exec(migrations[i]); !r) return r;
            }
            std::string pv = "PRAGMA user_version=" + std::to_string(schema_version);
            return exec(pv.c_str());
        });
    }

    Result<int> user_version() {
        auto s = prep("PRAGMA user_version");
        if (!s) return s.error();
        int rc = sqlite3_step(*s);
        if (rc != SQLITE_ROW) return err(rc, "read schema version");
        int v = sqlite3_column_int(*s, 0);
        sqlite3_reset(*s);
        return v;
    }

    Result<void> transaction(const std::function<Result<void>()>& fn) override {
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

    // Runs a single statement in its own transaction unless inside one already.
    Result<void> write(const std::function<Result<void>()>& fn) { return transaction(fn); }

    // ---- whitelist ----
    Result<bool> wl_insert(const WlEntry& e) override {
        bool inserted = false;
        auto r = write([&]() -> Result<void> {
            auto s = prep("INSERT OR IGNORE INTO whitelist(kind,value,scope,note,source,created,hits,last_hit)"
                          " VALUES(?1,?2,?3,?4,?5,?6,?7,?8)");
            if (!s) return s.error();
            bind(*s, 1, to_string(e.kind));
            bind(*s, 2, e.value);
            bind(*s, 3, e.scope);
            bind(*s, 4, e.note);
            bind(*s, 5, e.source);
            bind(*s, 6, e.created);
            bind(*s, 7, e.hits);
            bind(*s, 8, e.last_hit);
            if (auto d = step_done(*s, "add whitelist entry"); !d) return d;
            inserted = sqlite3_changes(db_) > 0;
            return {};
        });
        if (!r) return r.error();
        return inserted;
    }

    Result<bool> wl_remove(WlKind kind, std::string_view value, std::string_view scope) override {
        bool removed = false;
        auto r = write([&]() -> Result<void> {
            auto s = prep("DELETE FROM whitelist WHERE value=?1 AND scope=?2 AND kind=?3");
            if (!s) return s.error();
            bind(*s, 1, value);
            bind(*s, 2, scope);
            bind(*s, 3, to_string(kind));
            if (auto d = step_done(*s, "remove whitelist entry"); !d) return d;
            removed = sqlite3_changes(db_) > 0;
            return {};
        });
        if (!r) return r.error();
        return removed;
    }

    static WlEntry read_entry(sqlite3_stmt* s) {
        WlEntry e;
        e.id = sqlite3_column_int64(s, 0);
        e.kind = parse_wl_kind(col(s, 1)).value_or(WlKind::address);
        e.value = col(s, 2);
        e.scope = col(s, 3);
        e.note = col(s, 4);
        e.source = col(s, 5);
        e.created = sqlite3_column_int64(s, 6);
        e.hits = sqlite3_column_int64(s, 7);
        e.last_hit = sqlite3_column_int64(s, 8);
        return e;
    }

    Result<std::vector<WlEntry>> wl_lookup(const std::vector<std::string>& values,
                                           const std::vector<std::string>& scopes) override {
        std::vector<WlEntry> out;
        // One indexed probe per (value, scope) pair: a handful per lookup.
        auto s = prep("SELECT id,kind,value,scope,note,source,created,hits,last_hit FROM whitelist"
                      " WHERE value=?1 AND scope=?2");
        if (!s) return s.error();
        for (const auto& v : values) {
            for (const auto& sc : scopes) {
                sqlite3_reset(*s);
                bind(*s, 1, v);
                bind(*s, 2, sc);
                int rc;
                while ((rc = sqlite3_step(*s)) == SQLITE_ROW) out.push_back(read_entry(*s));
                if (rc != SQLITE_DONE) {
                    sqlite3_reset(*s);
                    return err(rc, "look up whitelist");
                }
            }
        }
        sqlite3_reset(*s);
        return out;
    }

    Result<void> wl_each(const std::function<void(const WlEntry&)>& fn) override {
        auto s = prep("SELECT id,kind,value,scope,note,source,created,hits,last_hit FROM whitelist"
                      " ORDER BY kind,value,scope");
        if (!s) return s.error();
        int rc;
        while ((rc = sqlite3_step(*s)) == SQLITE_ROW) fn(read_entry(*s));
        sqlite3_reset(*s);
        if (rc != SQLITE_DONE) return err(rc, "list whitelist");
        return {};
    }

    Result<void> wl_hit(std::int64_t id, std::int64_t now, std::int64_t n) override {
        return write([&]() -> Result<void> {
            auto s = prep("UPDATE whitelist SET hits=hits+?3, last_hit=max(last_hit, ?2) WHERE id=?1");
            if (!s) return s.error();
            bind(*s, 1, id);
            bind(*s, 2, now);
            bind(*s, 3, n);
            return step_done(*s, "count whitelist hit");
        });
    }

    Result<std::vector<std::pair<std::string, std::int64_t>>> counts(const char* sql) {
        std::vector<std::pair<std::string, std::int64_t>> out;
        auto s = prep(sql);
        if (!s) return s.error();
        int rc;
        while ((rc = sqlite3_step(*s)) == SQLITE_ROW) out.emplace_back(col(*s, 0), sqlite3_column_int64(*s, 1));
        sqlite3_reset(*s);
        if (rc != SQLITE_DONE) return err(rc, "count");
        return out;
    }

    Result<WlStats> wl_stats() override {
        WlStats st;
        auto k = counts("SELECT kind, count(*) FROM whitelist GROUP BY kind ORDER BY kind");
        if (!k) return k.error();
        st.by_kind = *k;
        auto so = counts("SELECT source, count(*) FROM whitelist GROUP BY source ORDER BY source");
        if (!so) return so.error();
        st.by_source = *so;
        auto t = counts("SELECT 'total', count(*) FROM whitelist UNION ALL "
                        "SELECT 'hits', coalesce(sum(hits),0) FROM whitelist UNION ALL "
                        "SELECT 'domains', count(*) FROM domains");
        if (!t) return t.error();
        st.total = (*t)[0].second;
        st.hits = (*t)[1].second;
        st.domains = (*t)[2].second;
        return st;
    }

    // ---- protected domains ----
    Result<bool> domain_add(std::string_view domain, std::int64_t now) override {
        bool added = false;
        auto r = write([&]() -> Result<void> {
            auto s = prep("INSERT OR IGNORE INTO domains(domain,created) VALUES(?1,?2)");
            if (!s) return s.error();
            bind(*s, 1, domain);
            bind(*s, 2, now);
            if (auto d = step_done(*s, "add domain"); !d) return d;
            added = sqlite3_changes(db_) > 0;
            return {};
        });
        if (!r) return r.error();
        return added;
    }

    Result<bool> domain_remove(std::string_view domain) override {
        bool removed = false;
        auto r = write([&]() -> Result<void> {
            auto s = prep("DELETE FROM domains WHERE domain=?1");
            if (!s) return s.error();
            bind(*s, 1, domain);
            if (auto d = step_done(*s, "remove domain"); !d) return d;
            removed = sqlite3_changes(db_) > 0;
            return {};
        });
        if (!r) return r.error();
        return removed;
    }

    Result<std::vector<std::string>> domain_list() override {
        std::vector<std::string> out;
        auto s = prep("SELECT domain FROM domains ORDER BY domain");
        if (!s) return s.error();
        int rc;
        while ((rc = sqlite3_step(*s)) == SQLITE_ROW) out.push_back(col(*s, 0));
        sqlite3_reset(*s);
        if (rc != SQLITE_DONE) return err(rc, "list domains");
        return out;
    }

    // ---- secrets ----
    Result<std::vector<Secret>> secrets(std::string_view purpose) override {
        std::vector<Secret> out;
        auto s = prep("SELECT key_id, secret, created FROM secrets WHERE purpose=?1 ORDER BY key_id DESC");
        if (!s) return s.error();
        bind(*s, 1, purpose);
        int rc;
        while ((rc = sqlite3_step(*s)) == SQLITE_ROW) {
            Secret k;
            k.key_id = sqlite3_column_int(*s, 0);
            auto p = static_cast<const char*>(sqlite3_column_blob(*s, 1));
            k.bytes.assign(p ? p : "", static_cast<size_t>(sqlite3_column_bytes(*s, 1)));
            k.created = sqlite3_column_int64(*s, 2);
            out.push_back(std::move(k));
        }
        sqlite3_reset(*s);
        if (rc != SQLITE_DONE) return err(rc, "read secrets");
        return out;
    }

    Result<int> secret_add(std::string_view purpose, std::string_view bytes, std::int64_t now) override {
        int id = 0;
        auto r = write([&]() -> Result<void> {
            auto q = prep("SELECT coalesce(max(key_id),0)+1 FROM secrets WHERE purpose=?1");
            if (!q) return q.error();
            bind(*q, 1, purpose);
            int rc = sqlite3_step(*q);
            if (rc != SQLITE_ROW) return err(rc, "allocate key id");
            id = sqlite3_column_int(*q, 0);
            sqlite3_reset(*q);
            auto s = prep("INSERT INTO secrets(purpose,key_id,secret,created) VALUES(?1,?2,?3,?4)");
            if (!s) return s.error();
            bind(*s, 1, purpose);
            sqlite3_bind_int(*s, 2, id);
            sqlite3_bind_blob(*s, 3, bytes.data(), static_cast<int>(bytes.size()), SQLITE_TRANSIENT);
            bind(*s, 4, now);
            return step_done(*s, "store secret");
        });
        if (!r) return r.error();
        return id;
    }

    // ---- token records ----
    static TokenRecord read_token(sqlite3_stmt* s) {
        TokenRecord t;
        t.id = col(s, 0);
        t.state = col(s, 1) == "revoked" ? TokenState::revoked : TokenState::used;
        t.recipient = col(s, 2);
        t.expires = sqlite3_column_int64(s, 3);
        t.changed = sqlite3_column_int64(s, 4);
        return t;
    }

    Result<std::optional<TokenRecord>> token_get(std::string_view id) override {
        auto s = prep("SELECT id,state,recipient,expires,changed FROM tokens WHERE id=?1");
        if (!s) return s.error();
        bind(*s, 1, id);
        int rc = sqlite3_step(*s);
        std::optional<TokenRecord> out;
        if (rc == SQLITE_ROW) out = read_token(*s);
        sqlite3_reset(*s);
        if (rc != SQLITE_ROW && rc != SQLITE_DONE) return err(rc, "read token");
        return out;
    }

    Result<std::optional<TokenState>> token_consume(const TokenRecord& r) override { return token_claim(r, ""); }

    // Inside a write transaction: the state that keeps holder from r.id at r.changed (a record, or another
    // holder's live reservation), or nothing.
    Result<std::optional<TokenState>> token_blocked(const TokenRecord& r, std::string_view holder) {
        auto g = token_get(r.id);
        if (!g) return g.error();
        if (g->has_value()) return std::optional<TokenState>((*g)->state);
        auto s = prep("SELECT holder FROM token_holds WHERE id=?1 AND until>=?2");
        if (!s) return s.error();
        bind(*s, 1, r.id);
        bind(*s, 2, r.changed);
        int rc = sqlite3_step(*s);
        bool other = rc == SQLITE_ROW && col(*s, 0) != holder;
        sqlite3_reset(*s);
        if (rc != SQLITE_ROW && rc != SQLITE_DONE) return err(rc, "read token reservation");
        if (other) return std::optional<TokenState>(TokenState::reserved);
        return std::optional<TokenState>();
    }

    Result<std::optional<TokenState>> token_reserve(const TokenRecord& r, std::string_view holder,
                                                    std::int64_t until) override {
        std::optional<TokenState> prior;
        auto w = write([&]() -> Result<void> {
            auto b = token_blocked(r, holder);
            if (!b) return b.error();
            if ((prior = *b)) return {};
            auto d = prep("DELETE FROM token_holds WHERE until<?1");
            if (!d) return d.error();
            bind(*d, 1, r.changed);
            if (auto x = step_done(*d, "prune token reservations"); !x) return x;
            auto s = prep("INSERT INTO token_holds(id,holder,until) VALUES(?1,?2,?3)"
                          " ON CONFLICT(id) DO UPDATE SET holder=excluded.holder, until=excluded.until");
            if (!s) return s.error();
            bind(*s, 1, r.id);
            bind(*s, 2, holder);
            bind(*s, 3, until);
            return step_done(*s, "reserve token");
        });
        if (!w) return w.error();
        return prior;
    }

    Result<std::optional<TokenState>> token_claim(const TokenRecord& r, std::string_view holder) override {
        std::optional<TokenState> prior;
        auto w = write([&]() -> Result<void> {
            auto b = token_blocked(r, holder);
            if (!b) return b.error();
            if ((prior = *b)) return {};
            auto d = prep("DELETE FROM token_holds WHERE id=?1");
            if (!d) return d.error();
            bind(*d, 1, r.id);
            if (auto x = step_done(*d, "drop token reservation"); !x) return x;
            auto s = prep("INSERT INTO tokens(id,state,recipient,expires,changed) VALUES(?1,'used',?2,?3,?4)");
            if (!s) return s.error();
            bind(*s, 1, r.id);
            bind(*s, 2, r.recipient);
            bind(*s, 3, r.expires);
            bind(*s, 4, r.changed);
            return step_done(*s, "consume token");
        });
        if (!w) return w.error();
        return prior;
    }

    Result<void> token_release(std::string_view id, std::string_view holder) override {
        return write([&]() -> Result<void> {
            auto s = prep("DELETE FROM token_holds WHERE id=?1 AND holder=?2");
            if (!s) return s.error();
            bind(*s, 1, id);
            bind(*s, 2, holder);
            return step_done(*s, "release token reservation");
        });
    }

    Result<bool> token_give_back(std::string_view id) override {
        bool gone = false;
        auto w = write([&]() -> Result<void> {
            auto s = prep("DELETE FROM tokens WHERE id=?1 AND state='used'");
            if (!s) return s.error();
            bind(*s, 1, id);
            if (auto x = step_done(*s, "give back token"); !x) return x;
            gone = sqlite3_changes(db_) > 0;
            return {};
        });
        if (!w) return w.error();
        return gone;
    }

    Result<void> token_revoke(const TokenRecord& r) override {
        return write([&]() -> Result<void> {
            auto s = prep("INSERT INTO tokens(id,state,recipient,expires,changed) VALUES(?1,'revoked',?2,?3,?4)"
                          " ON CONFLICT(id) DO UPDATE SET state='revoked', changed=excluded.changed");
            if (!s) return s.error();
            bind(*s, 1, r.id);
            bind(*s, 2, r.recipient);
            bind(*s, 3, r.expires);
            bind(*s, 4, r.changed);
            return step_done(*s, "revoke token");
        });
    }

    Result<std::vector<TokenRecord>> token_list(std::int64_t now) override {
        std::vector<TokenRecord> out;
        auto s = prep("SELECT id,state,recipient,expires,changed FROM tokens WHERE expires>=?1 ORDER BY changed,id");
        if (!s) return s.error();
        bind(*s, 1, now);
        int rc;
        while ((rc = sqlite3_step(*s)) == SQLITE_ROW) out.push_back(read_token(*s));
        sqlite3_reset(*s);
        if (rc != SQLITE_DONE) return err(rc, "list tokens");
        return out;
    }

    Result<std::int64_t> token_expire(std::int64_t now) override {
        std::int64_t n = 0;
        auto r = write([&]() -> Result<void> {
            auto s = prep("DELETE FROM tokens WHERE expires<?1");
            if (!s) return s.error();
            bind(*s, 1, now);
            if (auto d = step_done(*s, "expire tokens"); !d) return d;
            n = sqlite3_changes(db_);
            auto h = prep("DELETE FROM token_holds WHERE until<?1");  // reservations nobody ended
            if (!h) return h.error();
            bind(*h, 1, now);
            return step_done(*h, "expire token reservations");
        });
        if (!r) return r.error();
        return n;
    }

    // ---- spent stamps ----
    Result<SpendState> spend(const SpendRecord& r) override {
        SpendState out = SpendState::fresh;
        auto w = write([&]() -> Result<void> {
            auto s = prep("INSERT OR IGNORE INTO spent(stamp,message,first_seen,expires) VALUES(?1,?2,?3,?4)");
            if (!s) return s.error();
            bind(*s, 1, r.stamp);
            bind(*s, 2, r.message);
            bind(*s, 3, r.now);
            bind(*s, 4, r.expires);
            if (auto d = step_done(*s, "record spend"); !d) return d;
            if (sqlite3_changes(db_) > 0) return {};
            auto q = prep("SELECT message FROM spent WHERE stamp=?1");
            if (!q) return q.error();
            bind(*q, 1, r.stamp);
            int rc = sqlite3_step(*q);
            std::string m = rc == SQLITE_ROW ? col(*q, 0) : std::string();
            sqlite3_reset(*q);
            if (rc != SQLITE_ROW) return err(rc, "read spend");
            out = m == r.message ? SpendState::same_message : SpendState::other_message;
            return {};
        });
        if (!w) return w.error();
        return out;
    }

    Result<std::int64_t> spend_expire(std::int64_t now) override {
        std::int64_t n = 0;
        auto r = write([&]() -> Result<void> {
            auto s = prep("DELETE FROM spent WHERE expires<?1");
            if (!s) return s.error();
            bind(*s, 1, now);
            if (auto d = step_done(*s, "expire spent stamps"); !d) return d;
            n = sqlite3_changes(db_);
            return {};
        });
        if (!r) return r.error();
        return n;
    }

    // ---- stamp books ----
    Result<bool> book_add(const Book& b) override {
        bool added = false;
        auto r = write([&]() -> Result<void> {
            auto s = prep("INSERT OR IGNORE INTO books(id,cert,count,next,expires,imported) VALUES(?1,?2,?3,?4,?5,?6)");
            if (!s) return s.error();
            bind(*s, 1, b.id);
            bind(*s, 2, b.cert);
            bind(*s, 3, b.count);
            bind(*s, 4, b.next);
            bind(*s, 5, b.expires);
            bind(*s, 6, b.imported);
            if (auto d = step_done(*s, "add book"); !d) return d;
            added = sqlite3_changes(db_) > 0;
            return {};
        });
        if (!r) return r.error();
        return added;
    }

    Result<std::vector<Book>> book_list() override {
        std::vector<Book> out;
        auto s = prep("SELECT id,cert,count,next,expires,imported FROM books ORDER BY expires,id");
        if (!s) return s.error();
        int rc;
        while ((rc = sqlite3_step(*s)) == SQLITE_ROW) {
            Book b;
            b.id = col(*s, 0);
            b.cert = col(*s, 1);
            b.count = sqlite3_column_int64(*s, 2);
            b.next = sqlite3_column_int64(*s, 3);
            b.expires = sqlite3_column_int64(*s, 4);
            b.imported = sqlite3_column_int64(*s, 5);
            out.push_back(std::move(b));
        }
        sqlite3_reset(*s);
        if (rc != SQLITE_DONE) return err(rc, "list books");
        return out;
    }

    Result<std::vector<BookStamp>> book_take(std::int64_t n, std::int64_t now) override {
        std::vector<BookStamp> out;
        auto r = write([&]() -> Result<void> {
            auto q = prep("SELECT id,count,next FROM books WHERE next<count AND expires>?1 ORDER BY expires,id");
            if (!q) return q.error();
            bind(*q, 1, now);
            std::vector<BookStamp> take;
            std::vector<std::pair<std::string, std::int64_t>> next;
            int rc;
            std::int64_t want = n;
            while (want > 0 && (rc = sqlite3_step(*q)) == SQLITE_ROW) {
                std::string id = col(*q, 0);
                std::int64_t count = sqlite3_column_int64(*q, 1), i = sqlite3_column_int64(*q, 2);
                for (; i < count && want > 0; ++i, --want) take.push_back({id, i});
                next.emplace_back(id, i);
            }
            if (want > 0 && rc != SQLITE_DONE && rc != SQLITE_ROW) {
                sqlite3_reset(*q);
                return err(rc, "read books");
            }
            sqlite3_reset(*q);
            if (want > 0) return {};  // not enough: take nothing
            for (const auto& [id, i] : next) {
                auto u = prep("UPDATE books SET next=?2 WHERE id=?1");
                if (!u) return u.error();
                bind(*u, 1, id);
                bind(*u, 2, i);
                if (auto d = step_done(*u, "take stamps"); !d) return d;
            }
            out = std::move(take);
            return {};
        });
        if (!r) return r.error();
        return out;
    }

    // ---- sent volume ----
    Result<std::int64_t> volume_add(std::string_view sender, std::int64_t n, std::int64_t now,
                                    std::int64_t window) override {
        std::int64_t before = 0;
        auto r = write([&]() -> Result<void> {
            auto d = prep("DELETE FROM sent WHERE sender=?1 AND time<=?2");
            if (!d) return d.error();
            bind(*d, 1, sender);
            bind(*d, 2, now - window);
            if (auto x = step_done(*d, "prune volume"); !x) return x;
            auto q = prep("SELECT coalesce(sum(n),0) FROM sent WHERE sender=?1");
            if (!q) return q.error();
            bind(*q, 1, sender);
            int rc = sqlite3_step(*q);
            if (rc == SQLITE_ROW) before = sqlite3_column_int64(*q, 0);
            sqlite3_reset(*q);
            if (rc != SQLITE_ROW) return err(rc, "read volume");
            if (n <= 0) return {};
            auto s = prep("INSERT INTO sent(sender,time,n) VALUES(?1,?2,?3)");
            if (!s) return s.error();
            bind(*s, 1, sender);
            bind(*s, 2, now);
            bind(*s, 3, n);
            return step_done(*s, "record volume");
        });
        if (!r) return r.error();
        return before;
    }

    // ---- SMTP AUTH users ----
    Result<bool> user_add(const User& u) override {
        bool added = false;
        auto r = write([&]() -> Result<void> {
            auto s = prep("INSERT OR IGNORE INTO users(name,hash,created,changed,senders) VALUES(?1,?2,?3,?4,?5)");
            if (!s) return s.error();
            std::string senders = join_lines(u.senders);
            bind(*s, 1, u.name);
            bind(*s, 2, u.hash);
            bind(*s, 3, u.created);
            bind(*s, 4, u.changed);
            bind(*s, 5, senders);
            if (auto d = step_done(*s, "add user"); !d) return d;
            added = sqlite3_changes(db_) > 0;
            return {};
        });
        if (!r) return r.error();
        return added;
    }

    Result<bool> user_set_hash(std::string_view name, std::string_view hash, std::int64_t now) override {
        bool found = false;
        auto r = write([&]() -> Result<void> {
            auto s = prep("UPDATE users SET hash=?2, changed=?3 WHERE name=?1");
            if (!s) return s.error();
            bind(*s, 1, name);
            bind(*s, 2, hash);
            bind(*s, 3, now);
            if (auto d = step_done(*s, "change user"); !d) return d;
            found = sqlite3_changes(db_) > 0;
            return {};
        });
        if (!r) return r.error();
        return found;
    }

    Result<bool> user_set_senders(std::string_view name, const std::vector<std::string>& senders) override {
        bool found = false;
        auto r = write([&]() -> Result<void> {
            auto s = prep("UPDATE users SET senders=?2 WHERE name=?1");
            if (!s) return s.error();
            std::string text = join_lines(senders);
            bind(*s, 1, name);
            bind(*s, 2, text);
            if (auto d = step_done(*s, "change user senders"); !d) return d;
            found = sqlite3_changes(db_) > 0;
            return {};
        });
        if (!r) return r.error();
        return found;
    }

    Result<bool> user_remove(std::string_view name) override {
        bool removed = false;
        auto r = write([&]() -> Result<void> {
            auto s = prep("DELETE FROM users WHERE name=?1");
            if (!s) return s.error();
            bind(*s, 1, name);
            if (auto d = step_done(*s, "remove user"); !d) return d;
            removed = sqlite3_changes(db_) > 0;
            return {};
        });
        if (!r) return r.error();
        return removed;
    }

    static constexpr const char* held_cols =
        "id,state,sender,rcpts,subject,message_id,msg_key,path,size,received,expires,confirm,bounce,challenged,"
        "changed,note,parent";

    // A row whose state is none of HeldState's names (not written by mailstamp) is an error, never
    // guessed at: acting on it as some state could deliver or delete what nobody released.
    Result<Held> read_held(sqlite3_stmt* s) const {
        Held h;
        h.id = col(s, 0);
        std::string state = col(s, 1);
        auto st = parse_held_state(state);
        if (!st)
            return Error{ErrorKind::tempfail,
                         "store " + path_ + ": held message " + scrub(h.id, 40) + ": unknown state '" + scrub(state, 40) + "'"};
        h.state = *st;
        h.sender = col(s, 2);
        h.rcpts = split_lines(col(s, 3));
        h.subject = col(s, 4);
        h.message_id = col(s, 5);
        h.msg_key = col(s, 6);
        h.path = col(s, 7);
        h.size = sqlite3_column_int64(s, 8);
        h.received = sqlite3_column_int64(s, 9);
        h.expires = sqlite3_column_int64(s, 10);
        h.confirm = col(s, 11);
        h.bounce = col(s, 12);
        h.challenged = sqlite3_column_int64(s, 13);
        h.changed = sqlite3_column_int64(s, 14);
        h.note = col(s, 15);
        h.parent = col(s, 16);
        return h;
    }

    Result<bool> held_add(const Held& h) override {
        bool added = false;
        std::string rcpts = join_lines(h.rcpts);
        auto r = write([&]() -> Result<void> {
            auto s = prep("INSERT OR IGNORE INTO held(id,state,sender,rcpts,subject,message_id,msg_key,path,size,"
                          "received,expires,confirm,bounce,challenged,changed,note,parent)"
                          " VALUES(?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13,?14,?15,?16,?17)");
            if (!s) return s.error();
            bind(*s, 1, h.id);
            bind(*s, 2, to_string(h.state));
            bind(*s, 3, h.sender);
            bind(*s, 4, rcpts);
            bind(*s, 5, h.subject);
            bind(*s, 6, h.message_id);
            bind(*s, 7, h.msg_key);
            bind(*s, 8, h.path);
            bind(*s, 9, h.size);
            bind(*s, 10, h.received);
            bind(*s, 11, h.expires);
            bind(*s, 12, h.confirm);
            bind(*s, 13, h.bounce);
            bind(*s, 14, h.challenged);
            bind(*s, 15, h.changed);
            bind(*s, 16, h.note);
            bind(*s, 17, h.parent);
            if (auto d = step_done(*s, "hold message"); !d) return d;
            added = sqlite3_changes(db_) > 0;
            return {};
        });
        if (!r) return r.error();
        return added;
    }

    Result<std::optional<Held>> held_find(HeldKey key, std::string_view value) override {
        static const std::string by_id = std::string("SELECT ") + held_cols + " FROM held WHERE id=?1";
        static const std::string by_confirm = std::string("SELECT ") + held_cols + " FROM held WHERE confirm=?1 LIMIT 1";
        static const std::string by_bounce = std::string("SELECT ") + held_cols + " FROM held WHERE bounce=?1 LIMIT 1";
        // A live row before an ended one: the retry of a message still held finds it.
        static const std::string by_key = std::string("SELECT ") + held_cols +
                                          " FROM held WHERE msg_key=?1 ORDER BY state='ended', received DESC LIMIT 1";
        const std::string& sql = key == HeldKey::id ? by_id : key == HeldKey::confirm ? by_confirm
                               : key == HeldKey::bounce ? by_bounce : by_key;
        auto s = prep(sql.c_str());
        if (!s) return s.error();
        bind(*s, 1, value);
        int rc = sqlite3_step(*s);
        std::optional<Held> out;
        std::optional<Error> bad;
        if (rc == SQLITE_ROW) {
            if (auto h = read_held(*s)) out = std::move(*h);
            else bad = h.error();
        }
        sqlite3_reset(*s);
        if (rc != SQLITE_ROW && rc != SQLITE_DONE) return err(rc, "read held message");
        if (bad) return *bad;
        return out;
    }

    Result<void> held_each(const HeldFilter& f, const std::function<void(const Held&)>& fn) override {
        static const std::string sql = std::string("SELECT ") + held_cols +
                                       " FROM held WHERE received < ?1 AND (?2 = '' OR sender = ?2)"
                                       " AND (?3 = '' OR instr(?3, ',' || state || ',') > 0) ORDER BY received, id";
        auto s = prep(sql.c_str());
        if (!s) return s.error();
        std::string states;
        if (!f.states.empty()) {
            states = ",";
            for (HeldState st : f.states) (states += to_string(st)) += ",";
        }
        bind(*s, 1, f.received_before);
        bind(*s, 2, f.sender);
        bind(*s, 3, states);
        int rc;
        while ((rc = sqlite3_step(*s)) == SQLITE_ROW) {
            auto h = read_held(*s);
            if (!h) {
                sqlite3_reset(*s);
                return h.error();
            }
            fn(*h);
        }
        sqlite3_reset(*s);
        if (rc != SQLITE_DONE) return err(rc, "list held messages");
        return {};
    }

    Result<bool> held_transition(std::string_view id, const std::vector<HeldState>& from, HeldState to,
                                 std::int64_t now, std::string_view note) override {
        bool done = false;
        std::string states = ",";
        for (HeldState st : from) (states += to_string(st)) += ",";
        auto r = write([&]() -> Result<void> {
            auto s = prep("UPDATE held SET state=?2, changed=?3, note=CASE WHEN ?4='' THEN note ELSE ?4 END"
                          " WHERE id=?1 AND instr(?5, ',' || state || ',') > 0");
            if (!s) return s.error();
            bind(*s, 1, id);
            bind(*s, 2, to_string(to));
            bind(*s, 3, now);
            bind(*s, 4, note);
            bind(*s, 5, states);
            if (auto d = step_done(*s, "change held message"); !d) return d;
            done = sqlite3_changes(db_) > 0;
            return {};
        });
        if (!r) return r.error();
        return done;
    }

    Result<void> held_set_challenged(std::string_view id, std::int64_t when) override {
        return write([&]() -> Result<void> {
            auto s = prep("UPDATE held SET challenged=?2, changed=?2 WHERE id=?1");
            if (!s) return s.error();
            bind(*s, 1, id);
            bind(*s, 2, when);
            return step_done(*s, "record challenge");
        });
    }

    Result<bool> held_remove(std::string_view id) override {
        bool done = false;
        auto r = write([&]() -> Result<void> {
            auto s = prep("DELETE FROM held WHERE id=?1");
            if (!s) return s.error();
            bind(*s, 1, id);
            if (auto d = step_done(*s, "remove held message"); !d) return d;
            done = sqlite3_changes(db_) > 0;
            return {};
        });
        if (!r) return r.error();
        return done;
    }

    static User read_user(sqlite3_stmt* s) {
        User u;
        u.name = col(s, 0);
        u.hash = col(s, 1);
        u.created = sqlite3_column_int64(s, 2);
        u.changed = sqlite3_column_int64(s, 3);
        u.senders = split_lines(col(s, 4));
        return u;
    }

    Result<std::optional<User>> user_get(std::string_view name) override {
        auto s = prep("SELECT name,hash,created,changed,senders FROM users WHERE name=?1");
        if (!s) return s.error();
        bind(*s, 1, name);
        int rc = sqlite3_step(*s);
        std::optional<User> out;
        if (rc == SQLITE_ROW) out = read_user(*s);
        sqlite3_reset(*s);
        if (rc != SQLITE_ROW && rc != SQLITE_DONE) return err(rc, "read user");
        return out;
    }

    Result<std::vector<User>> user_list() override {
        std::vector<User> out;
        auto s = prep("SELECT name,hash,created,changed,senders FROM users ORDER BY name");
        if (!s) return s.error();
        int rc;
        while ((rc = sqlite3_step(*s)) == SQLITE_ROW) out.push_back(read_user(*s));
        sqlite3_reset(*s);
        if (rc != SQLITE_DONE) return err(rc, "list users");
        return out;
    }

    // ---- SOURCE/GET (msourced) ----
    static constexpr const char* source_out_cols =
        "id,domain,sender,rcpts,path,size,created,expires,gets,max_gets,state,tries,next_try,note";

    static SourceOut read_source_out(sqlite3_stmt* s) {
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

    Result<bool> source_out_add(const SourceOut& o) override {
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

    Result<std::vector<SourceOut>> source_out_list() override {
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

    Result<bool> source_out_claim(std::string_view id, std::int64_t now, std::int64_t until) override {
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

    Result<void> source_out_update(std::string_view id, std::string_view state, std::int64_t tries,
                                   std::int64_t next_try, std::string_view note) override {
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

    Result<std::optional<SourceOut>> source_out_get(std::string_view id, std::int64_t now) override {
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

    Result<bool> source_out_remove(std::string_view id) override {
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

    Result<std::int64_t> source_out_path_uses(std::string_view path) override {
        auto s = prep("SELECT count(*) FROM source_out WHERE path=?1");
        if (!s) return s.error();
        bind(*s, 1, path);
        int rc = sqlite3_step(*s);
        std::int64_t n = rc == SQLITE_ROW ? sqlite3_column_int64(*s, 0) : 0;
        sqlite3_reset(*s);
        if (rc != SQLITE_ROW) return err(rc, "count outgoing messages");
        return n;
    }

    static SourceIn read_source_in(sqlite3_stmt* s) {
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

    Result<bool> source_in_add(const SourceIn& p) override {
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

    Result<std::vector<SourceIn>> source_in_list() override {
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

    Result<bool> source_in_claim(std::string_view domain, std::string_view id, std::int64_t now,
                                 std::int64_t until) override {
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

    Result<void> source_in_retry(std::string_view domain, std::string_view id, std::int64_t tries,
                                 std::int64_t next_try, std::string_view note) override {
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

    Result<bool> source_in_remove(std::string_view domain, std::string_view id) override {
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
    Result<bool> rate_hit(std::string_view key, std::int64_t now, std::int64_t window, std::int64_t limit) override {
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

    Result<std::int64_t> rate_count(std::string_view key, std::int64_t now, std::int64_t window,
                                     std::int64_t add) override {
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

private:
    sqlite3* db_;
    std::string path_;
    std::map<std::string, std::unique_ptr<Stmt>, std::less<>> stmts_;
    int depth_ = 0;
};

std::string parent_dir(const std::string& path) {
    auto slash = path.rfind('/');
    if (slash == std::string::npos) return ".";
    if (slash == 0) return "/";
    return path.substr(0, slash);
}

// Creates the directories of a personal store (0700), like mkdir -p.
Result<void> make_dirs(const std::string& dir) {
    struct stat st;
    if (::stat(dir.c_str(), &st) == 0) return {};
    std::string up = parent_dir(dir);
    if (up != dir) {
        if (auto r = make_dirs(up); !r) return r;
    }
    if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST)
        return Error{ErrorKind::tempfail, "store directory " + dir + ": " + std::strerror(errno)};
    return {};
}

// Creates the store file with the right mode before SQLite opens it, so the
// database never exists with a wider mode; SQLite gives its -wal and -shm
// files the mode of the database file. Its directory is made only with dirs:
// a mistyped directory must fail, not grow a second, empty store.
Result<void> create_file(const std::string& path, bool dirs) {
    std::string dir = parent_dir(path);
    struct stat st;
    if (dirs) {
        if (auto r = make_dirs(dir); !r) return r;
    } else if (::stat(dir.c_str(), &st) != 0) {
        return Error{ErrorKind::tempfail, "store " + path + ": directory " + dir + ": " + std::strerror(errno) +
                                               " (only the store file itself is created)"};
    }
    mode_t mode = 0600;
    if (::stat(dir.c_str(), &st) == 0 && (st.st_mode & S_ISGID) && (st.st_mode & S_IWGRP)) mode = 0660;
    int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
    if (fd < 0) {
        if (errno == EEXIST) return {};
        return Error{ErrorKind::tempfail, "store " + path + ": " + std::strerror(errno)};
    }
    ::fchmod(fd, mode);  // umask must not narrow a system store's group bits
    ::close(fd);
    return {};
}

} // namespace

std::string_view to_string(WlKind k) {
    switch (k) {
    case WlKind::address: return "address";
    case WlKind::domain: return "domain";
    case WlKind::subdomains: return "subdomains";
    case WlKind::recipient: return "recipient";
    }
    return "address";
}

std::string_view to_string(HeldState s) {
    switch (s) {
    case HeldState::held: return "held";
    case HeldState::pending: return "pending";
    case HeldState::quiet: return "quiet";
    case HeldState::releasing: return "releasing";
    case HeldState::deletable: return "deletable";
    case HeldState::match: return "match";
    case HeldState::ended: return "ended";
    }
    return "held";
}

std::optional<HeldState> parse_held_state(std::string_view s) {
    for (HeldState st : {HeldState::held, HeldState::pending, HeldState::quiet, HeldState::releasing,
                         HeldState::deletable, HeldState::match, HeldState::ended})
        if (to_string(st) == s) return st;
    return std::nullopt;
}

std::optional<WlKind> parse_wl_kind(std::string_view s) {
    if (s == "address") return WlKind::address;
    if (s == "domain") return WlKind::domain;
    if (s == "subdomains") return WlKind::subdomains;
    if (s == "recipient") return WlKind::recipient;
    return std::nullopt;
}

std::string_view to_string(TokenState s) {
    switch (s) {
    case TokenState::used: return "used";
    case TokenState::revoked: return "revoked";
    case TokenState::reserved: return "reserved";
    }
    return "used";
}

bool store_multithread_init() {
    if (sqlite3_config(SQLITE_CONFIG_MULTITHREAD) != SQLITE_OK) return false;
    sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
    return sqlite3_initialize() == SQLITE_OK;
}

int store_schema_version() { return schema_version; }

Result<std::unique_ptr<Store>> open_store(const std::string& path, const StoreOptions& opt) {
    if (path.empty()) return Error{ErrorKind::config, "store path is empty"};
    int flags = SQLITE_OPEN_FULLMUTEX;
    if (opt.read_only || opt.create == StoreCreate::never) {
        // SQLite without SQLITE_OPEN_CREATE fails on a missing file too, but says only "unable to open".
        struct stat st;
        if (::stat(path.c_str(), &st) != 0) {
            if (errno != ENOENT) return Error{ErrorKind::tempfail, "store " + path + ": " + std::strerror(errno)};
            return Error{ErrorKind::tempfail, "store " + path + " does not exist (a mistyped path? a write command "
                                                                "such as mwhitelist add creates it)"};
        }
    }
    if (opt.read_only) {
        flags |= SQLITE_OPEN_READONLY;
    } else {
        if (opt.create != StoreCreate::never)
            if (auto r = create_file(path, opt.create == StoreCreate::dirs); !r) return r.error();
        flags |= SQLITE_OPEN_READWRITE;
    }
    sqlite3* db = nullptr;
    int rc = sqlite3_open_v2(path.c_str(), &db, flags, nullptr);
    auto store = std::make_unique<SqliteStore>(db, path);
    if (rc != SQLITE_OK) return store->err(rc, "open");
    sqlite3_busy_timeout(db, opt.busy_timeout_ms);
    sqlite3_extended_result_codes(db, 1);
    if (!opt.read_only) {
        // WAL lets readers run beside the one writer; FULL sync so a committed
        // token consumption or whitelist change survives a power cut.
        // Switching a new file to WAL can meet SQLITE_BUSY without the busy
        // handler being called (another process is doing the same), so retry.
        for (int waited = 0;; waited += 10) {
            int prc = sqlite3_exec(db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;", nullptr, nullptr, nullptr);
            if (prc == SQLITE_OK) break;
            if ((prc & 0xff) != SQLITE_BUSY || waited >= opt.busy_timeout_ms) return store->err(prc, "set journal mode");
            ::usleep(10000);
        }
        // Keep the -wal file when the last connection closes: the filters open the
        // store once per message, and deleting and re-creating it every time made
        // inode allocation a visible share of their run time.
        // journal_size_limit >= 0 makes the last close truncate the kept file to
        // empty, so the next open does not scan old frames to rebuild its index.
        int persist = 1;
        sqlite3_file_control(db, "main", SQLITE_FCNTL_PERSIST_WAL, &persist);
        if (auto r = store->exec("PRAGMA journal_size_limit=1048576"); !r) return r.error();
        if (auto r = store->migrate(); !r) return r.error();
    } else {
        auto v = store->user_version();
        if (!v) return v.error();
        if (*v != schema_version)
            return Error{ErrorKind::tempfail, "store " + path + ": schema version " + std::to_string(*v) +
                                                   ", expected " + std::to_string(schema_version)};
    }
    return std::unique_ptr<Store>(std::move(store));
}

} // namespace mail
