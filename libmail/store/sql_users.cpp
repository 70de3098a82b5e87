// The store (SQL, both engines): secrets and SMTP AUTH users.
#include "libmail/store/sql_store.hpp"

namespace mail {

// ---- secrets ----
Result<std::vector<Secret>> SqlStore::secrets(std::string_view purpose) {
    return all_rows(bound("SELECT key_id, secret, created FROM secrets WHERE purpose=?1 ORDER BY key_id DESC", purpose),
                    "read secrets", [](const SqlRow& s) {
                        Secret k;
                        k.key_id = static_cast<int>(s.integer(0));
                        k.bytes = s.blob(1);
                        k.created = s.integer(2);
                        return k;
                    });
}

Result<int> SqlStore::secret_add(std::string_view purpose, std::string_view bytes, std::int64_t now) {
    int id = 0;
    auto r = write([&]() -> Result<void> {
        auto q = step_one(bound("SELECT coalesce(max(key_id),0)+1 FROM secrets WHERE purpose=?1", purpose),
                          "allocate key id", [&](const SqlRow& s) { id = static_cast<int>(s.integer(0)); });
        if (!q) return q;
        return no_count(run("INSERT INTO secrets(purpose,key_id,secret,created) VALUES(?1,?2,?3,?4)", "store secret",
                            purpose, id, SqlBlob{bytes}, now));
    });
    if (!r) return r.error();
    return id;
}

// ---- SMTP AUTH users ----
Result<bool> SqlStore::user_add(const User& u) {
    std::string senders = join_lines(u.senders);
    return write_any("INSERT INTO users(name,hash,created,changed,senders) VALUES(?1,?2,?3,?4,?5)"
                     " ON CONFLICT DO NOTHING",
                     "add user", u.name, u.hash, u.created, u.changed, senders);
}

Result<bool> SqlStore::user_set_hash(std::string_view name, std::string_view hash, std::int64_t now) {
    return write_any("UPDATE users SET hash=?2, changed=?3 WHERE name=?1", "change user", name, hash, now);
}

Result<bool> SqlStore::user_set_senders(std::string_view name, const std::vector<std::string>& senders) {
    std::string text = join_lines(senders);
    return write_any("UPDATE users SET senders=?2 WHERE name=?1", "change user senders", name, text);
}

Result<bool> SqlStore::user_remove(std::string_view name) {
    return write_any("DELETE FROM users WHERE name=?1", "remove user", name);
}

User SqlStore::read_user(const SqlRow& s) {
    User u;
    SqlReader(s) >> u.name >> u.hash >> u.created >> u.changed >> u.senders;
    return u;
}

Result<std::optional<User>> SqlStore::user_get(std::string_view name) {
    return first_row(bound("SELECT name,hash,created,changed,senders FROM users WHERE name=?1", name), "read user",
                     read_user);
}

Result<std::vector<User>> SqlStore::user_list() {
    return all_rows(prep("SELECT name,hash,created,changed,senders FROM users ORDER BY name"), "list users",
                    read_user);
}

} // namespace mail
