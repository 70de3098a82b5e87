// The one MIME reader (RFC 2045, 2046): a header section, Content-Type and its
// parameters, transfer-encoded bodies, and a bounded walk over the parts of a
// multipart body. Pure: bytes in memory in, values out; no I/O.
//
// Lenient, as mail in the wild needs, and bounded (base/limits.hpp):
// - A header section ends at a blank line (consumed) or at the first line
//   that is not a field (left for the body). Names are lower-cased; values
//   unfolded (one space a fold) and trimmed; a fold that would make a value
//   longer than limits::header_field_size is dropped; fields past max_fields
//   are skipped with their folds.
// - Content-Type (RFC 2045 §5.1): comments and white space between tokens,
//   quoted-string values with quoted pairs; names and type lower-cased,
//   values as written; junk skipped to the next ';'; at most
//   limits::mime_params parameters. A missing or unreadable value is
//   text/plain (RFC 2045 §5.2) for parse_content_type(), nothing for
//   read_content_type() (for a caller that must not guess).
// - Bodies: base64 and quoted-printable undone leniently (base/codec.hpp),
//   any other encoding left as it is.
// - Multipart (RFC 2046 §5.1.1): a delimiter line is "--" and the boundary,
//   "--" more for the close, then only white space; the line end before a
//   delimiter belongs to it; preamble and epilogue are skipped; a part cut
//   off by the end of the input (no close delimiter) runs to the end.
// - The walk visits the message and then, depth first, every part, a
//   multipart before its parts: at most bounds.parts visits in all, none at
//   depth bounds.depth or deeper, and no multipart entered whose boundary is
//   empty or longer than bounds.boundary. XXX RFC 2046 §5.1.1: boundaries are
//   at most 70 octets; we read longer ones (limits::mime_boundary_read).
//   Encapsulated messages (message/rfc822) are parts, not entered.
// No RFC 2047 encoded words: no caller needs them decoded.
#pragma once
#include "libmail/base/limits.hpp"

#include <cstddef>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace mail {

/// A header section as read.
struct MimeHeader {
    std::vector<std::pair<std::string, std::string>> fields;  ///< lower-case name, unfolded value, in order
    std::string_view rest;  ///< what follows the blank line, or from the first line that is not a field
    /// The value of the first field named name (lower case); nullptr when there is none.
    const std::string* get(std::string_view name) const;
    /// The value of the first field named name (lower case); "" when there is none.
    std::string value(std::string_view name) const;
};

/// Reads header fields from text up to a blank line or a line that is not a field; keeps at most max_fields.
MimeHeader parse_mime_header(std::string_view text, std::size_t max_fields = limits::mime_fields);

/// A Content-Type value read.
struct ContentType {
    std::string type = "text";     ///< lower case
    std::string subtype = "plain"; ///< lower case
    std::vector<std::pair<std::string, std::string>> params;  ///< lower-case name, value unquoted, in order
    /// The value of the first parameter named name (lower case); "" when there is none.
    std::string param(std::string_view name) const;
    /// True when the type is t/s (both lower case).
    bool is(std::string_view t, std::string_view s) const { return type == t && subtype == s; }
};

/// Reads a Content-Type value (RFC 2045 §5.1); nothing when it has no type/subtype.
std::optional<ContentType> read_content_type(std::string_view value);
/// Reads a Content-Type value; text/plain when it is empty or unreadable (RFC 2045 §5.2).
ContentType parse_content_type(std::string_view value);

/// body with the Content-Transfer-Encoding of header h undone (base64, quoted-printable); else body as it is.
std::string decode_body(std::string_view body, const MimeHeader& h);

/// What a line of a multipart body is.
enum class Delimiter { none, part, close };

/// Whether line (its line end, if any, included or not) is a delimiter for boundary, and which.
Delimiter delimiter_of(std::string_view line, std::string_view boundary);

/// The parts of a multipart body (RFC 2046 §5.1.1), headers included, at most max_parts.
std::vector<std::string_view> split_multipart(std::string_view body, std::string_view boundary,
                                              std::size_t max_parts = limits::mime_parts);

/// How far walk_mime() goes.
struct MimeBounds {
    std::size_t parts = limits::mime_parts;            ///< visits in all, multiparts included
    std::size_t depth = limits::mime_depth;            ///< parts at this depth or deeper are not visited
    std::size_t boundary = limits::mime_boundary_read; ///< a multipart with a longer boundary is not entered
    std::size_t fields = limits::mime_fields;          ///< header fields read from each part
};

/// One part as walk_mime() shows it.
struct MimePart {
    const MimeHeader& header;
    const ContentType& type;
    std::string_view body;  ///< as written: the transfer encoding is not undone (decode_body() does)
    std::size_t depth;      ///< 0 for the message itself
};

/// Visits the message whose header is top (its body top.rest) and, depth first, the parts of its multiparts.
void walk_mime(const MimeHeader& top, const std::function<void(const MimePart&)>& visit, const MimeBounds& bounds = {});

} // namespace mail
