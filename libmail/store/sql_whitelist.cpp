// The store (SQL, both engines): the whitelist and the protected domains.
#include "libmail/store/sql_store.hpp"

namespace mail {

// ---- whitelist ----
Result<bool> SqlStore::wl_insert(const WlEntry& e) {
    return write_any("INSERT INTO whitelist(kind,value,scope,note,source,created,hits,last_hit,auth)"
                     " VALUES(?1,?2,?3,?4,?5,?6,?7,?8,?9) ON CONFLICT DO NOTHING",
                     "add whitelist entry", to_string(e.kind), e.value, e.scope, e.note, e.source, e.created, e.hits,
                     e.last_hit, to_string(e.auth));
}

Result<bool> SqlStore::wl_remove(WlKind kind, std::string_view value, std::string_view scope) {
    return write_any("DELETE FROM whitelist WHERE value=?1 AND scope=?2 AND kind=?3", "remove whitelist entry", value,
                     scope, to_string(kind));
}

WlEntry SqlStore::read_entry(const SqlRow& s) {
    WlEntry e;
    std::string kind, auth;
    SqlReader(s) >> e.id >> kind >> e.value >> e.scope >> e.note >> e.source >> e.created >> e.hits >> e.last_hit >>
        auth;
    e.kind = parse_wl_kind(kind).value_or(WlKind::address);
    e.auth = parse_wl_auth(auth).value_or(WlAuth::automatic);
    return e;
}

Result<std::vector<WlEntry>> SqlStore::wl_lookup(const std::vector<std::string>& values,
                                                    const std::vector<std::string>& scopes) {
    std::vector<WlEntry> out;
    if (values.empty() || scopes.empty()) return out;
    // One statement for every (value, scope) pair: a probe of the unique index (value, scope, kind) each, in one
    // round trip to a server. Its text depends only on the two counts, so a handful of statements get prepared.
    std::string sql = "SELECT id,kind,value,scope,note,source,created,hits,last_hit,auth FROM whitelist WHERE value IN (";
    SqlQuery q{nullptr, {}};
    int i = 0;
    for (const auto& v : values) {
        sql += (i ? ",?" : "?") + std::to_string(i + 1);
        ++i;
        q.args.emplace_back(v);
    }
    sql += ") AND scope IN (";
    for (std::size_t k = 0; k < scopes.size(); ++k) {
        sql += (k ? ",?" : "?") + std::to_string(i + 1);
        ++i;
        q.args.emplace_back(scopes[k]);
    }
    sql += ")";
    q.sql = sql.c_str();
    auto r = each_row(q, "look up whitelist", [&](const SqlRow& row) { out.push_back(read_entry(row)); });
    if (!r) return r.error();
    return out;
}

Result<void> SqlStore::wl_each(const std::function<void(const WlEntry&)>& fn) {
    return each_row(prep("SELECT id,kind,value,scope,note,source,created,hits,last_hit,auth FROM whitelist"
                         " ORDER BY kind,value,scope"),
                    "list whitelist", [&](const SqlRow& s) { fn(read_entry(s)); });
}

Result<void> SqlStore::wl_hit(std::int64_t id, std::int64_t now, std::int64_t n) {
    return no_count(write_run("UPDATE whitelist SET hits=hits+?3, last_hit=CASE WHEN last_hit>?2 THEN last_hit ELSE ?2 END WHERE id=?1",
                              "count whitelist hit", id, now, n));
}

Result<std::vector<std::pair<std::string, std::int64_t>>> SqlStore::counts(const char* sql) {
    return all_rows(prep(sql), "count", [](const SqlRow& s) {
        std::pair<std::string, std::int64_t> p;
        SqlReader(s) >> p.first >> p.second;
        return p;
    });
}

Result<WlStats> SqlStore::wl_stats() {
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
Result<bool> SqlStore::domain_add(std::string_view domain, std::int64_t now) {
    return write_any("INSERT INTO domains(domain,created) VALUES(?1,?2) ON CONFLICT DO NOTHING", "add domain", domain, now);
}

Result<bool> SqlStore::domain_remove(std::string_view domain) {
    return write_any("DELETE FROM domains WHERE domain=?1", "remove domain", domain);
}

Result<std::vector<std::string>> SqlStore::domain_list() {
    return all_rows(prep("SELECT domain FROM domains ORDER BY domain"), "list domains",
                    [](const SqlRow& s) { return s.text(0); });
}

} // namespace mail
