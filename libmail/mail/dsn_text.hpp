// Non-delivery notices written for people: the wording of Exim, qmail,
// Postfix, Sendmail, Exchange/Office 365, Gmail and Yahoo, and a generic
// fallback, read for failed recipients (decisions in dsn.hpp); the providers'
// own layouts (GMX, Zoho, SES) and the auto-replies that are never notices
// are dsn_provider.cpp's. Internal to dsn.
#pragma once
#include "libmail/mail/dsn_scan.hpp"
#include "libmail/mail/mime.hpp"

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace mail::dsn_detail {

/// The text of an HTML part: tags dropped, block ends as line ends, a few entities decoded.
std::string html_text(std::string_view html);
/// True for a line that says the copy of the returned message follows.
bool is_returned_marker(std::string_view line);
/// What the wording of a notice decides for all it lists: a delay (false), a final failure (true), or nothing.
std::optional<bool> wording_decides(std::string_view subject, std::string_view text);
/// True when whoever sent the notice looks like a mail system, or its subject like a bounce.
bool bounce_envelope(const MimeHeader& top);
/// A diagnostic for address from the notification lines ("<addr>: why..." or Exim's indented lines); "" when none.
std::string diagnostic_from_text(const std::vector<std::string_view>& lines, std::string_view address);
/// Reads the recipients (and the reporting MTA) of a text notice into c; the family read, "" when none.
/// The generic fallback runs only when envelope (a mail system sent it).
std::string read_text_notice(const std::vector<std::string_view>& lines, std::string_view notification,
                             const MimeHeader& top, std::optional<bool> wording, bool envelope, Collect& c);

} // namespace mail::dsn_detail
