// SQLite store: the whitelist and the protected domains.
#include "libmail/store/sqlite_store.hpp"

namespace mail {

// ---- whitelist ----
Result<bool> SqliteStore::wl_insert(const WlEntry& e) {
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

Result<bool> SqliteStore::wl_remove(WlKind kind, std::string_view value, std::string_view scope) {
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

WlEntry SqliteStore::read_entry(sqlite3_stmt* s) {
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

Result<std::vector<WlEntry>> SqliteStore::wl_lookup(const std::vector<std::string>& values,
                                       const std::vector<std::string>& scopes) {
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

Result<void> SqliteStore::wl_each(const std::function<void(const WlEntry&)>& fn) {
    auto s = prep("SELECT id,kind,value,scope,note,source,created,hits,last_hit FROM whitelist"
                  " ORDER BY kind,value,scope");
    if (!s) return s.error();
    int rc;
    while ((rc = sqlite3_step(*s)) == SQLITE_ROW) fn(read_entry(*s));
    sqlite3_reset(*s);
    if (rc != SQLITE_DONE) return err(rc, "list whitelist");
    return {};
}

Result<void> SqliteStore::wl_hit(std::int64_t id, std::int64_t now, std::int64_t n) {
    return write([&]() -> Result<void> {
        auto s = prep("UPDATE whitelist SET hits=hits+?3, last_hit=max(last_hit, ?2) WHERE id=?1");
        if (!s) return s.error();
        bind(*s, 1, id);
        bind(*s, 2, now);
        bind(*s, 3, n);
        return step_done(*s, "count whitelist hit");
    });
}

Result<std::vector<std::pair<std::string, std::int64_t>>> SqliteStore::counts(const char* sql) {
    std::vector<std::pair<std::string, std::int64_t>> out;
    auto s = prep(sql);
    if (!s) return s.error();
    int rc;
    while ((rc = sqlite3_step(*s)) == SQLITE_ROW) out.emplace_back(col(*s, 0), sqlite3_column_int64(*s, 1));
    sqlite3_reset(*s);
    if (rc != SQLITE_DONE) return err(rc, "count");
    return out;
}

Result<WlStats> SqliteStore::wl_stats() {
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
Result<bool> SqliteStore::domain_add(std::string_view domain, std::int64_t now) {
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

Result<bool> SqliteStore::domain_remove(std::string_view domain) {
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

Result<std::vector<std::string>> SqliteStore::domain_list() {
    std::vector<std::string> out;
    auto s = prep("SELECT domain FROM domains ORDER BY domain");
    if (!s) return s.error();
    int rc;
    while ((rc = sqlite3_step(*s)) == SQLITE_ROW) out.push_back(col(*s, 0));
    sqlite3_reset(*s);
    if (rc != SQLITE_DONE) return err(rc, "list domains");
    return out;
}

} // namespace mail
