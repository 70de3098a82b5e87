// Message data framing shared by every SMTP path (RFC 5321 §4.1.1.4,
// §4.5.2): the decoder that finds <CRLF>.<CRLF> and removes dot-stuffing
// (the server reading DATA, msourced reading a GET reply), and the encoder
// that adds it (the client sending DATA, msourced answering GET). One
// implementation, so both directions frame a message the same way.
#pragma once
#include "libmail/base/error.hpp"

#include <cstddef>
#include <functional>
#include <string>
#include <string_view>

namespace mail {

/// What to do with a bare CR or LF in message data.
enum class BareNewline { reject, normalise };

/// Produces a message: calls write for each piece, in order.
using MessageSource = std::function<Result<void>(const std::function<Result<void>(std::string_view)>& write)>;

/// Reads dot-stuffed message data up to its <CRLF>.<CRLF>. The end is found only at CRLF "." CRLF (the
/// line end before the data counts): a bare CR or LF is never a line end for framing. Content comes out
/// unstuffed with CRLF line ends; a bare CR or LF is noted (bare()) and, in normalise mode, written as CRLF.
class DotDecoder {
public:
    DotDecoder(BareNewline mode, std::size_t max_size) : mode_(mode), max_(max_size) {}
    /// Decodes bytes, appending content to out, up to and including the terminator: the octets used
    /// (all of bytes unless the end came). Past max_size nothing more is appended and too_big() is set.
    std::size_t feed(std::string_view bytes, std::string& out);
    /// True once the terminator was read.
    bool done() const { return done_; }
    /// True when a bare CR or LF was seen.
    bool bare() const { return bare_; }
    /// True when the content passed max_size.
    bool too_big() const { return too_big_; }
    /// Content octets so far (those over the limit included).
    std::size_t size() const { return size_; }

private:
    enum class State { bol, mid, cr, dot, dot_cr };
    void emit(std::string_view s, std::string& out);
    void bare_newline(std::string& out);
    BareNewline mode_;
    std::size_t max_;
    State s_ = State::bol;
    std::size_t size_ = 0;
    bool done_ = false, bare_ = false, too_big_ = false;
};

/// Writes data dot-stuffed with CRLF line ends through write, keeping state across calls in at_bol and
/// after_cr; stuffed_terminator ends the message ("CRLF.CRLF", adding the line end a last line lacks).
Result<void> write_stuffed(std::string_view data, bool& at_bol, bool& after_cr,
                           const std::function<Result<void>(std::string_view)>& write);
/// The terminator for a message written with write_stuffed.
std::string_view stuffed_terminator(bool at_bol, bool after_cr);

/// Writes what source produces dot-stuffed and terminated through write, in pieces of about 64 KiB.
Result<void> write_message_stuffed(const MessageSource& source, const std::function<Result<void>(std::string_view)>& write);

} // namespace mail
