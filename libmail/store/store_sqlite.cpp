// SQLite backend of the store interface (DESIGN §4): opening and creating the store file, and the schema
// migrations; open_store, which picks the engine. The statements of each table group are in the sql_*.cpp
// files beside it.
#include "libmail/store/sql_store.hpp"
#include "libmail/store/sqlite_db.hpp"
#include "libmail/store/store_pg.hpp"

#include <cerrno>
#include <cstring>
#include <fcntl.h>
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
    // 6 -> 7: the authentication each whitelist entry's hit needs (issue 14); existing entries get the
    // default, auto: a forged sender of a domain that authenticates its mail no longer gets in.
    "ALTER TABLE whitelist ADD COLUMN auth TEXT NOT NULL DEFAULT 'auto'"
    "  CHECK(auth='auto' OR auth='spf' OR auth='dkim' OR auth='dmarc' OR auth='none');",
    // 7 -> 8: the addresses of mchallenge's digests (issue 17), each bound to its recipient and held mail.
    "CREATE TABLE digest_tokens(id TEXT PRIMARY KEY, action TEXT NOT NULL, recipient TEXT NOT NULL,"
    "  held TEXT NOT NULL, digest TEXT NOT NULL, expires INTEGER NOT NULL, used INTEGER NOT NULL DEFAULT 0)"
    "  WITHOUT ROWID;"
    "CREATE INDEX digest_tokens_expires ON digest_tokens(expires);",
};
constexpr int schema_version = sizeof(migrations) / sizeof(migrations[0]);

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

// Brings the file's schema up to this build's version.
Result<void> migrate(SqliteDb& db) {
    auto v = db.user_version();
    if (!v) return v.error();
    if (*v == schema_version) return {};
    if (*v > schema_version)
        return Error{ErrorKind::tempfail, "store " + db.name() + ": schema version " + std::to_string(*v) +
                                               " is newer than this program's (" +
                                               std::to_string(schema_version) + ")"};
    return db.write([&]() -> Result<void> {
        auto cur = db.user_version();  // another process may have migrated meanwhile
        if (!cur) return cur.error();
        for (int i = *cur; i < schema_version; ++i) {
            if (auto r = db.exec(migrations[i]); !r) return r;
        }
        std::string pv = "PRAGMA user_version=" + std::to_string(schema_version);
        return db.exec(pv.c_str());
    });
}

} // namespace

bool store_multithread_init() {
    if (sqlite3_config(SQLITE_CONFIG_MULTITHREAD) != SQLITE_OK) return false;
    sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
    return sqlite3_initialize() == SQLITE_OK;
}

int store_schema_version() { return schema_version; }

Result<std::unique_ptr<Store>> open_store(const std::string& path, const StoreOptions& opt) {
    if (path.empty()) return Error{ErrorKind::config, "store path is empty"};
    if (is_pg_uri(path)) return open_pg_store(path, opt);
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
    auto store = std::make_unique<SqliteDb>(db, path);
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
        sqlite3_file_control(store->handle(), "main", SQLITE_FCNTL_PERSIST_WAL, &persist);
        if (auto r = store->exec("PRAGMA journal_size_limit=1048576"); !r) return r.error();
        if (auto r = migrate(*store); !r) return r.error();
    } else {
        auto v = store->user_version();
        if (!v) return v.error();
        if (*v != schema_version)
            return Error{ErrorKind::tempfail, "store " + path + ": schema version " + std::to_string(*v) +
                                                   ", expected " + std::to_string(schema_version)};
    }
    return std::unique_ptr<Store>(std::make_unique<SqlStore>(std::move(store)));
}

} // namespace mail
