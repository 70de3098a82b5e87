// The admission core (mailstamp(7) ADMISSION): who gets in, decided in one
// place for every front end, one function per SMTP stage in the spirit of
// Postfix's smtpd_check_*:
//   at_mail  the sender (an authenticated user's ownership of it);
//   at_rcpt  the sender and one recipient: relay control, the null sender,
//            whitelist (entries scoped to a token's base recipient count),
//            postmaster, token addresses (a one-time token is reserved, not
//            used), and what an unknown sender gets (provisional, or 550 with
//            a fresh token address);
//   at_end   the header fields, the body digest and the stamps, for the
//            recipients still provisional: a whitelisted From, postage, the
//            null sender's notice, or Unknown.
// msmtp-proxy asks at each stage; mverify and mchallenge ask for the whole
// message with decide_message. Everything the core looks up comes through
// the small interfaces below, so it is tested with fakes and never touches a
// socket or a file. A front end makes no admission decision of its own.
#pragma once
#include "libmail/auth/auth.hpp"
#include "libmail/base/error.hpp"
#include "libmail/policy/token.hpp"
#include "libmail/policy/verify.hpp"
#include "libmail/smtp/smtp_server.hpp"
#include "libmail/store/store.hpp"

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace mail {

class MessageReader;

/// Whitelist entries: the best match, and counting a hit.
class WhitelistLookup {
public:
    virtual ~WhitelistLookup() = default;
    /// The best entry for sender ("" : none known) and recipient ("" : any), as wl_match finds it.
    virtual Result<std::optional<WlEntry>> match(std::string_view sender, std::string_view rcpt) = 0;
    /// Counts a hit on entry id (a statistic: failures are the lookup's to log, never a refusal).
    virtual void hit(std::int64_t id, std::int64_t now) = 0;
};

/// Token addresses: reserving one for a transaction, handing out fresh ones, limits on handing out.
class TokenLookup {
public:
    virtual ~TokenLookup() = default;
    /// As reserve_token (token.hpp): checks address for sender; reserves a good one-time token for holder until `until`.
    virtual Result<TokenVerdict> reserve(std::string_view address, std::string_view sender, std::string_view holder,
                                 std::int64_t until,
                                         std::int64_t now, std::optional<TokenRecord>& hold) = 0;
    /// A fresh token address for req.
    virtual Result<std::string> issue(const TokenRequest& req, std::int64_t now) = 0;
    /// One more of key within a fixed window (store rate_hit): true while under limit.
    virtual Result<bool> rate(const std::string& key, std::int64_t now, std::int64_t window, std::int64_t limit) = 0;
    /// Turns holder's reservation into a use: nothing when done, else the state that stopped it.
    virtual Result<std::optional<TokenState>> claim(const TokenRecord& r, std::string_view holder) = 0;
    /// Ends holder's reservation of token id without a use (a failure leaves it to run out).
    virtual void release(std::string_view id, std::string_view holder) = 0;
    /// Makes a claimed use of token id undone: the message it was for was not taken.
    virtual Result<void> give_back(std::string_view id) = 0;
};

/// Facts about the site: the protected domains, BATV keys, the senders a user owns.
class SiteLookup {
public:
    virtual ~SiteLookup() = default;
    /// The protected domains (normalised).
    virtual Result<std::vector<std::string>> domains() = 0;
    /// The BATV signing keys, newest first.
    virtual Result<std::vector<Secret>> batv_keys() = 0;
    /// The addresses and @domains user may send as; nothing when there is no such user.
    virtual Result<std::optional<std::vector<std::string>>> senders_of(std::string_view user) = 0;
};

/// Sender authentication as far as a front end knows it at each stage (mailstamp(7) ADMISSION): a whitelist
/// hit counts only for an authenticated identity.
class AuthLookup {
public:
    virtual ~AuthLookup() = default;
    /// SPF of the MAIL FROM identity as evaluated at MAIL (the proxy); nothing when it was not evaluated.
    virtual std::optional<spf::Outcome> spf_at_mail() = 0;
    /// Every method's results once the message has been read; nullptr before that (the proxy before the
    /// end of DATA). Filters know them before they ask.
    virtual const auth::Results* results() = 0;
    /// What domain publishes (an SPF record, a DMARC record).
    virtual auth::Publishes publishes(std::string_view domain) = 0;
    /// An event for the log: "forged" or "unauthenticated_hit", the identity, what the results were.
    virtual void note(std::string_view event, std::string_view identity, std::string_view detail) = 0;
};

/// All the lookups of one front end, and its clock.
struct Lookups {
    WhitelistLookup& whitelist;
    TokenLookup& tokens;
    SiteLookup& site;
    SpendLookup& spend;
    std::function<std::int64_t()> now;
    /// Sender authentication; nullptr: none at all, every hit counts as before issue 14 (unit tests of the
    /// other rules only; every front end passes one).
    AuthLookup* auth = nullptr;
};

/// May a challenge go to the envelope sender (mchallenge)? Only to one that authenticates.
enum class ChallengeAuth {
    send,   ///< SPF pass or an aligned DKIM pass for its domain, or a domain that publishes nothing
    quiet,  ///< SPF fail, DMARC reject/quarantine without alignment, or no pass where the domain publishes:
            ///< hold the message without a challenge (it would go to a forged address)
    tempfail,  ///< a DNS failure decides it: try again later
};

/// The settings of the core, resolved by the front end.
struct GatePolicy {
    char delimiter = '+';
    PostagePolicy postage;
    bool relay_control = false;   ///< refuse recipients outside the protected domains (SMTP front ends)
    bool refuse_unknown = false;  ///< an unknown sender's recipient gets 550 and a token at RCPT (reject modes)
    bool token_postage = false;   ///< the tokens handed out need a hashcash stamp for them (--unknown token-postage)
    std::int64_t token_ttl = 10 * 86400;
    std::int64_t token_limit_network = 0;  ///< tokens a day per /24 or /64; 0: no limit
    std::int64_t token_limit_sender = 0;   ///< tokens a day per sender; 0: no limit
    bool batv = false;                     ///< bounces only to BATV-signed addresses
    std::vector<std::string> home_domains; ///< senders authenticated users may use; empty: the protected domains
};

/// The envelope and client facts of one transaction.
struct Facts {
    std::string client;                 ///< "ip:port", "" when unknown (a filter)
    std::optional<std::string> sender;  ///< normalised as given; "" for <>; nothing when unknown
    std::string sender_match;           ///< the sender with BATV/SRS tags taken off, for whitelist matching
    std::string user;                   ///< the authenticated user; "" when none
    std::string holder;                 ///< this transaction's name on the one-time tokens it reserves
    /// How the message came: "" when the client sent it (DATA); else it was fetched by GET (the SOURCE
    /// extension, msourced(8)) from an MX of this domain, as our own lookup found that MX. A fetch from the
    /// sender's domain speaks for that domain as an SPF pass does: whitelist entries that need spf or auto
    /// authentication count it.
    std::string fetched_from;
};

/// Sets f.sender (normalised; "" for the null sender, given as "", "<>" or an empty path) and f.sender_match
/// (the sender without BATV/SRS tags and those of trusted_forwarders) from the path of MAIL FROM; false, with
/// f untouched, when the path is not an address with a domain (553 5.1.7 for every front end).
bool set_sender(Facts& f, const std::string& path, const std::vector<std::string>& trusted_forwarders);

/// What the core says.
enum class Outcome { accept, provisional, refuse, tempfail };

/// A decision about the sender or one recipient.
struct Decision {
    Outcome outcome = Outcome::provisional;
    Category category = Category::unknown;
    std::string reason;                ///< short, for X-Mailstamp-Class and the log
    std::string rcpt;                  ///< the recipient as given (normalised)
    std::string deliver_to;            ///< where an accepted recipient goes (a token's base, a BATV address stripped)
    SmtpReply reply;                   ///< refuse and tempfail: the reply; accept: 250
    std::string token;                 ///< refuse: the fresh token address in the reply
    std::optional<TokenRecord> hold;   ///< a one-time token reserved here: claim it once the message is taken
    std::string stamp_for;             ///< a postage-flagged token: the message needs a hashcash stamp for it
    bool outgoing = false;             ///< an authenticated user's mail (to the smart host)
    bool busy = false;                 ///< a token another transaction holds
    bool auth_pending = false;         ///< provisional: a whitelisted sender whose authentication the end of
                                       ///< the message decides (SPF did not pass at RCPT, DKIM/DMARC may)
    std::string unauthenticated;       ///< a whitelisted sender that failed authentication (logged forged)
};

/// The verdict at end of message: the category and stamp results for the provisional recipients.
struct EndVerdict {
    Outcome outcome = Outcome::accept;
    Verdict verdict;
    SmtpReply reply;  ///< refuse: the reply for the whole message
};

/// The admission core of one front end: policy and lookups.
class Gate {
public:
    /// The core with policy and lookups (both must outlive it).
    Gate(const GatePolicy& policy, const Lookups& lookups) : p_(policy), l_(lookups) {}

    /// MAIL: an authenticated user sends only as an address in the home domains that it owns.
    Decision at_mail(const Facts& f);
    /// RCPT: the decision for rcpt (normalised; "" when no recipient is known).
    Decision at_rcpt(const Facts& f, const std::string& rcpt);
    /// End of message: for the provisional recipients rcpts (their deliver_to), with the header section of
    /// msg, the From addresses from and body_hash (asked for only when stamps are to be checked).
    Result<EndVerdict> at_end(const Facts& f, const std::vector<Decision>& rcpts, const MessageReader& msg,
                              const std::vector<std::string>& from,
                              const std::function<Result<std::string>()>& body_hash);
    /// The 550 that hands each of rcpts (at most 5) a fresh one-time token address, within the limits; at_data
    /// says the message carried no valid postage. Fills tokens (one per recipient answered, "" where a limit
    /// withheld it) and why; a store failure is a 451.
    SmtpReply token_refusal(const Facts& f, const std::vector<std::string>& rcpts, bool at_data,
                            std::vector<std::string>& tokens, std::vector<std::string>& why);

    /// A filter's question: the decision on the whole message for env (a filter's envelope, its From addresses
    /// in env.from) with the header in msg. Each recipient is decided as at RCPT (a postage-flagged token only
    /// with its stamp), then the provisional ones at end of message; the message takes the first accepted
    /// category of W, G, Q, I, else B. Adds to holds the one-time tokens that category stands on, to be claimed
    /// (TokenLookup::claim) once the message is written or delivered; other reservations are released.
    Result<Verdict> decide(const Facts& f, const Envelope& env, const MessageReader& msg,
                           const std::function<Result<std::string>()>& body_hash, std::vector<TokenRecord>& holds);

    /// Whether a challenge may go to f's envelope sender, on the authentication results known (filters).
    ChallengeAuth challenge(const Facts& f);

    /// How a whitelist hit's identity fared (mailstamp(7) ADMISSION).
    struct AuthCheck {
        enum class Kind { pass, unauthenticated, pending, forged, tempfail } kind = Kind::pass;
        std::string method;  ///< pass: "spf pass", "dkim pass", "dmarc pass", "arc pass (sealed by D)",
                             ///< "fetched from the MX of D"
        std::string detail;  ///< the results, for the log
    };
    /// Checks entry e, matched on identity (the envelope sender, or a From address when on_from), against what
    /// is known of the authentication now. Logs forged and unauthenticated_hit through the AuthLookup.
    /// A message f says was fetched from identity's domain passes spf and auto entries.
    AuthCheck authenticate(const Facts& f, const WlEntry& e, const std::string& identity, bool on_from);

private:
    static SmtpReply store_failed(const Error& e, std::vector<std::string>& tokens, std::vector<std::string>& why);
    Result<std::string> token_limit(const Facts& f);

    const GatePolicy& p_;
    const Lookups& l_;
};

/// The one-time tokens a filter's message stands on, as msmtp-proxy keeps them: reserved while deciding, made
/// uses (claim) just before the message goes out, kept (commit) once it is out; when this goes, reservations
/// left are released and uses not committed are given back, so the MTA's retry finds the tokens as they were.
class TokenHolds {
public:
    /// Holds of holder in tokens.
    TokenHolds(TokenLookup& tokens, std::string holder) : tokens_(tokens), holder_(std::move(holder)) {}
    /// Releases and gives back what was not committed.
    ~TokenHolds();
    TokenHolds(const TokenHolds&) = delete;
    TokenHolds& operator=(const TokenHolds&) = delete;
    /// The reservations (Gate::decide adds to them).
    std::vector<TokenRecord>& records() { return records_; }
    /// Makes every reservation a use at now: a tempfail when one was lost (its reservation ran out and another
    /// message took the token) or the store failed.
    Result<void> claim(std::int64_t now);
    /// The message is out: its uses stay.
    void commit() { claimed_.clear(); }

private:
    TokenLookup& tokens_;
    std::string holder_;
    std::vector<TokenRecord> records_;
    std::vector<std::string> claimed_;
};

} // namespace mail
