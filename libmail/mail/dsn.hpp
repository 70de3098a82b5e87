// Non-delivery notices (bounces, DSNs), reduced to what mchallenge needs: who
// failed, whether for good, and which message it was.
//
// Read: RFC 3464/3462 reports (multipart/report; report-type=delivery-status,
// or a message/delivery-status part anywhere in a multipart, as OpenSMTPD
// sends it inside multipart/mixed), RFC 6533 message/global-delivery-status,
// the returned message/rfc822, message/global, text/rfc822-headers or
// message/global-headers part, and the plain-text forms: Exim (X-Failed-
// Recipients), qmail's QSBMF, Postfix and Sendmail wording, Exchange/Office
// 365 (2003 to Exchange Online, in English, German, French, Spanish, Dutch,
// Italian, Portuguese and Japanese), Gmail, Yahoo (and AOL on its platform),
// GMX/web.de, Zoho, Amazon SES and mail.ru texts (dsn_provider.cpp); Lotus
// Domino and Notes, Novell GroupWise, MDaemon, Ipswitch IMail (SMTP32),
// Netscape/iPlanet/Sun Java System Messaging Server, PMDF, Courier and qmail
// clones (dsn_vendor.cpp); "simple" notices (a sentence naming the failed
// address, or announcing addresses listed each on a line of its own), and a
// generic fallback. AOL, Yandex, iCloud, SES and relays such as SendGrid send
// RFC 3464 reports. Base64 and quoted-printable parts are decoded,
// ISO-8859-1/windows-1252 text read as UTF-8, RFC 2047 encoded words in the
// Subject decoded; HTML is used only when a notice has no text/plain part.
//
// Decisions:
// - format is "rfc3464" whenever a machine-readable report gave recipients,
//   whichever MTA sent it; the text families name only notices read from text.
// - Only recipients whose Action is failed or delayed (or, without an Action,
//   whose Status is 4.x.x or 5.x.x) are reported. A report that lists only
//   delivered/relayed/expanded recipients (a success notice) is not a
//   non-delivery notice: is_notice is false.
// - permanent: Action "failed" is permanent even with a 4.x.x Status (the
//   MTA gave up, e.g. 4.4.7 expired); "delayed" is temporary; without an
//   Action the Status class decides. In text notices the wording decides
//   when it is clear ("This is a permanent error; I've given up", "THIS IS A
//   WARNING ONLY", Sendmail's "permanent fatal" and "transient non-fatal"
//   sections), else the recipient's status or SMTP reply class, else
//   permanent.
// - is_notice for text forms needs the family's wording plus either a
//   sender that looks like a mail system (MAILER-DAEMON, postmaster, <>), a
//   bounce-like Subject, or a recipient found; the generic fallback runs only
//   for such senders or subjects and needs a recipient with a failure code
//   or phrase. The families of dsn_vendor.cpp need such a sender or subject
//   or a header only their mail system writes (Domino's "DELIVERY FAILURE:"
//   subject, IMail's X-Mailer, ...), and "simple" needs the sender or
//   subject. A Subject starting "Fwd:", "Re:" and the like is a person's,
//   not a bounce-like one.
// - An auto-reply (RFC 3834 Auto-Submitted: auto-replied, X-Autoreply,
//   X-Autorespond, Precedence: auto_reply, or a Subject such as "Automatic
//   reply:", "Out of Office", "Automatische Antwort:") is never read as a
//   text notice, whatever its wording; Exchange's own notices, which also
//   say auto-replied, are told apart by their sender (postmaster,
//   MAILER-DAEMON, the MicrosoftExchange... system mailbox) and
//   X-MS-Exchange-Message-Is-Ndr.
// - A recipient's address is normalised as by normalize_address(); an
//   address that does not parse is kept as written (one line, at most
//   limits::address_length octets) or left empty.
// - The returned message is searched only for its header; a notice inside a
//   returned message (a bounce of a bounce) is never read as the notice.
//
// Bounds (below): only the first dsn_scan_size octets are examined (the
// returned message past that is skipped: notices are small); parts past
// dsn_parts, nesting past dsn_depth, recipients past dsn_recipients and
// text lines past dsn_text_lines are ignored, not an error: what was read
// is still the best reading of the notice. XXX RFC 2046 §5.1.1 lets
// multiparts nest without limit.
#pragma once
#include "libmail/base/error.hpp"
#include "libmail/base/limits.hpp"

#include <cstddef>
#include <iosfwd>
#include <string>
#include <string_view>
#include <vector>

namespace mail {

namespace limits {
/// Octets of a notice examined; the rest (the returned message's body) is skipped.
inline constexpr std::size_t dsn_scan_size = 1024 * 1024;
/// MIME parts examined in one notice.
inline constexpr std::size_t dsn_parts = 64;
/// Multipart nesting examined.
inline constexpr std::size_t dsn_depth = 8;
/// Recipients reported from one notice.
inline constexpr std::size_t dsn_recipients = recipients;
/// Longest diagnostic kept, in octets.
inline constexpr std::size_t dsn_diagnostic = 300;
/// Lines of notification text examined.
inline constexpr std::size_t dsn_text_lines = 20000;
/// Header fields read from one part or report group.
inline constexpr std::size_t dsn_fields = 1000;
} // namespace limits

/// One recipient a notice reports on.
struct DsnRecipient {
    std::string address;     ///< normalised final (else original) recipient; "" when the notice gives none usable
    std::string status;      ///< RFC 3463 code such as "5.1.1" when known, else ""
    bool permanent = true;   ///< false for a delay or other temporary failure
    std::string diagnostic;  ///< one line, controls removed, at most limits::dsn_diagnostic octets
};

/// What a non-delivery notice says.
struct DsnReport {
    bool is_notice = false;           ///< it looks like a non-delivery/delay notice at all
    std::string format;               ///< "rfc3464", "exim", "qmail", "postfix-text", "sendmail-text", "exchange", "gmail", "yahoo", "gmx" (GMX, web.de), "zoho", "ses" (Amazon SES), "mailru", "domino" (also Notes), "groupwise", "mdaemon", "smtp32" (IMail), "iplanet" (also Netscape and Sun), "pmdf", "courier", "simple", "generic"; "" when nothing was recognised (a success-only report keeps "rfc3464")
    std::string reporting_mta;        ///< when given
    std::vector<DsnRecipient> recipients;
    bool permanent = true;            ///< true when every failure reported is permanent; false when any is only a delay
    std::string original_message_id;  ///< from the returned message or headers (with <>), "" when not found
    std::string original_sender;      ///< the returned message's envelope sender, else its From, normalised; else ""
};

/// Parses a whole message (header and body as bytes); examines at most limits::dsn_scan_size octets.
/// Never throws; the only error is a message larger than limits::message_size (kind data).
Result<DsnReport> parse_dsn(std::string_view message);
/// The same for a message read from in: only the first limits::dsn_scan_size octets are kept, the rest is read
/// and counted; more than max_size octets in all is an Error (kind data), a failed read one of kind tempfail.
Result<DsnReport> parse_dsn(std::istream& in, std::size_t max_size = limits::message_size);

} // namespace mail
