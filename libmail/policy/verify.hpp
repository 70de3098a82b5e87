// Verdicts on incoming mail (DESIGN §5): the checks mverify runs, and that
// msmtp-proxy and mchallenge reuse. Category order: Whitelist (sender, From,
// unconditional recipient, token address) first, because it needs no stamp;
// then postage (Stamped, or Questionable when the authority cannot answer);
// then Information for a non-delivery notice; Unknown otherwise.
#pragma once
#include "libmail/base/error.hpp"
#include "libmail/policy/postage.hpp"
#include "libmail/store/store.hpp"

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace mail {

class MessageReader;

/// The categories of DESIGN §5 that mverify gives.
enum class Category { stamped, questionable, whitelist, unknown, information };

/// The category's letter: G, Q, W, B, I.
char category_letter(Category c);
/// The category's name: Stamped, Questionable, Whitelist, Unknown, Information.
std::string_view category_name(Category c);
/// The category for a letter (either case), or nothing.
std::optional<Category> parse_category(std::string_view letter);

/// The envelope as far as a filter knows it (DESIGN §7).
struct Envelope {
    std::optional<std::string> sender;  ///< normalised; "" for the null sender <>; nothing when unknown
    std::vector<std::string> rcpts;     ///< normalised, unique
    std::vector<std::string> from;      ///< normalised From addresses
};

/// The envelope: sender from `sender` (when given), else Return-Path, else the mbox From line; recipients from
/// `rcpts` (when any), else X-Original-To / Delivered-To, else the To and Cc addresses in `domains` (all of
/// them when `domains` is empty). Senders lose BATV tags, and SRS wrappers of trusted_forwarders only.
Result<Envelope> envelope_of(const MessageReader& msg, const std::optional<std::string>& sender,
                             const std::vector<std::string>& rcpts, const std::vector<std::string>& domains,
                             const std::vector<std::string>& trusted_forwarders = {});

/// Spend records of stamps (store spend / spend_expire).
class SpendLookup {
public:
    virtual ~SpendLookup() = default;
    /// Records r's stamp as spent on r's message: fresh, the same message again, or another message.
    virtual Result<SpendState> spend(const SpendRecord& r) = 0;
    /// Drops records past their expiry (housekeeping).
    virtual void expire(std::int64_t now) = 0;
};

/// The From addresses of msg (at most limits::from_addresses), normalised, BATV tags and trusted forwarders'
/// SRS wrappers taken off.
std::vector<std::string> from_addresses(const MessageReader& msg, const std::vector<std::string>& trusted_forwarders);

/// What the postage checks need to know.
struct PostagePolicy {
    int min_bits = 20;
    std::vector<std::string> authority_keys;  ///< trusted authority public keys (raw)
    /// The online spend check, when an authority is configured: an Error when unreachable (tempfail) or
    /// when the answer is not signed by the book's authority for this request (data).
    std::function<Result<SpendState>(const PostageStamp&)> remote_spend;
};

/// The verdict on one message.
struct Verdict {
    Category category = Category::unknown;
    std::string reason;        ///< short, for X-Mailstamp-Class: "sender alice@x is whitelisted"
    std::string hashcash;      ///< RFC 8601 result of the hashcash check: pass, fail, none
    std::string postage;       ///< the same for signed postage: pass, fail, temperror, none
    std::string hashcash_why;  ///< comment: "22 bits for bob@x", "spent", ...
    std::string postage_why;
    std::vector<std::string> auth_results;  ///< RFC 8601 method results of sender authentication (spf, dkim,
                                            ///< dmarc, arc), added beside the postage ones
};

/// True when the message carries stamps of either kind.
bool has_postage(const MessageReader& msg);

/// Checks the stamps on msg for env's recipients; body_hash is the relaxed body hash (postage.hpp).
/// Fills the postage fields of v and sets v.category to stamped or questionable when they earn it.
Result<void> check_stamps(SpendLookup& spend, const MessageReader& msg, const Envelope& env, std::string_view body_hash,
                          const PostagePolicy& policy, std::int64_t now, Verdict& v);

/// Removes the verdict fields a sender may have forged (DESIGN §5): every X-Mailstamp-* field, and each
/// Authentication-Results under authserv_id (others' stay); how many.
std::size_t strip_verdicts(MessageReader& msg, std::string_view authserv_id);

/// Adds X-Mailstamp-Class and Authentication-Results (RFC 8601) for v under authserv_id at the top of msg.
void add_verdict_fields(MessageReader& msg, const Verdict& v, std::string_view authserv_id);

} // namespace mail
