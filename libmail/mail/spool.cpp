// Body spool: see spool.hpp.
#include "libmail/mail/spool.hpp"

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <ostream>
#include <unistd.h>

namespace mail {

namespace {
Error io_error(std::string_view what) { return Error{ErrorKind::tempfail, "spool: " + std::string(what) + ": " + std::strerror(errno)}; }

Result<void> write_all(int fd, const char* p, std::size_t n) {
    while (n > 0) {
        ssize_t w = ::write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR) continue;
            return io_error("write");
        }
        p += w;
        n -= static_cast<std::size_t>(w);
    }
    return {};
}
} // namespace

Spool::Spool(std::size_t memory_limit) : limit_(memory_limit) {}

Spool::~Spool() {
    if (fd_ >= 0) ::close(fd_);
}

Result<void> Spool::spill() {
    const char* dir = std::getenv("TMPDIR");
    std::string tmpl = std::string(dir && *dir ? dir : "/tmp") + "/mailstamp-spool.XXXXXX";
    fd_ = ::mkostemp(tmpl.data(), O_CLOEXEC);
    if (fd_ < 0) return io_error("create a file in " + tmpl.substr(0, tmpl.rfind('/')));
    ::unlink(tmpl.c_str());  // nothing is left behind, whatever happens to this process
    auto r = write_all(fd_, mem_.data(), mem_.size());
    std::string().swap(mem_);
    return r;
}

Result<void> Spool::write(std::string_view data) {
    size_ += data.size();
    if (fd_ < 0 && mem_.size() + data.size() <= limit_) {
        mem_.append(data);
        return {};
    }
    if (fd_ < 0)
        if (auto r = spill(); !r) return r;
    return write_all(fd_, data.data(), data.size());
}

Result<void> Spool::copy_to(std::ostream& out) {
    if (fd_ < 0) {
        out.write(mem_.data(), static_cast<std::streamsize>(mem_.size()));
        return {};
    }
    if (::lseek(fd_, 0, SEEK_SET) < 0) return io_error("seek");
    char buf[65536];
    for (;;) {
        ssize_t n = ::read(fd_, buf, sizeof buf);
        if (n < 0) {
            if (errno == EINTR) continue;
            return io_error("read");
        }
        if (n == 0) break;
        out.write(buf, n);
        if (!out) return Error{ErrorKind::tempfail, "write error on output"};
    }
    return {};
}

Result<void> Spool::each(const std::function<Result<void>(std::string_view)>& fn, std::size_t from) const {
    if (from >= size_) return {};
    if (fd_ < 0) return fn(std::string_view(mem_).substr(from));
    char buf[65536];
    off_t off = static_cast<off_t>(from);
    for (;;) {
        ssize_t n = ::pread(fd_, buf, sizeof buf, off);
        if (n < 0) {
            if (errno == EINTR) continue;
            return io_error("read");
        }
        if (n == 0) break;
        off += n;
        if (auto r = fn(std::string_view(buf, static_cast<std::size_t>(n))); !r) return r;
    }
    return {};
}

Result<std::size_t> Spool::read_at(std::size_t off, char* buf, std::size_t n) const {
    if (off >= size_) return std::size_t{0};
    n = std::min(n, size_ - off);
    if (fd_ < 0) {
        std::memcpy(buf, mem_.data() + off, n);
        return n;
    }
    for (;;) {
        ssize_t r = ::pread(fd_, buf, n, static_cast<off_t>(off));
        if (r >= 0) return static_cast<std::size_t>(r);
        if (errno != EINTR) return io_error("read");
    }
}

void Spool::clear() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
    size_ = 0;
    std::string().swap(mem_);
}

SpoolReader::int_type SpoolReader::underflow() {
    if (gptr() < egptr()) return traits_type::to_int_type(*gptr());
    std::size_t n = 0;
    if (pos_ < head_.size()) {
        n = std::min(sizeof buf_, head_.size() - pos_);
        std::copy_n(head_.data() + pos_, n, buf_);
    } else {
        auto r = body_.read_at(pos_ - head_.size(), buf_, sizeof buf_);
        if (!r) return traits_type::eof();
        n = *r;
    }
    if (n == 0) return traits_type::eof();
    pos_ += n;
    setg(buf_, buf_, buf_ + n);
    return traits_type::to_int_type(*gptr());
}

ChunkWriter::ChunkWriter(std::function<Result<void>(std::string_view)> fn) : fn_(std::move(fn)), buf_(65536, '\0') {
    setp(buf_.data(), buf_.data() + buf_.size());
}

void ChunkWriter::drain() {
    if (status && pptr() > pbase()) status = fn_(std::string_view(pbase(), static_cast<std::size_t>(pptr() - pbase())));
    setp(buf_.data(), buf_.data() + buf_.size());
}

ChunkWriter::int_type ChunkWriter::overflow(int_type c) {
    drain();
    if (c != traits_type::eof()) {
        *pptr() = traits_type::to_char_type(c);
        pbump(1);
    }
    return status ? traits_type::not_eof(c) : traits_type::eof();
}

int ChunkWriter::sync() {
    drain();
    return status ? 0 : -1;
}

void HeadSpool::write(std::string_view data, std::size_t max_header) {
    size_ += data.size();
    if (too_big_) return;
    if (!done_) {
        std::size_t from = head_.size() >= 3 ? head_.size() - 3 : 0;
        head_.append(data);
        std::size_t end = std::string::npos;
        if (head_.rfind("\r\n", 0) == 0) end = 2;  // no header fields at all
        else if (auto e = head_.find("\r\n\r\n", from); e != std::string::npos) end = e + 4;
        if (end == std::string::npos) {
            if (head_.size() > max_header) too_big_ = true;
            return;
        }
        done_ = true;
        if (end == head_.size()) return;
        std::string rest = head_.substr(end);
        head_.resize(end);
        data = rest;
        if (auto w = body_.write(data); !w && !failure_) failure_ = w.error();
        return;
    }
    if (auto w = body_.write(data); !w && !failure_) failure_ = w.error();
}

void HeadSpool::clear() {
    head_.clear();
    done_ = too_big_ = false;
    body_.clear();
    size_ = 0;
    failure_.reset();
}

} // namespace mail
