#include "libmail/base/log.hpp"

#include "libmail/base/text.hpp"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <fcntl.h>
#include <mutex>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <syslog.h>
#include <unistd.h>

namespace mail {

std::string_view to_string(Level level) {
    switch (level) {
    case Level::err: return "err";
    case Level::warning: return "warning";
    case Level::notice: return "notice";
    case Level::info: return "info";
    case Level::debug: return "debug";
    }
    return "err";
}

std::optional<Level> parse_level(std::string_view name) {
    if (name == "err" || name == "error") return Level::err;
    if (name == "warning" || name == "warn") return Level::warning;
    if (name == "notice") return Level::notice;
    if (name == "info") return Level::info;
    if (name == "debug") return Level::debug;
    return std::nullopt;
}

std::string redact(std::string_view secret) {
    return "[redacted len=" + std::to_string(secret.size()) + "]";
}

namespace {

void hex_escape(std::string& out, unsigned char c) {
    static constexpr char digits[] = "0123456789ABCDEF";
    out += "\\x";
    out += digits[c >> 4];
    out += digits[c & 0xF];
}

// Length of the UTF-8 sequence at s[i] if it is well formed and safe to show
// as is; 0 when its bytes must be escaped. Unsafe: overlongs, surrogates,
// C1 controls (U+0085 is a line break to some viewers), U+2028/2029, bidi
// overrides and isolates (they reorder what the reader sees).
std::size_t safe_utf8(std::string_view s, std::size_t i) {
    auto b = [&](std::size_t k) { return static_cast<unsigned char>(s[k]); };
    unsigned char c = b(i);
    std::size_t len;
    char32_t cp;
    if (c >= 0xC2 && c <= 0xDF) len = 2, cp = c & 0x1F;
    else if (c >= 0xE0 && c <= 0xEF) len = 3, cp = c & 0x0F;
    else if (c >= 0xF0 && c <= 0xF4) len = 4, cp = c & 0x07;
    else return 0;
    if (i + len > s.size()) return 0;
    for (std::size_t k = 1; k < len; ++k) {
        if ((b(i + k) & 0xC0) != 0x80) return 0;
        cp = (cp << 6) | (b(i + k) & 0x3F);
    }
    if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10FFFF))) return 0;
    if (cp >= 0xD800 && cp <= 0xDFFF) return 0;
    if (cp >= 0x80 && cp <= 0x9F) return 0;
    if (cp == 0x2028 || cp == 0x2029) return 0;
    if ((cp >= 0x202A && cp <= 0x202E) || (cp >= 0x2066 && cp <= 0x2069)) return 0;
    return len;
}

bool is_name_char(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '-' || c == '.';
}

} // namespace

std::string log_value(std::string_view value) {
    std::size_t full = value.size();
    if (value.size() > log_value_length) {
        // Cut at a character boundary so the cut does not leave a stray escape.
        value = value.substr(0, utf8_cut(value, log_value_length));
    }
    std::string out;
    out.reserve(value.size() + 2);
    bool quote = value.empty();
    for (std::size_t i = 0; i < value.size();) {
        unsigned char c = static_cast<unsigned char>(value[i]);
        if (c >= 0x80) {
            if (std::size_t n = safe_utf8(value, i)) {
                out.append(value.substr(i, n));
                i += n;
            } else {
                hex_escape(out, c);
                quote = true;
                ++i;
            }
            continue;
        }
        if (c < 0x20 || c == 0x7F) {
            hex_escape(out, c);
            quote = true;
        } else if (c == '"' || c == '\\') {
            out += '\\';
            out += static_cast<char>(c);
            quote = true;
        } else {
            if (c == ' ' || c == '=') quote = true;
            out += static_cast<char>(c);
        }
        ++i;
    }
    if (full > value.size()) out += "[truncated len=" + std::to_string(full) + "]";
    if (quote) return '"' + out + '"';
    return out;
}

std::string log_name(std::string_view name) {
    if (name.empty()) return "_";
    std::string out(name.substr(0, 64));
    for (char& c : out)
        if (!is_name_char(c)) c = '_';
    return out;
}

std::string format_event(Level level, std::string_view event, std::initializer_list<LogField> fields) {
    std::string out = "level=";
    out += to_string(level);
    out += " event=";
    out += log_name(event);
    for (const LogField& f : fields) {
        out += ' ';
        out += log_name(f.key);
        out += '=';
        out += log_value(f.value);
    }
    return out;
}

std::string format_line(std::int64_t time, std::string_view program, long pid, std::string_view body) {
    char stamp[32] = "1970-01-01T00:00:00Z";
    std::time_t tt = static_cast<std::time_t>(time);
    std::tm tm{};
    if (gmtime_r(&tt, &tm)) std::strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%SZ", &tm);
    std::string out = stamp;
    out += ' ';
    out += log_name(program);
    out += '[';
    out += std::to_string(pid);
    out += "]: ";
    out += body;
    out += '\n';
    return out;
}

LogTarget choose_target(std::string_view target, bool no_stderr, bool stderr_is_tty, bool syslog_ok) {
    if (target == "syslog") return LogTarget::syslog;
    if (target == "none") return LogTarget::none;
    if (target == "stderr") return no_stderr ? LogTarget::syslog : LogTarget::stderr_stream;
    if (target == "auto" || target.empty())
        return !no_stderr && (stderr_is_tty || !syslog_ok) ? LogTarget::stderr_stream : LogTarget::syslog;
    return LogTarget::file;
}

bool syslog_listening(const char* socket) {
    int fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return false;
    sockaddr_un sa{};
    sa.sun_family = AF_UNIX;
    std::size_t n = std::strlen(socket);
    bool ok = false;
    if (n < sizeof sa.sun_path) {
        std::memcpy(sa.sun_path, socket, n);
        ok = ::connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0;
    }
    ::close(fd);
    return ok;
}

bool stderr_is_peer() {
    struct stat err {};
    if (::fstat(2, &err) != 0) return true;
    if (!S_ISSOCK(err.st_mode)) return false;
    for (int fd : {0, 1}) {
        struct stat other {};
        if (::fstat(fd, &other) == 0 && other.st_dev == err.st_dev && other.st_ino == err.st_ino) return true;
    }
    return false;
}

namespace {

// openlog() keeps the pointer it is given, so the ident lives here, not in a
// Logger that may be destroyed first.
void open_syslog(std::string_view program) {
    static std::mutex m;
    static char ident[64];
    std::lock_guard<std::mutex> lock(m);
    std::string name = log_name(program);
    std::size_t n = std::min(name.size(), sizeof ident - 1);
    std::memcpy(ident, name.data(), n);
    ident[n] = '\0';
    openlog(ident, LOG_PID, LOG_MAIL);
}

int syslog_priority(Level level) {
    switch (level) {
    case Level::err: return LOG_ERR;
    case Level::warning: return LOG_WARNING;
    case Level::notice: return LOG_NOTICE;
    case Level::info: return LOG_INFO;
    case Level::debug: return LOG_DEBUG;
    }
    return LOG_ERR;
}

// One write() per line where the kernel allows: with O_APPEND, concurrent
// writers' lines do not interleave. A short write is finished rather than lost.
void write_all(int fd, std::string_view data) {
    while (!data.empty()) {
        ssize_t n = ::write(fd, data.data(), data.size());
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return;
        data.remove_prefix(static_cast<std::size_t>(n));
    }
}

} // namespace

Logger::Logger(LogOptions options) : options_(std::move(options)) { open_target(); }

Logger::~Logger() {
    if (fd_ >= 0) ::close(fd_);
}

void Logger::open_target() noexcept {
    try {
        bool tty = options_.stderr_is_tty ? *options_.stderr_is_tty : ::isatty(2) == 1;
        bool syslog_ok = true;
        if (options_.daemon && !tty && (options_.target == "auto" || options_.target.empty()))
            syslog_ok = options_.syslog_ok ? *options_.syslog_ok : syslog_listening();
        target_ = choose_target(options_.target, options_.no_stderr, tty, syslog_ok);
        fallback_.clear();
        if (options_.target == "stderr" && target_ != LogTarget::stderr_stream)
            fallback_ = "stderr is not available";
        if (target_ == LogTarget::file) {
            fd_ = ::open(options_.target.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY, 0640);
            if (fd_ < 0) {
                fallback_ = "cannot open " + options_.target + ": " + std::strerror(errno);
                target_ = options_.no_stderr ? LogTarget::syslog : LogTarget::stderr_stream;
            }
        }
        if (target_ == LogTarget::syslog) open_syslog(options_.program);
        if (!fallback_.empty())
            log(Level::warning, "log.fallback", {{"wanted", options_.target}, {"reason", fallback_}});
    } catch (...) {
        target_ = LogTarget::none;
    }
}

void Logger::reopen() noexcept {
    if (target_ == LogTarget::file && fd_ >= 0) {
        // Other threads may be writing now: the new file takes over the old descriptor's number (dup3 swaps
        // it in one step), so no line goes to a closed descriptor or to one reused meanwhile by a connection.
        // Should the file not open, the lines go on into the old one, which says why.
        int nfd = ::open(options_.target.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY, 0640);
        int err = errno;
        if (nfd >= 0) {
            int r = ::dup3(nfd, fd_, O_CLOEXEC);
            err = errno;
            ::close(nfd);
            if (r >= 0) return;
        }
        log(Level::warning, "log.reopen",
            {{"path", options_.target}, {"error", std::string_view(std::strerror(err))}});
        return;
    }
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
    open_target();
}

void Logger::log(Level level, std::string_view event, std::initializer_list<LogField> fields) noexcept {
    if (!enabled(level) || target_ == LogTarget::none) return;
    try {
        write_line(level, format_event(level, event, fields));
    } catch (...) {
        // Out of memory while formatting: drop the line, keep the session.
    }
}

void Logger::write_line(Level level, const std::string& body) noexcept {
    try {
        switch (target_) {
        case LogTarget::syslog:
            ::syslog(syslog_priority(level), "%s", body.c_str());
            return;
        case LogTarget::stderr_stream:
        case LogTarget::file: {
            std::int64_t t = options_.clock ? options_.clock() : static_cast<std::int64_t>(std::time(nullptr));
            std::string line = format_line(t, options_.program, static_cast<long>(::getpid()), body);
            write_all(target_ == LogTarget::file ? fd_ : 2, line);
            return;
        }
        case LogTarget::none: return;
        }
    } catch (...) {
    }
}

} // namespace mail
