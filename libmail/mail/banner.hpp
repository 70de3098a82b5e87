// The recruitment banner (mstamp --banner): text appended to an outgoing
// message so that it stays valid MIME.
#pragma once
#include "libmail/base/error.hpp"

#include <iosfwd>
#include <string_view>

namespace mail {

class MessageReader;

/// Appends banner (UTF-8 plain text) to the body of msg, whose header has been read.
/// Edits msg's header fields as needed (Content-Type, Content-Transfer-Encoding,
/// MIME-Version) and writes the whole new body to body_out, streaming: memory stays
/// flat however large the body. Text parts get the banner in their own transfer encoding,
/// HTML parts an escaped copy before </body>, each alternative of a multipart/alternative its
/// own form; anything else is wrapped so that the banner is a part of its own (banner.cpp).
Result<void> append_banner(MessageReader& msg, std::string_view banner, std::ostream& body_out);

} // namespace mail
