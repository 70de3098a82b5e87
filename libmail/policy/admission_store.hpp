// The admission core's lookups on a store (admission.hpp): what every front end uses in production.
#pragma once
#include "libmail/policy/admission.hpp"

#include <functional>
#include <optional>

namespace mail {

/// Every lookup of the admission core answered from one store connection.
class StoreLookups : public WhitelistLookup, public TokenLookup, public SiteLookup, public SpendLookup {
public:
    /// Lookups on store with the token delimiter; count_hit counts whitelist hits (default: one store write each).
    StoreLookups(Store& store, char delimiter, std::function<void(std::int64_t, std::int64_t)> count_hit = {});

    /// The bundle for a Gate, with the system clock.
    Lookups lookups();

    Result<std::optional<WlEntry>> match(std::string_view sender, std::string_view rcpt) override;
    void hit(std::int64_t id, std::int64_t now) override;
    Result<TokenVerdict> reserve(std::string_view address, std::string_view sender, std::string_view holder,
                                 std::int64_t until,
                                 std::int64_t now, std::optional<TokenRecord>& hold) override;
    Result<std::string> issue(const TokenRequest& req, std::int64_t now) override;
    Result<bool> rate(const std::string& key, std::int64_t now, std::int64_t window, std::int64_t limit) override;
    Result<std::optional<TokenState>> claim(const TokenRecord& r, std::string_view holder) override;
    void release(std::string_view id, std::string_view holder) override;
    Result<void> give_back(std::string_view id) override;
    Result<std::vector<std::string>> domains() override;
    Result<std::vector<Secret>> batv_keys() override;
    Result<std::optional<std::vector<std::string>>> senders_of(std::string_view user) override;
    Result<SpendState> spend(const SpendRecord& r) override;
    void expire(std::int64_t now) override;

private:
    Store& store_;
    char delimiter_;
    std::function<void(std::int64_t, std::int64_t)> count_hit_;
    std::optional<std::vector<std::string>> domains_;  ///< read once per connection's use
};

/// A filter's question (mverify, mchallenge): Gate::decide for the message msg with env (its envelope, From
/// addresses included), asked of lookups under a policy of delimiter and postage; the reservations it makes go
/// into holds (made here), to be claimed once the message goes out.
/// auth: the message's sender authentication (nullptr: none, as before issue 14 -- no front end passes that).
Result<Verdict> decide_filter(StoreLookups& lookups, std::optional<TokenHolds>& holds, const Envelope& env,
                              const MessageReader& msg, char delimiter, const PostagePolicy& postage,
                              const std::function<Result<std::string>()>& body_hash, AuthLookup* auth);

/// Whether a challenge may go to env's sender (Gate::challenge) on what auth knows.
ChallengeAuth challenge_filter(StoreLookups& lookups, const Envelope& env, AuthLookup* auth);

/// A name for one transaction's token reservations: random, hex.
Result<std::string> new_holder();

} // namespace mail
