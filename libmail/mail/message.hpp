// A streaming RFC 5322 message reader and writer.
//
// The header section is read into memory (bounded by limits.hpp); the body is
// never held: it streams through read_body()/copy_body() in fixed chunks.
// Every header field keeps its exact bytes (folding, CRLF or LF, odd
// spacing), so a message passes through byte for byte except for what is
// edited on purpose: fields added at the top, fields removed by name, a tag
// put at the front of the Subject.
#pragma once
#include "libmail/base/error.hpp"
#include "libmail/base/limits.hpp"
#include "libmail/base/text.hpp"

#include <cstddef>
#include <iosfwd>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace mail {

class Spool;

/// One header field with its exact bytes.
struct HeaderField {
    std::string raw;  ///< name, colon, value, folds and line endings exactly as read
    /// The field name as written.
    std::string_view name() const;
    /// The unfolded value: every CR and LF removed, leading and trailing whitespace dropped.
    std::string value() const;
    /// True when the name equals n, ignoring ASCII case.
    bool is(std::string_view n) const;
};

/// Reads a message from a stream: header into memory, body streamed.
class MessageReader {
public:
    /// Reads from in; more than max_message_size octets in all is an Error (kind data).
    explicit MessageReader(std::istream& in, std::size_t max_message_size = limits::message_size);

    /// Reads an mbox From line (if any), the header fields and the blank separator.
    Result<void> read_header();
    /// The mbox "From " line with its line end; "" when there is none.
    const std::string& mbox_from() const { return mbox_from_; }
    /// The header fields, in order.
    std::vector<HeaderField>& fields() { return fields_; }
    const std::vector<HeaderField>& fields() const { return fields_; }
    /// The separator line exactly ("\r\n", "\n"), or "" when the header ran to the end or into a malformed line.
    const std::string& separator() const { return separator_; }
    /// The line ending for added fields: "\r\n" when the first line after any mbox From line ends so, else "\n".
    const std::string& eol() const { return eol_; }

    /// The first field named name, unfolded.
    std::optional<std::string> get(std::string_view name) const;
    /// Every field named name, unfolded, in order.
    std::vector<std::string> get_all(std::string_view name) const;
    /// Removes every field named name; how many.
    std::size_t remove(std::string_view name);
    /// Adds a field at the top (after the mbox From line); CR and LF in value become spaces.
    void prepend(std::string_view name, std::string_view value);
    /// Puts tag (e.g. "[B]") at the front of the Subject, once; adds a Subject when there is none.
    void tag_subject(std::string_view tag);

    /// Writes the mbox From line, the fields and the separator.
    Result<void> write_header(std::ostream& out) const;
    /// Reads up to n body octets into buf; 0 at the end.
    Result<std::size_t> read_body(char* buf, std::size_t n);
    /// Copies the rest of the body to out in fixed-size chunks.
    Result<void> copy_body(std::ostream& out);
    /// Octets consumed from the input so far.
    std::size_t octets_read() const { return octets_; }

private:
    Result<bool> read_line(std::string& line);

    std::istream& in_;
    std::size_t max_size_;
    std::size_t octets_ = 0;
    std::string mbox_from_;
    std::vector<HeaderField> fields_;
    std::string separator_;
    std::string eol_ = "\n";
    std::string pending_;  ///< body bytes already read while looking for the header's end
    std::size_t pending_pos_ = 0;
};

/// Reads the rest of msg's body into spool, hashing it on the way: its RFC 6376 relaxed body hash (the
/// 32-octet SHA-256 digest of RelaxedBodyHash), for stamps that must be checked before the header is written.
Result<std::string> spool_body(MessageReader& msg, Spool& spool);

/// Writes msg to out: its header, then the body from spooled when given (the body already read from the input
/// into it), else the rest of the input; then flushes. Kind tempfail "write error on stdout" when out has failed.
Result<void> write_message(MessageReader& msg, Spool* spooled, std::ostream& out);

} // namespace mail
