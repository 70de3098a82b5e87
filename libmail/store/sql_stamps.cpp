// The store (SQL, both engines): spent stamps, stamp books and sent volume.
#include "libmail/store/sql_store.hpp"

namespace mail {

// ---- spent stamps ----
Result<SpendState> SqlStore::spend(const SpendRecord& r) {
    SpendState out = SpendState::fresh;
    auto w = write([&]() -> Result<void> {
        auto n = run("INSERT INTO spent(stamp,message,first_seen,expires) VALUES(?1,?2,?3,?4)"
                     " ON CONFLICT DO NOTHING",
                     "record spend", r.stamp, r.message, r.now, r.expires);
        if (!n) return n.error();
        if (*n > 0) return {};
        std::string m;
        auto q = step_one(bound("SELECT message FROM spent WHERE stamp=?1", r.stamp), "read spend",
                          [&](const SqlRow& s) { m = s.text(0); });
        if (!q) return q;
        out = m == r.message ? SpendState::same_message : SpendState::other_message;
        return {};
    });
    if (!w) return w.error();
    return out;
}

Result<std::int64_t> SqlStore::spend_expire(std::int64_t now) {
    return write_run("DELETE FROM spent WHERE expires<?1", "expire spent stamps", now);
}

// ---- stamp books ----
Result<bool> SqlStore::book_add(const Book& b) {
    return write_any("INSERT INTO books(id,cert,count,next,expires,imported) VALUES(?1,?2,?3,?4,?5,?6)"
                     " ON CONFLICT DO NOTHING",
                     "add book", b.id, b.cert, b.count, b.next, b.expires, b.imported);
}

Result<std::vector<Book>> SqlStore::book_list() {
    return all_rows(prep("SELECT id,cert,count,next,expires,imported FROM books ORDER BY expires,id"), "list books",
                    [](const SqlRow& s) {
                        Book b;
                        SqlReader(s) >> b.id >> b.cert >> b.count >> b.next >> b.expires >> b.imported;
                        return b;
                    });
}

Result<std::vector<BookStamp>> SqlStore::book_take(std::int64_t n, std::int64_t now) {
    std::vector<BookStamp> out;
    auto r = write([&]() -> Result<void> {
        std::vector<BookStamp> take;
        std::vector<std::pair<std::string, std::int64_t>> next;
        std::int64_t want = n;
        auto q = each_row(bound("SELECT id,count,next FROM books WHERE next<count AND expires>?1 ORDER BY expires,id",
                                now),
                          "read books", [&](const SqlRow& row) {
                              if (want <= 0) return;
                              std::string id;
                              std::int64_t count = 0, i = 0;
                              SqlReader(row) >> id >> count >> i;
                              for (; i < count && want > 0; ++i, --want) take.push_back({id, i});
                              next.emplace_back(id, i);
                          });
        if (!q) return q;
        if (want > 0) return {};  // not enough: take nothing
        for (const auto& [id, i] : next) {
            if (auto d = run("UPDATE books SET next=?2 WHERE id=?1", "take stamps", id, i); !d) return d.error();
        }
        out = std::move(take);
        return {};
    });
    if (!r) return r.error();
    return out;
}

// ---- sent volume ----
Result<std::int64_t> SqlStore::volume_add(std::string_view sender, std::int64_t n, std::int64_t now,
                                             std::int64_t window) {
    std::int64_t before = 0;
    auto r = write([&]() -> Result<void> {
        if (auto d = run("DELETE FROM sent WHERE sender=?1 AND time<=?2", "prune volume", sender, now - window); !d)
            return d.error();
        auto q = step_one(bound("SELECT coalesce(sum(n),0) FROM sent WHERE sender=?1", sender), "read volume",
                          [&](const SqlRow& s) { before = s.integer(0); });
        if (!q) return q;
        if (n <= 0) return {};
        return no_count(run("INSERT INTO sent(sender,time,n) VALUES(?1,?2,?3)", "record volume", sender, now, n));
    });
    if (!r) return r.error();
    return before;
}

} // namespace mail
