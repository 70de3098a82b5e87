// The admission core's lookups on a store: see admission_store.hpp.
#include "libmail/policy/admission_store.hpp"

#include "libmail/base/clock.hpp"
#include "libmail/base/codec.hpp"
#include "libmail/policy/batv.hpp"
#include "libmail/policy/user_senders.hpp"
#include "libmail/policy/whitelist.hpp"

#include <openssl/rand.h>

namespace mail {

StoreLookups::StoreLookups(Store& store, char delimiter, std::function<void(std::int64_t, std::int64_t)> count_hit)
    : store_(store), delimiter_(delimiter), count_hit_(std::move(count_hit)) {}

Lookups StoreLookups::lookups() { return Lookups{*this, *this, *this, *this, [] { return now(); }, nullptr}; }

Result<std::optional<WlEntry>> StoreLookups::match(std::string_view sender, std::string_view rcpt) {
    return wl_match(store_, sender, rcpt);
}

void StoreLookups::hit(std::int64_t id, std::int64_t t) {
    if (count_hit_) count_hit_(id, t);
    else (void)store_.wl_hit(id, t);  // a statistic: not worth refusing mail over
}

Result<TokenVerdict> StoreLookups::reserve(std::string_view address, std::string_view sender, std::string_view holder,
                                 std::int64_t until,
                                           std::int64_t t, std::optional<TokenRecord>& hold) {
    return reserve_token(store_, address, sender, holder, until, delimiter_, t, hold);
}

Result<std::string> StoreLookups::issue(const TokenRequest& req, std::int64_t t) { return issue_token(store_, req, t); }

Result<bool> StoreLookups::rate(const std::string& key, std::int64_t t, std::int64_t window, std::int64_t limit) {
    return store_.rate_hit(key, t, window, limit);
}

Result<std::optional<TokenState>> StoreLookups::claim(const TokenRecord& r, std::string_view holder) {
    return store_.token_claim(r, holder);
}

void StoreLookups::release(std::string_view id, std::string_view holder) {
    (void)store_.token_release(id, holder);  // a failure leaves the reservation to run out
}

Result<void> StoreLookups::give_back(std::string_view id) {
    auto g = store_.token_give_back(id);
    if (!g) return g.error();
    return {};
}

Result<std::vector<std::string>> StoreLookups::domains() {
    if (!domains_) {
        auto d = store_.domain_list();
        if (!d) return d.error();
        domains_ = std::move(*d);
    }
    return *domains_;
}

Result<std::vector<Secret>> StoreLookups::batv_keys() { return store_.secrets(batv_secret_purpose); }

Result<std::optional<std::vector<std::string>>> StoreLookups::senders_of(std::string_view user) {
    auto u = store_.user_get(user);
    if (!u) return u.error();
    if (!*u) return std::optional<std::vector<std::string>>();
    return std::optional<std::vector<std::string>>(user_senders(**u));
}

Result<SpendState> StoreLookups::spend(const SpendRecord& r) { return store_.spend(r); }

void StoreLookups::expire(std::int64_t t) { (void)store_.spend_expire(t); }

Result<Verdict> decide_filter(StoreLookups& lookups, std::optional<TokenHolds>& holds, const Envelope& env,
                              const MessageReader& msg, char delimiter, const PostagePolicy& postage,
                              const std::function<Result<std::string>()>& body_hash, AuthLookup* auth) {
    auto holder = new_holder();
    if (!holder) return holder.error();
    Facts facts;
    facts.sender = env.sender;
    facts.sender_match = env.sender.value_or("");
    facts.holder = *holder;
    holds.emplace(lookups, *holder);
    GatePolicy gp;
    gp.delimiter = delimiter;
    gp.postage = postage;
    Lookups look = lookups.lookups();
    look.auth = auth;
    Gate gate(gp, look);
    return gate.decide(facts, env, msg, body_hash, holds->records());
}

ChallengeAuth challenge_filter(StoreLookups& lookups, const Envelope& env, AuthLookup* auth) {
    Facts facts;
    facts.sender = env.sender;
    facts.sender_match = env.sender.value_or("");
    GatePolicy gp;
    Lookups look = lookups.lookups();
    look.auth = auth;
    Gate gate(gp, look);
    return gate.challenge(facts);
}

Result<std::string> new_holder() {
    unsigned char id[8];
    if (RAND_bytes(id, sizeof id) != 1) return Error{ErrorKind::tempfail, "no randomness for a token reservation"};
    return hex_encode(std::string_view(reinterpret_cast<char*>(id), sizeof id));
}

} // namespace mail
