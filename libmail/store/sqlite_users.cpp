// SQLite store: secrets and SMTP AUTH users.
#include "libmail/store/sqlite_store.hpp"

namespace mail {

// ---- secrets ----
Result<std::vector<Secret>> SqliteStore::secrets(std::string_view purpose) {
    return all_rows(bound("SELECT key_id, secret, created FROM secrets WHERE purpose=?1 ORDER BY key_id DESC", purpose),
                    "read secrets", [](sqlite3_stmt* s) {
                        Secret k;
                        k.key_id = sqlite3_column_int(s, 0);
                        auto p = static_cast<const char*>(sqlite3_column_blob(s, 1));
                        k.bytes.assign(p ? p : "", static_cast<size_t>(sqlite3_column_bytes(s, 1)));
                        k.created = sqlite3_column_int64(s, 2);
                        return k;
                    });
}

Result<int> SqliteStore::secret_add(std::string_view purpose, std::string_view bytes, std::int64_t now) {
    int id = 0;
    auto r = write([&]() -> Result<void> {
        auto q = step_one(bound("SELECT coalesce(max(key_id),0)+1 FROM secrets WHERE purpose=?1", purpose),
                          "allocate key id", [&](sqlite3_stmt* s) { id = sqlite3_column_int(s, 0); });
        if (!q) return q;
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
    std::string senders = join_lines(u.senders);
    return write_any("INSERT OR IGNORE INTO users(name,hash,created,changed,senders) VALUES(?1,?2,?3,?4,?5)",
                     "add user", u.name, u.hash, u.created, u.changed, senders);
}

Result<bool> SqliteStore::user_set_hash(std::string_view name, std::string_view hash, std::int64_t now) {
    return write_any("UPDATE users SET hash=?2, changed=?3 WHERE name=?1", "change user", name, hash, now);
}

Result<bool> SqliteStore::user_set_senders(std::string_view name, const std::vector<std::string>& senders) {
    std::string text = join_lines(senders);
    return write_any("UPDATE users SET senders=?2 WHERE name=?1", "change user senders", name, text);
}

Result<bool> SqliteStore::user_remove(std::string_view name) {
    return write_any("DELETE FROM users WHERE name=?1", "remove user", name);
}

User SqliteStore::read_user(sqlite3_stmt* s) {
    User u;
    SqliteRow(s) >> u.name >> u.hash >> u.created >> u.changed >> u.senders;
    return u;
}

Result<std::optional<User>> SqliteStore::user_get(std::string_view name) {
    return first_row(bound("SELECT name,hash,created,changed,senders FROM users WHERE name=?1", name), "read user",
                     read_user);
}

Result<std::vector<User>> SqliteStore::user_list() {
    return all_rows(prep("SELECT name,hash,created,changed,senders FROM users ORDER BY name"), "list users",
                    read_user);
}

} // namespace mail
