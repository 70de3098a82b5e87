// Inside the recruitment banner (banner.cpp, banner_walk.cpp): the banner's
// text and HTML forms, and the streaming walk that edits text parts in place.
#pragma once
#include "libmail/base/error.hpp"
#include "libmail/mail/mime.hpp"

#include <iosfwd>
#include <string>
#include <string_view>

namespace mail {

class MessageReader;

namespace banner_detail {

/// True when s is 7-bit.
bool is_ascii(std::string_view s);
/// The banner's lines joined by eol, CRs dropped, trailing empty lines dropped; no line end after the last.
std::string text_lines(std::string_view banner, std::string_view eol);
/// The banner as a block of HTML in 7-bit text (markup escaped, other characters as numeric references,
/// web addresses as links), its lines joined by eol; no line end after the last.
std::string html_block(std::string_view banner, std::string_view eol);
/// The banner as a text/plain body part (header, empty line, text), ending with eol.
std::string banner_part(std::string_view banner, std::string_view eol);
/// Whether a text/plain or text/html part of type and transfer encoding cte (lower case) can take the banner in
/// place: an encoding we can undo and redo, a charset that is a superset of ASCII, and for plain text a banner
/// that is ASCII or a part in UTF-8 that is not 7bit.
bool leaf_takes(const ContentType& type, std::string_view cte, std::string_view banner);
/// Whether cte (lower case) leaves the body as it is (7bit, 8bit, binary).
bool identity_cte(std::string_view cte);

/// Edits the body of msg (header read, Content-Type type, transfer encoding cte) in place: a text part gets
/// the banner in its own form and encoding; multipart/alternative every text alternative; multipart/mixed
/// and related their first part when it is HTML or a multipart, and multipart/mixed otherwise a banner part
/// of its own. Streams to out. False when no banner could be added (out then holds the body unchanged).
Result<bool> edit_body(MessageReader& msg, const ContentType& type, std::string_view cte, std::string_view banner,
                       std::ostream& out);

} // namespace banner_detail
} // namespace mail
