// The store interface (DESIGN §4) on SQL: the class behind open_store, whichever engine holds the store
// (SQLite: store_sqlite.cpp; PostgreSQL: store_pg.cpp, each with its schema and migrations). Private to store/:
// its members are defined one table group a file (sql_whitelist, sql_tokens, sql_users, sql_stamps, sql_held,
// sql_source, sql_digest), in SQL both engines run.
#pragma once
#include "libmail/store/sql_db.hpp"
#include "libmail/store/store.hpp"

#include <memory>

namespace mail {

/// Owns the connection, so that it is there before SqlOps takes it.
struct SqlDbOwner {
    std::unique_ptr<SqlDb> conn;
};

/// The store over one SQL connection.
class SqlStore final : private SqlDbOwner, public Store, public SqlOps {
public:
    /// Takes over db, whose schema is this build's.
    explicit SqlStore(std::unique_ptr<SqlDb> db) : SqlDbOwner{std::move(db)}, SqlOps(*conn) {}

    Result<void> transaction(const std::function<Result<void>()>& fn) override { return write(fn); }
    /// The connection (store_copy: whole tables, whichever engine).
    SqlDb& sql_db() { return db_; }

    Result<bool> wl_insert(const WlEntry& e) override;
    Result<bool> wl_remove(WlKind kind, std::string_view value, std::string_view scope) override;
    Result<std::vector<WlEntry>> wl_lookup(const std::vector<std::string>& values,
                                           const std::vector<std::string>& scopes) override;
    Result<void> wl_each(const std::function<void(const WlEntry&)>& fn) override;
    Result<void> wl_hit(std::int64_t id, std::int64_t now, std::int64_t n) override;
    Result<WlStats> wl_stats() override;

    Result<bool> domain_add(std::string_view domain, std::int64_t now) override;
    Result<bool> domain_remove(std::string_view domain) override;
    Result<std::vector<std::string>> domain_list() override;

    Result<std::vector<Secret>> secrets(std::string_view purpose) override;
    Result<int> secret_add(std::string_view purpose, std::string_view bytes, std::int64_t now) override;

    Result<std::optional<TokenState>> token_consume(const TokenRecord& r) override;
    Result<std::optional<TokenState>> token_reserve(const TokenRecord& r, std::string_view holder,
                                                    std::int64_t until) override;
    Result<std::optional<TokenState>> token_claim(const TokenRecord& r, std::string_view holder) override;
    Result<void> token_release(std::string_view id, std::string_view holder) override;
    Result<bool> token_give_back(std::string_view id) override;
    Result<void> token_revoke(const TokenRecord& r) override;
    Result<std::optional<TokenRecord>> token_get(std::string_view id) override;
    Result<std::vector<TokenRecord>> token_list(std::int64_t now) override;
    Result<std::int64_t> token_expire(std::int64_t now) override;

    Result<SpendState> spend(const SpendRecord& r) override;
    Result<std::int64_t> spend_expire(std::int64_t now) override;

    Result<bool> book_add(const Book& b) override;
    Result<std::vector<Book>> book_list() override;
    Result<std::vector<BookStamp>> book_take(std::int64_t n, std::int64_t now) override;

    Result<std::int64_t> volume_add(std::string_view sender, std::int64_t n, std::int64_t now,
                                    std::int64_t window) override;

    Result<bool> user_add(const User& u) override;
    Result<bool> user_set_hash(std::string_view name, std::string_view hash, std::int64_t now) override;
    Result<bool> user_set_senders(std::string_view name, const std::vector<std::string>& senders) override;
    Result<bool> user_remove(std::string_view name) override;
    Result<std::optional<User>> user_get(std::string_view name) override;
    Result<std::vector<User>> user_list() override;

    Result<bool> held_add(const Held& h) override;
    Result<std::optional<Held>> held_find(HeldKey key, std::string_view value) override;
    Result<void> held_each(const HeldFilter& f, const std::function<void(const Held&)>& fn) override;
    Result<bool> held_transition(std::string_view id, const std::vector<HeldState>& from, HeldState to,
                                 std::int64_t now, std::string_view note) override;
    Result<void> held_set_challenged(std::string_view id, std::int64_t when) override;
    Result<bool> held_remove(std::string_view id) override;

    Result<void> digest_add(const std::vector<DigestToken>& ts) override;
    Result<std::optional<DigestToken>> digest_get(std::string_view id) override;
    Result<bool> digest_claim(std::string_view id, std::int64_t now) override;
    Result<bool> digest_unclaim(std::string_view id, std::int64_t used) override;
    Result<std::int64_t> digest_expire(std::int64_t now) override;

    Result<bool> source_out_add(const SourceOut& o) override;
    Result<std::vector<SourceOut>> source_out_list() override;
    Result<bool> source_out_claim(std::string_view id, std::int64_t now, std::int64_t until) override;
    Result<void> source_out_update(std::string_view id, std::string_view state, std::int64_t tries,
                                   std::int64_t next_try, std::string_view note) override;
    Result<std::optional<SourceOut>> source_out_get(std::string_view id, std::int64_t now) override;
    Result<bool> source_out_remove(std::string_view id) override;
    Result<std::int64_t> source_out_path_uses(std::string_view path) override;

    Result<bool> source_in_add(const SourceIn& p) override;
    Result<std::vector<SourceIn>> source_in_list() override;
    Result<bool> source_in_claim(std::string_view domain, std::string_view id, std::int64_t now,
                                 std::int64_t until) override;
    Result<void> source_in_retry(std::string_view domain, std::string_view id, std::int64_t tries,
                                 std::int64_t next_try, std::string_view note) override;
    Result<bool> source_in_remove(std::string_view domain, std::string_view id) override;

    Result<bool> rate_hit(std::string_view key, std::int64_t now, std::int64_t window, std::int64_t limit) override;
    Result<std::int64_t> rate_count(std::string_view key, std::int64_t now, std::int64_t window,
                                    std::int64_t add) override;

private:
    static WlEntry read_entry(const SqlRow& s);
    Result<std::vector<std::pair<std::string, std::int64_t>>> counts(const char* sql);
    static TokenRecord read_token(const SqlRow& s);
    Result<std::optional<TokenState>> token_blocked(const TokenRecord& r, std::string_view holder);
    Result<std::optional<TokenState>> token_take(const TokenRecord& r, std::string_view holder,
                                                 const std::function<Result<void>()>& take);
    Result<Held> read_held(const SqlRow& s) const;
    static User read_user(const SqlRow& s);
    static SourceOut read_source_out(const SqlRow& s);
    static SourceIn read_source_in(const SqlRow& s);
};

} // namespace mail
