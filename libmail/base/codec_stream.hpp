// Streaming MIME transfer encodings (RFC 2045 §6.7, §6.8) for editing a body
// part in place: bytes go in in pieces of any size, encoded or decoded text
// comes out to a sink as soon as it is known. Memory stays flat: each keeps at
// most one output line or one base64 quantum.
#pragma once
#include <functional>
#include <string>
#include <string_view>

namespace mail {

/// Where a stream writes its output.
using ByteSink = std::function<void(std::string_view)>;

/// MIME base64 read leniently and in pieces, as base64_decode_lenient reads it whole.
class Base64Decoder {
public:
    explicit Base64Decoder(ByteSink out) : out_(std::move(out)) {}
    /// Decodes text (any piece of the encoded body).
    void put(std::string_view text);
    /// Writes the bytes of a last, short quantum.
    void finish();

private:
    ByteSink out_;
    unsigned bits_ = 0;
    int have_ = 0;  ///< sextets in bits_
    bool done_ = false;
};

/// Base64 in lines of 76 characters, lines separated by eol; no line end after the last.
class Base64Encoder {
public:
    Base64Encoder(ByteSink out, std::string eol) : out_(std::move(out)), eol_(std::move(eol)) {}
    /// Encodes bytes.
    void put(std::string_view bytes);
    /// Writes the rest, padded.
    void finish();

private:
    void line(std::string_view chunk);
    ByteSink out_;
    std::string eol_;
    std::string pending_;  ///< fewer than 57 bytes not yet written
    bool first_ = true;
};

/// Quoted-printable: "\n" (with or without a CR before it) in the bytes is a hard line break, written as eol;
/// lines are soft-broken to at most 76 characters; '=', controls, 8-bit octets and white space before a line
/// break are encoded. No line end after the last line.
class QpEncoder {
public:
    QpEncoder(ByteSink out, std::string eol) : out_(std::move(out)), eol_(std::move(eol)) {}
    /// Encodes bytes.
    void put(std::string_view bytes);
    /// Writes the last line.
    void finish();

private:
    void end_line(bool hard);
    ByteSink out_;
    std::string eol_;
    std::string line_;  ///< the current encoded line
    bool cr_ = false;   ///< a CR held back: a line break may follow
};

} // namespace mail
