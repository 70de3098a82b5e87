// Byte encodings shared by every layer: base64 (RFC 4648, with padding) and
// lowercase hex.
#pragma once
#include <optional>
#include <string>
#include <string_view>

namespace mail {

/// Standard base64 with padding.
std::string base64_encode(std::string_view bytes);
/// The bytes of canonical padded base64 text; nothing on bad input.
std::optional<std::string> base64_decode(std::string_view text);
/// Lowercase hex.
std::string hex_encode(std::string_view bytes);

} // namespace mail
