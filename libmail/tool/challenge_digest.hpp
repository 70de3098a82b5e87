// mchallenge's digest (mchallenge(1) DIGEST): one message per recipient listing what is held for them, with
// addresses that release it; and what the delivery agent does with mail to and from those addresses.
#pragma once
#include "libmail/tool/challenge_queue.hpp"

#include <functional>
#include <iosfwd>
#include <optional>
#include <string>

namespace mail {

/// `mchallenge digest`: sends one digest to each recipient with live held mail (only to `to` when given; only
/// mail held within `since` seconds when given). Nothing held: nothing sent, one line to out, 0.
Result<int> send_digests(Context& ctx, const ChallengeSetup& s, Store& store, const std::optional<std::string>& to,
                         const std::optional<std::string>& since, std::ostream& out);

/// What the delivery agent is to do with a message after digest_reply looked at it.
enum class DigestReply {
    none,      ///< not to a digest address: carry on
    consumed,  ///< an accepted release reply: done, the message itself is not delivered
    response,  ///< to a digest address already used or out of date: deliver it tagged Response, release nothing
    ordinary,  ///< to a digest address but not from its recipient (forged): release nothing; the address is
               ///< replaced in env by its recipient's own, and the message is judged as mail to that
};

/// Acts on mail to a digest address (a release, release-and-whitelist or release-all reply): accepted only
/// when the envelope sender and the From address are the digest's recipient, authenticated says the sender
/// authenticates (the admission core's test for a challenge: a pass, or a domain that publishes nothing), and
/// the address is good, unused and in date; used once, atomically. A release that cannot be done now gives the address back: an error.
Result<DigestReply> digest_reply(Context& ctx, const ChallengeSetup& s, Store& store, HeldQueue& q, Delivery& d,
                                 Envelope& env, const MessageReader& msg, std::int64_t t,
                                 const std::function<Result<bool>()>& authenticated);

/// True when the envelope sender is the address one of our digests was sent from, to one of env's recipients:
/// the digest coming back through the delivery agent, to be delivered, never held.
Result<bool> is_our_digest(const ChallengeSetup& s, Store& store, const Envelope& env, std::int64_t t);

} // namespace mail
