// Logging (DESIGN §7, §8.11): one line per event, `key=value`, to syslog
// (facility mail), stderr, or a file. Lines on stderr and in files start with
// an ISO 8601 UTC time and `program[pid]:`; syslog adds its own.
//
// Every key and value is sanitised: control characters (CR and LF above all),
// C1 controls, Unicode line separators, bidi overrides and invalid UTF-8
// become \xNN escapes inside a quoted value, so nothing a message or a
// network peer sends can start a line or forge a field. Values longer than
// log_value_length are cut and marked "[truncated len=N]".
//
// Secrets are never logged: pass passwords, keys, AUTH data and token MACs
// through redact(), which keeps only their length.
//
// Logging never throws and never fails the caller: a file that cannot be
// opened falls back to stderr (or to syslog when stderr is forbidden, as in
// inetd mode where stderr is the client's socket), and a missing syslog
// socket just drops the line -- except for a daemon (LogOptions::daemon),
// whose "auto" log goes to stderr when no syslog socket answers, so that the
// reason it refuses service is seen by someone. Diagnostics ("tool: context: error" on stderr)
// are not logs and do not go through here.
#pragma once
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>

namespace mail {

/// Longest value written to a log line, in octets before escaping.
inline constexpr std::size_t log_value_length = 1024;

/// Severity, most severe first; a Logger writes levels up to its threshold.
enum class Level { err, warning, notice, info, debug };

/// "err", "warning", "notice", "info" or "debug".
std::string_view to_string(Level level);
/// Reads a level name as to_string writes it (also "error" and "warn"); nothing otherwise.
std::optional<Level> parse_level(std::string_view name);

/// One key=value pair of an event. Integers and booleans ("yes"/"no") are formatted for you.
struct LogField {
    /// A text value.
    LogField(std::string_view k, std::string_view v) : key(k), value(v) {}
    /// A number or a yes/no.
    template <std::integral T>
    LogField(std::string_view k, T v) : key(k), value(format(v)) {}

    std::string_view key;
    std::string value;

private:
    template <std::integral T>
    static std::string format(T v) {
        if constexpr (std::same_as<T, bool>) return v ? "yes" : "no";
        else if constexpr (std::same_as<T, char>) return std::string(1, v);
        else return std::to_string(v);
    }
};

/// "[redacted len=N]": what to log in place of a secret.
std::string redact(std::string_view secret);

/// A value as written in a line: bare when safe, else double-quoted with \" \\ and \xNN escapes.
std::string log_value(std::string_view value);

/// A key or event name reduced to [A-Za-z0-9_.-] (others become '_'; empty becomes "_").
std::string log_name(std::string_view name);

/// The body of a line: "level=info event=NAME key=value ..." (no newline).
std::string format_event(Level level, std::string_view event, std::initializer_list<LogField> fields);

/// A file or stderr line: "2026-11-22T10:00:00Z program[pid]: BODY\n".
std::string format_line(std::int64_t time, std::string_view program, long pid, std::string_view body);

/// Where lines go.
enum class LogTarget { syslog, stderr_stream, file, none };

/// The target `--log` names: "syslog", "stderr", "none", "auto" or a file. "auto" is stderr when stderr is a
/// terminal, else syslog -- or stderr when `syslog_ok` is false (a daemon with no syslog socket); never stderr
/// when no_stderr.
LogTarget choose_target(std::string_view target, bool no_stderr, bool stderr_is_tty, bool syslog_ok = true);

/// True when a syslog daemon listens on `socket` (a datagram connect succeeds).
bool syslog_listening(const char* socket = "/dev/log");

/// True when fd 2 must not be written: it is closed, or it is the same socket as fd 0 or fd 1 (an inetd
/// session's client). A terminal, a pipe, a file or another socket (systemd's journal) is fine.
bool stderr_is_peer();

/// How to build a Logger.
struct LogOptions {
    std::string program = "mailstamp";     ///< syslog ident and line prefix
    std::string target = "auto";           ///< --log: auto, syslog, stderr, none, or a file path
    Level threshold = Level::info;         ///< --log-level
    bool no_stderr = false;                ///< stderr is not ours (inetd mode): never write to it
    bool daemon = false;                   ///< "auto" falls back to stderr when no syslog socket answers
    std::optional<bool> stderr_is_tty;     ///< unset: isatty(2)
    std::optional<bool> syslog_ok;         ///< unset: syslog_listening() (asked only for a daemon)
    std::function<std::int64_t()> clock;   ///< unset: time(); the line timestamp
};

/// Writes events to one target. Not copyable; safe to share between threads.
class Logger {
public:
    /// Opens the target; on failure falls back (see fallback()) and says so in the log.
    explicit Logger(LogOptions options);
    ~Logger();
    Logger(const Logger&) = delete;
    Logger& operator=(const Logger&) = delete;

    /// Writes one line if `level` is within the threshold; never throws, never fails.
    void log(Level level, std::string_view event, std::initializer_list<LogField> fields = {}) noexcept;
    /// log(Level::err, ...).
    void err(std::string_view event, std::initializer_list<LogField> fields = {}) noexcept { log(Level::err, event, fields); }
    /// log(Level::warning, ...).
    void warning(std::string_view event, std::initializer_list<LogField> fields = {}) noexcept { log(Level::warning, event, fields); }
    /// log(Level::notice, ...).
    void notice(std::string_view event, std::initializer_list<LogField> fields = {}) noexcept { log(Level::notice, event, fields); }
    /// log(Level::info, ...).
    void info(std::string_view event, std::initializer_list<LogField> fields = {}) noexcept { log(Level::info, event, fields); }
    /// log(Level::debug, ...).
    void debug(std::string_view event, std::initializer_list<LogField> fields = {}) noexcept { log(Level::debug, event, fields); }

    /// True when `level` would be written (to skip building costly fields).
    bool enabled(Level level) const { return level <= options_.threshold; }
    /// The target in use, after any fallback.
    LogTarget target() const { return target_; }
    /// Why the requested target is not in use; "" when it is.
    const std::string& fallback() const { return fallback_; }
    /// Reopens a file target by its name (after log rotation); safe while other threads log. A file that
    /// does not open leaves the old one in use (with a warning in it). Other targets: as the constructor.
    void reopen() noexcept;

private:
    void open_target() noexcept;
    void write_line(Level level, const std::string& body) noexcept;

    LogOptions options_;
    LogTarget target_ = LogTarget::none;
    int fd_ = -1;
    std::string fallback_;
};

} // namespace mail
