// SQLite store: spent stamps, stamp books and sent volume.
#include "libmail/store/sqlite_store.hpp"

namespace mail {

// ---- spent stamps ----
Result<SpendState> SqliteStore::spend(const SpendRecord& r) {
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

Result<std::int64_t> SqliteStore::spend_expire(std::int64_t now) {
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
Result<bool> SqliteStore::book_add(const Book& b) {
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

Result<std::vector<Book>> SqliteStore::book_list() {
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

Result<std::vector<BookStamp>> SqliteStore::book_take(std::int64_t n, std::int64_t now) {
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
Result<std::int64_t> SqliteStore::volume_add(std::string_view sender, std::int64_t n, std::int64_t now,
                                std::int64_t window) {
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

} // namespace mail
