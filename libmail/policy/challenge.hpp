// Challenge/response (mchallenge(1)): mail from unknown senders is held, the
// sender is asked to confirm, and a confirmation releases the message and
// whitelists the sender. The pure parts live here: when not to challenge,
// the template, the challenge message. The store- and file-backed queue is
// challenge_cmd.*.
#pragma once
#include "libmail/base/error.hpp"

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace mail {

class MessageReader;

/// Why no challenge may go to sender for msg (RFC 3834 §2 and list conventions), or "" when one may:
/// the null sender, MAILER-DAEMON or postmaster; Auto-Submitted other than "no"; a List-* field;
/// Precedence bulk, list or junk; one of our own challenges.
std::string challenge_suppressed(const MessageReader& msg, const std::string& sender);

/// Replaces ${name} in tmpl by vars[name]; unknown names stay as written, "$$" is one '$'.
std::string render_template(std::string_view tmpl, const std::map<std::string, std::string>& vars);

/// What goes into one challenge.
struct ChallengeInfo {
    std::string id;               ///< the held message's id
    std::string sender;           ///< who is asked (To)
    std::string recipient;        ///< on whose behalf (the first recipient of the held message)
    std::string confirm_address;  ///< From and Reply-To: a reply releases the message
    std::string subject;          ///< of the held message
    std::string message_id;       ///< of the held message, for In-Reply-To
    std::string headers;          ///< the held message's header section, as text
    std::int64_t received = 0;
    std::int64_t hold_seconds = 0;
    std::string hostname;
};

/// The challenge message (LF line ends): our fields, then the rendered template. Its Message-ID is
/// <challenge.ID@HOSTNAME>, so a notice that quotes it names the held message.
std::string compose_challenge(const ChallengeInfo& info, std::string_view tmpl, std::int64_t now);

/// The held message's id a challenge Message-ID names ("<challenge.ID@host>"), or "".
std::string challenge_id_of(std::string_view message_id);

/// What knows the same delivery again (an MTA retrying after a crash): SHA-256 over the envelope (the
/// sender, the recipients sorted) and every octet of the message, fed in pieces so memory stays flat.
/// Messages that differ in one octet, or in their envelope, never share a key.
class DeliveryDigest {
public:
    DeliveryDigest(std::string_view sender, std::vector<std::string> rcpts);
    ~DeliveryDigest();
    DeliveryDigest(const DeliveryDigest&) = delete;
    DeliveryDigest& operator=(const DeliveryDigest&) = delete;
    /// Feeds the next octets of the message.
    void update(std::string_view piece);
    /// "sha256:" and 64 lower-case hex digits; the object is spent afterwards.
    std::string finish();

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

/// "14 days", "3 hours": a duration for people.
std::string human_duration(std::int64_t seconds);

} // namespace mail
