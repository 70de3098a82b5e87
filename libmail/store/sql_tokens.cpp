// The store (SQL, both engines): one-time token records and their reservations.
#include "libmail/store/sql_store.hpp"

namespace mail {

TokenRecord SqlStore::read_token(const SqlRow& s) {
    TokenRecord t;
    std::string state;
    SqlReader(s) >> t.id >> state >> t.recipient >> t.expires >> t.changed;
    t.state = state == "revoked" ? TokenState::revoked : TokenState::used;
    return t;
}

Result<std::optional<TokenRecord>> SqlStore::token_get(std::string_view id) {
    return first_row(bound("SELECT id,state,recipient,expires,changed FROM tokens WHERE id=?1", id), "read token",
                     read_token);
}

Result<std::optional<TokenState>> SqlStore::token_consume(const TokenRecord& r) { return token_claim(r, ""); }

// Inside a write transaction: the state that keeps holder from r.id at r.changed (a record, or another
// holder's live reservation), or nothing.
Result<std::optional<TokenState>> SqlStore::token_blocked(const TokenRecord& r, std::string_view holder) {
    auto g = token_get(r.id);
    if (!g) return g.error();
    if (g->has_value()) return std::optional<TokenState>((*g)->state);
    bool other = false;
    auto f = step_row(bound("SELECT holder FROM token_holds WHERE id=?1 AND until>=?2", r.id, r.changed),
                      "read token reservation", [&](const SqlRow& s) { other = s.text(0) != holder; });
    if (!f) return f.error();
    if (other) return std::optional<TokenState>(TokenState::reserved);
    return std::optional<TokenState>();
}

// In one write transaction: the state that blocks holder from r.id, or else nothing once take has run.
Result<std::optional<TokenState>> SqlStore::token_take(const TokenRecord& r, std::string_view holder,
                                                          const std::function<Result<void>()>& take) {
    std::optional<TokenState> prior;
    auto w = write([&]() -> Result<void> {
        auto b = token_blocked(r, holder);
        if (!b) return b.error();
        if ((prior = *b)) return {};
        return take();
    });
    if (!w) return w.error();
    return prior;
}

Result<std::optional<TokenState>> SqlStore::token_reserve(const TokenRecord& r, std::string_view holder,
                                                             std::int64_t until) {
    return token_take(r, holder, [&]() -> Result<void> {
        if (auto d = run("DELETE FROM token_holds WHERE until<?1", "prune token reservations", r.changed); !d)
            return d.error();
        return no_count(run("INSERT INTO token_holds(id,holder,until) VALUES(?1,?2,?3)"
                            " ON CONFLICT(id) DO UPDATE SET holder=excluded.holder, until=excluded.until",
                            "reserve token", r.id, holder, until));
    });
}

Result<std::optional<TokenState>> SqlStore::token_claim(const TokenRecord& r, std::string_view holder) {
    return token_take(r, holder, [&]() -> Result<void> {
        if (auto d = run("DELETE FROM token_holds WHERE id=?1", "drop token reservation", r.id); !d) return d.error();
        return no_count(run("INSERT INTO tokens(id,state,recipient,expires,changed) VALUES(?1,'used',?2,?3,?4)",
                            "consume token", r.id, r.recipient, r.expires, r.changed));
    });
}

Result<void> SqlStore::token_release(std::string_view id, std::string_view holder) {
    return no_count(
        write_run("DELETE FROM token_holds WHERE id=?1 AND holder=?2", "release token reservation", id, holder));
}

Result<bool> SqlStore::token_give_back(std::string_view id) {
    return write_any("DELETE FROM tokens WHERE id=?1 AND state='used'", "give back token", id);
}

Result<void> SqlStore::token_revoke(const TokenRecord& r) {
    return no_count(write_run("INSERT INTO tokens(id,state,recipient,expires,changed) VALUES(?1,'revoked',?2,?3,?4)"
                              " ON CONFLICT(id) DO UPDATE SET state='revoked', changed=excluded.changed",
                              "revoke token", r.id, r.recipient, r.expires, r.changed));
}

Result<std::vector<TokenRecord>> SqlStore::token_list(std::int64_t now) {
    return all_rows(
        bound("SELECT id,state,recipient,expires,changed FROM tokens WHERE expires>=?1 ORDER BY changed,id", now),
        "list tokens", read_token);
}

Result<std::int64_t> SqlStore::token_expire(std::int64_t now) {
    std::int64_t n = 0;
    auto r = write([&]() -> Result<void> {
        auto d = run("DELETE FROM tokens WHERE expires<?1", "expire tokens", now);
        if (!d) return d.error();
        n = *d;
        // reservations nobody ended
        return no_count(run("DELETE FROM token_holds WHERE until<?1", "expire token reservations", now));
    });
    if (!r) return r.error();
    return n;
}

} // namespace mail
