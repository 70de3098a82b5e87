// mchallenge's queue of held messages (mchallenge(1)): the hold directory and
// its rows in the store, what holds a message, challenges its sender, releases
// it to delivery and ends it; and the reading helpers the filter and the
// preview commands share. The admission decision itself is the core's
// (policy/admission.hpp); this is what mchallenge does with Unknown mail.
#pragma once
#include "libmail/app/context.hpp"
#include "libmail/io/deliver.hpp"
#include "libmail/io/smtp_client.hpp"
#include "libmail/mail/message.hpp"
#include "libmail/mail/spool.hpp"
#include "libmail/policy/verify.hpp"
#include "libmail/store/store.hpp"

#include <cstdint>
#include <istream>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace mail {

/// What one run of mchallenge needs, resolved from options and config.
struct ChallengeSetup {
    std::string hold_dir;
    std::int64_t hold_time = 14 * 86400;
    std::int64_t quota = 3;
    bool deliver_unchallenged = false;  ///< unchallenged = deliver: suppressed mail goes through tagged
    std::string tmpl;
    std::string deliver_spec;
    std::string hostname;
    std::string authserv_id;
    std::optional<HostPort> relay;
    std::string sendmail = "/usr/sbin/sendmail";          ///< sends challenges
    std::string deliver_sendmail = "/usr/sbin/sendmail";  ///< --deliver sendmail
    char delimiter = '+';
    std::vector<std::string> trusted_forwarders;
    PostagePolicy postage;
    bool tag = true;
    bool trust_upstream = false;
    std::size_t max_size = limits::message_size;
};

/// The states of a held row that is still live (not ended, not being released).
extern const std::vector<HeldState> live_states;

/// The directory part of path p ("." when none).
std::string dirname_of(const std::string& p);

/// Where released and admitted mail goes (--deliver), as s says.
Result<std::unique_ptr<Delivery>> delivery_of(const ChallengeSetup& s);

/// A fresh held-message id: 16 hex digits, "" when the random source fails.
std::string random_id();

/// The whole message from in, into a spool; over max is kind data.
Result<void> read_all(std::istream& in, Spool& raw, std::size_t max);

/// The first max octets of a spool (notices are small; what they quote past that is not needed).
std::string prefix_of(const Spool& raw, std::size_t max);

/// Appends the file at path to sp.
Result<void> read_file_into(const std::string& path, Spool& sp);

/// Octets of the header section MessageReader took (mbox line, fields, blank line): the body starts there.
std::size_t header_octets(const MessageReader& msg);

/// The key of this delivery (held_find's msg_key): the envelope and every octet of the message, streamed.
Result<std::string> delivery_key(const Envelope& env, const Spool& raw);

/// The header fields of msg as they came, for the challenge to quote.
std::string header_text(const MessageReader& msg);

/// Delivers msg (its header edited: verdict fields of v when given, the tag of letter) with raw's body, which
/// starts body_at octets in.
Result<int> deliver_marked(Context& ctx, const ChallengeSetup& s, Delivery& d, MessageReader& msg, const Spool& raw,
                           std::size_t body_at, const Envelope& env, const std::optional<Verdict>& v, char letter);

/// Sends text from envelope sender from to rcpts through the relay when one is set, else the sendmail program.
Result<void> send_mail(const ChallengeSetup& s, const std::string& from, const std::vector<std::string>& rcpts,
                       const std::string& text);

/// The hold directory and the held rows of one run: holding, challenging, releasing, ending.
class HeldQueue {
public:
    HeldQueue(Context& ctx, const ChallengeSetup& s, Store& store) : ctx_(ctx), s_(s), store_(store) {}

    Result<void> ensure_dir();

    // Writes raw into the hold directory under id (fsync, rename): the path.
    Result<std::string> store_file(const std::string& id, const Spool& raw);

    Result<Held> hold(const MessageReader& msg, const Envelope& env, const Spool& raw, HeldState state,
                      const std::string& note, const std::string& parent, std::int64_t t);

    // Holds raw under the delivery key the caller computed.
    Result<Held> hold(const MessageReader& msg, const Envelope& env, const Spool& raw, const std::string& key,
                      HeldState state, const std::string& note, const std::string& parent, std::int64_t t);

    // The token addresses of a row: rebuilt from the first recipient and the stored payloads.
    std::string address_of(const Held& h, const std::string& payload) const;

    Result<void> send_challenge(const Held& h, const std::string& headers, std::int64_t t);

    // Releases h to delivery with one field added; false when another process got there first.
    Result<bool> release(const Held& h, Delivery& d, const std::string& why, std::int64_t t,
                         const std::vector<HeldState>& from = live_states);

    Result<void> whitelist_sender(const std::string& sender, std::int64_t t);

    // Releases every live message held from sender for rcpt ("" = for any recipient): each row is taken by its own
    // compare-and-set, so what a concurrent confirmation, whitelist or expiry takes first is theirs to deliver.
    // One that cannot be delivered now stays as it was, and the others are still tried; then the first error.
    Result<long> release_from(const std::string& sender, const std::string& rcpt, Delivery& d, const std::string& why,
                              std::int64_t t);

    // Whether sender is whitelisted now for one of rcpts (a read; no hit is counted).
    Result<bool> whitelisted(const std::string& sender, const std::vector<std::string>& rcpts);

    // Ends a row: its file goes; the row stays (state ended) until expiry so a late confirmation is known.
    Result<bool> end(const Held& h, const std::string& why, std::int64_t t);

    const std::string& confirm_address() const { return confirm_address_; }

private:
    Context& ctx_;
    const ChallengeSetup& s_;
    Store& store_;
    std::string confirm_address_, bounce_address_;
};

} // namespace mail
