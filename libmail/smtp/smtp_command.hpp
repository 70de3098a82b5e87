// SMTP commands (RFC 5321 §4.1) as a server reads them: the verb, and for
// MAIL and RCPT the path and the ESMTP parameters (RFC 5321 §4.1.2). Pure
// parsing; the state machine and the replies are the server's.
#pragma once
#include "libmail/base/error.hpp"

#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace mail {

/// The commands a mailstamp server knows.
enum class SmtpVerb { helo, ehlo, mail, rcpt, data, rset, noop, quit, vrfy, help, starttls, auth, unknown };

/// One command line taken apart.
struct SmtpCommand {
    SmtpVerb verb = SmtpVerb::unknown;
    std::string word;  ///< the verb as sent, upper-cased
    std::string arg;   ///< everything after the verb and one space (HELO domain, AUTH mechanism...)
    std::string path;  ///< MAIL and RCPT: the path inside the angle brackets ("" for <>)
    std::vector<std::pair<std::string, std::string>> params;  ///< MAIL and RCPT: KEY=VALUE, keys upper-cased
};

/// Parses one command line (without its CRLF). Malformed MAIL/RCPT syntax is kind data with a reply text
/// ("501 5.5.4 ..."); a line with control characters or NUL is kind data too. Unknown verbs parse as unknown.
Result<SmtpCommand> parse_smtp_command(std::string_view line);

/// The value of ESMTP parameter key (upper case) in cmd, or nothing.
const std::string* smtp_param(const SmtpCommand& cmd, std::string_view key);

} // namespace mail
