// What the readers of non-delivery notices (dsn.cpp, dsn_text.cpp) look for
// in a notice's text: words, lines, status and reply codes, addresses and
// host names; and the recipients collected so far. Internal to dsn.
#pragma once
#include "libmail/mail/dsn.hpp"

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace mail::dsn_detail {

/// True for an ASCII letter or digit.
bool is_alnum(char c);
/// Where needle first occurs in hay at or after from, ignoring ASCII case; npos when it does not.
std::size_t ifind(std::string_view hay, std::string_view needle, std::size_t from = 0);
/// True when needle occurs in hay, ignoring ASCII case.
bool has(std::string_view hay, std::string_view needle);
/// The leading spaces and tabs of line, a tab counting as 8.
std::size_t indent_of(std::string_view line);
/// s on one line: controls and runs of white space one space, at most max octets, no UTF-8 sequence cut short.
std::string one_line(std::string_view s, std::size_t max = limits::dsn_diagnostic);
/// The lines of text without their line ends, at most limits::dsn_text_lines.
std::vector<std::string_view> lines_of(std::string_view text);

/// The first RFC 3463 status code (class.subject.detail) in s; "" when none.
std::string find_status(std::string_view s);
/// Permanent (true) or temporary (false) by the first status or SMTP reply code of class 4 or 5 in s.
std::optional<bool> class_of(std::string_view s);
/// The first status code in s when it is of class 4 or 5, else "".
std::string failure_status(std::string_view s);

/// The normal form of an address written alone (angle brackets allowed); nothing when it is not one.
std::optional<std::string> normal_address(std::string_view raw);
/// The first address in running text, normalised; *begin and *end say where it was.
std::optional<std::string> find_address(std::string_view s, std::size_t* begin = nullptr, std::size_t* end = nullptr);
/// "type; value" (RFC 3464 §2.1.2): the value, when the part before ';' is a type token; else v, trimmed.
std::string_view after_type(std::string_view v);
/// A host name as a notice gives it ("dns; mx.example" or running text); "" when unusable.
std::string host_name(std::string_view v);

/// The report being built: recipients added once each, bounded.
struct Collect {
    DsnReport r;
    /// Adds rc, or fills in the diagnostic and status of the recipient already there with its address.
    void add(DsnRecipient rc);
    /// The recipient with address; nullptr when there is none.
    DsnRecipient* find(std::string_view address);
};

/// Whether a failure is permanent: as decided when the notice's wording decides, else by diag's code, else true.
bool permanence(std::optional<bool> decided, std::string_view diag);
/// A recipient read from text: address, diag on one line, its status and permanence.
DsnRecipient text_recipient(std::string address, std::string_view diag, std::optional<bool> decided);

} // namespace mail::dsn_detail
