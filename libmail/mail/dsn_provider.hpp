// Non-delivery notices of mail providers whose wording the families of
// dsn_text.cpp do not read (GMX/web.de, Zoho, Amazon SES, mail.ru), the
// auto-replies that must never read as notices, and RFC 2047 encoded words
// in a notice's Subject. Internal to dsn.
#pragma once
#include "libmail/mail/dsn_scan.hpp"
#include "libmail/mail/mime.hpp"

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace mail::dsn_detail {

/// An unstructured field's value with its RFC 2047 encoded words decoded: UTF-8, US-ASCII and ISO-8859-1/15 or
/// windows-1252 become UTF-8 (the C1 range of windows-1252 as '?'); other charsets keep their decoded octets
/// (a search for their words must look for those octets). At most 4 * limits::dsn_diagnostic octets.
std::string decoded_field(std::string_view value);
/// A text part's decoded octets as UTF-8 when its charset is ISO-8859-1/15 or windows-1252 (so that localised
/// wording is found whatever the charset); else text unchanged.
std::string text_as_utf8(std::string_view charset, std::string text);
/// True for an auto-reply (vacation, out-of-office, "Automatic reply:", ticket acknowledgement, RFC 3834
/// Auto-Submitted: auto-replied) that no mail system sent: never a non-delivery notice. Exchange's own NDRs
/// carry Auto-Submitted: auto-replied too; they are told apart by their sender and X-MS-Exchange-Message-Is-Ndr.
bool is_auto_reply(const MimeHeader& top);
/// Reads a text notice of a provider family ("gmx", "zoho", "ses") into c; the family, "" when none matches.
std::string read_provider_notice(const std::vector<std::string_view>& lines, std::string_view notification,
                                 const MimeHeader& top, std::optional<bool> wording, Collect& c);
/// The provider a family's notice comes from when its wording names one ("exim" from mail.ru is "mailru");
/// else family.
std::string provider_family(std::string family, std::string_view notification);

} // namespace mail::dsn_detail
