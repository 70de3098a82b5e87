// Non-delivery notices of older or smaller mail systems, written for people:
// Lotus Domino and Notes, Novell GroupWise, MDaemon, Ipswitch IMail
// (SMTP32), Netscape/iPlanet/Sun Java System Messaging Server, PMDF,
// Courier, qmail clones; and "simple" notices that only say in a sentence
// which address failed and why. Decisions in dsn.hpp. Internal to dsn.
#pragma once
#include "libmail/mail/dsn_scan.hpp"
#include "libmail/mail/mime.hpp"

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace mail::dsn_detail {

/// Reads the recipients of a text notice of one of the families above into c; the family read ("domino",
/// "groupwise", "mdaemon", "smtp32", "iplanet", "pmdf", "courier", "qmail"), "" when none. The families are
/// told by their own wording, and read only when envelope (a mail system sent it) or the header shows
/// their mail system.
std::string read_vendor_notice(const std::vector<std::string_view>& lines, std::string_view notification,
                               const MimeHeader& top, std::optional<bool> wording, bool envelope, Collect& c);
/// The "simple" reading, the last before the generic fallback: "simple" when envelope, the notice is not
/// passed on by a person (Fwd:, Re:, a forwarded-message line), and it names a failed address; else "".
std::string read_simple_notice(const std::vector<std::string_view>& lines, const MimeHeader& top,
                               std::optional<bool> wording, bool envelope, Collect& c);

} // namespace mail::dsn_detail
