// SQLite store: one-time token records and their reservations.
#include "libmail/store/sqlite_store.hpp"

namespace mail {

// ---- token records ----
TokenRecord SqliteStore::read_token(sqlite3_stmt* s) {
    TokenRecord t;
    t.id = col(s, 0);
    t.state = col(s, 1) == "revoked" ? TokenState::revoked : TokenState::used;
    t.recipient = col(s, 2);
    t.expires = sqlite3_column_int64(s, 3);
    t.changed = sqlite3_column_int64(s, 4);
    return t;
}

Result<std::optional<TokenRecord>> SqliteStore::token_get(std::string_view id) {
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

Result<std::optional<TokenState>> SqliteStore::token_consume(const TokenRecord& r) { return token_claim(r, ""); }

// Inside a write transaction: the state that keeps holder from r.id at r.changed (a record, or another
// holder's live reservation), or nothing.
Result<std::optional<TokenState>> SqliteStore::token_blocked(const TokenRecord& r, std::string_view holder) {
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

Result<std::optional<TokenState>> SqliteStore::token_reserve(const TokenRecord& r, std::string_view holder,
                                                std::int64_t until) {
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

Result<std::optional<TokenState>> SqliteStore::token_claim(const TokenRecord& r, std::string_view holder) {
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

Result<void> SqliteStore::token_release(std::string_view id, std::string_view holder) {
    return write([&]() -> Result<void> {
        auto s = prep("DELETE FROM token_holds WHERE id=?1 AND holder=?2");
        if (!s) return s.error();
        bind(*s, 1, id);
        bind(*s, 2, holder);
        return step_done(*s, "release token reservation");
    });
}

Result<bool> SqliteStore::token_give_back(std::string_view id) {
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

Result<void> SqliteStore::token_revoke(const TokenRecord& r) {
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

Result<std::vector<TokenRecord>> SqliteStore::token_list(std::int64_t now) {
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

Result<std::int64_t> SqliteStore::token_expire(std::int64_t now) {
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

} // namespace mail
