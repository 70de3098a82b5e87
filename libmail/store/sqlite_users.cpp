// SQLite store: secrets and SMTP AUTH users.
#include "libmail/store/sqlite_store.hpp"

namespace mail {

// ---- secrets ----
Result<std::vector<Secret>> SqliteStore::secrets(std::string_view purpose) {
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

Result<int> SqliteStore::secret_add(std::string_view purpose, std::string_view bytes, std::int64_t now) {
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

// ---- SMTP AUTH users ----
Result<bool> SqliteStore::user_add(const User& u) {
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

Result<bool> SqliteStore::user_set_hash(std::string_view name, std::string_view hash, std::int64_t now) {
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

Result<bool> SqliteStore::user_set_senders(std::string_view name, const std::vector<std::string>& senders) {
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

Result<bool> SqliteStore::user_remove(std::string_view name) {
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

User SqliteStore::read_user(sqlite3_stmt* s) {
    User u;
    u.name = col(s, 0);
    u.hash = col(s, 1);
    u.created = sqlite3_column_int64(s, 2);
    u.changed = sqlite3_column_int64(s, 3);
    u.senders = split_lines(col(s, 4));
    return u;
}

Result<std::optional<User>> SqliteStore::user_get(std::string_view name) {
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

Result<std::vector<User>> SqliteStore::user_list() {
    std::vector<User> out;
    auto s = prep("SELECT name,hash,created,changed,senders FROM users ORDER BY name");
    if (!s) return s.error();
    int rc;
    while ((rc = sqlite3_step(*s)) == SQLITE_ROW) out.push_back(read_user(*s));
    sqlite3_reset(*s);
    if (rc != SQLITE_DONE) return err(rc, "list users");
    return out;
}

} // namespace mail
