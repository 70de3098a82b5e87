// A body spool: octets written once, then copied out once. Small bodies stay
// in memory (a file per message was a visible cost for every small message);
// past the threshold everything moves to an unlinked temporary file in
// $TMPDIR, so memory stays flat however large the message.
#pragma once
#include "libmail/base/error.hpp"

#include <cstddef>
#include <functional>
#include <optional>
#include <iosfwd>
#include <streambuf>
#include <string>
#include <string_view>

namespace mail {

/// Write-then-read storage for one message body.
class Spool {
public:
    /// Keeps up to memory_limit octets in memory before moving to a file.
    explicit Spool(std::size_t memory_limit = 1 << 20);
    ~Spool();
    Spool(const Spool&) = delete;
    Spool& operator=(const Spool&) = delete;

    /// Appends data; a temporary file that cannot be created or written is kind tempfail.
    Result<void> write(std::string_view data);
    /// Copies everything written to out, in fixed-size chunks.
    Result<void> copy_to(std::ostream& out);
    /// Calls fn with everything written from offset from on, in order, in fixed-size chunks; stops at fn's
    /// first error.
    Result<void> each(const std::function<Result<void>(std::string_view)>& fn, std::size_t from = 0) const;
    /// Reads up to n octets from offset off into buf: how many (0 at the end).
    Result<std::size_t> read_at(std::size_t off, char* buf, std::size_t n) const;
    /// Forgets everything written (the file, if any, is closed).
    void clear();
    /// Octets written so far.
    std::size_t size() const { return size_; }
    /// True once the data lives in a file.
    bool on_disk() const { return fd_ >= 0; }

private:
    Result<void> spill();
    std::size_t limit_;
    std::size_t size_ = 0;
    std::string mem_;
    int fd_ = -1;
};

/// An input stream buffer that reads head, then everything written to body, as one stream.
class SpoolReader : public std::streambuf {
public:
    SpoolReader(std::string head, const Spool& body) : head_(std::move(head)), body_(body) {}
    SpoolReader(const SpoolReader&) = delete;
    SpoolReader& operator=(const SpoolReader&) = delete;

protected:
    int_type underflow() override;

private:
    std::string head_;
    const Spool& body_;
    std::size_t pos_ = 0;
    char buf_[65536];
};

/// An output stream buffer that hands what is written to fn in pieces of up to 64 KB (on overflow and
/// flush); the first failure stops the stream and stays in status.
class ChunkWriter : public std::streambuf {
public:
    explicit ChunkWriter(std::function<Result<void>(std::string_view)> fn);
    ChunkWriter(const ChunkWriter&) = delete;
    ChunkWriter& operator=(const ChunkWriter&) = delete;
    Result<void> status;  ///< the first failure of fn, if any

protected:
    int_type overflow(int_type c) override;
    int sync() override;

private:
    void drain();
    std::function<Result<void>(std::string_view)> fn_;
    std::string buf_;
};

/// A message arriving in pieces (SMTP DATA, a GET reply): the header section up to and including its blank
/// line kept in memory (bounded), the rest in a Spool.
class HeadSpool {
public:
    /// Takes the next piece (CRLF line ends). A header section longer than max_header is not kept whole:
    /// head_too_big() says so and nothing more is kept.
    void write(std::string_view data, std::size_t max_header);
    /// Forgets everything.
    void clear();
    /// The header section, with its blank line once it was seen.
    const std::string& head() const { return head_; }
    /// What came after the header section.
    const Spool& body() const { return body_; }
    /// True when the header section passed the limit.
    bool head_too_big() const { return too_big_; }
    /// Octets taken so far.
    std::size_t size() const { return size_; }
    /// The first failure to keep the body (a full disk), if any.
    const std::optional<Error>& failure() const { return failure_; }

private:
    std::string head_;
    bool done_ = false, too_big_ = false;
    Spool body_;
    std::size_t size_ = 0;
    std::optional<Error> failure_;
};

} // namespace mail
