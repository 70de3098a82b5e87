// Byte encodings shared by every layer: base64 (RFC 4648, with padding) and
// lowercase hex; and, for reading mail as it is sent, MIME's base64 and
// quoted-printable (RFC 2045 §6.7, §6.8) decoded leniently.
#pragma once
#include <optional>
#include <string>
#include <string_view>

namespace mail {

/// The value (0..63) of one base64 character, -1 for any other octet.
int base64_value(char c);
/// Standard base64 with padding.
std::string base64_encode(std::string_view bytes);
/// The bytes of canonical padded base64 text; nothing on bad input.
std::optional<std::string> base64_decode(std::string_view text);
/// MIME base64 body text read leniently: line breaks and other octets outside the alphabet skipped, padding
/// optional, the first '=' ends it. Never fails: whatever decodes is returned.
std::string base64_decode_lenient(std::string_view text);
/// Quoted-printable body text (RFC 2045 §6.7) read leniently: soft line breaks (with white space before the line
/// end) removed, "=XX" decoded in either case, any other '=' kept as it is.
std::string qp_decode(std::string_view text);
/// Lowercase hex.
std::string hex_encode(std::string_view bytes);
/// The value of hex digit c (0-9, a-f, A-F); -1 for any other octet.
int hex_value(char c);
/// Lowercase hex back to bytes (hex_encode's form only: an odd length or any other octet is nothing).
std::optional<std::string> hex_decode(std::string_view text);

} // namespace mail
