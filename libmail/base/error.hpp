// Errors as values and their sysexits codes (DESIGN §8.4).
#pragma once
#include <string>
#include <utility>
#include <variant>

namespace mail {

/// The kinds of failure a program can report; each maps to one sysexits code.
enum class ErrorKind {
    usage,       ///< 64 EX_USAGE: bad command line
    data,        ///< 65 EX_DATAERR: malformed message or entry
    noinput,     ///< 66 EX_NOINPUT: input file missing or unreadable
    rejected,    ///< 69 EX_UNAVAILABLE: refused by policy
    software,    ///< 70 EX_SOFTWARE: a bug
    tempfail,    ///< 75 EX_TEMPFAIL: try again later (locks, full disk, I/O)
    noperm,      ///< 77 EX_NOPERM: permission denied
    config,      ///< 78 EX_CONFIG: bad configuration
};

/// A failure: what kind, and one line of text saying what went wrong.
struct Error {
    ErrorKind kind = ErrorKind::software;
    std::string text;
};

/// The sysexits code for an error kind.
constexpr int exit_code(ErrorKind k) {
    switch (k) {
    case ErrorKind::usage: return 64;
    case ErrorKind::data: return 65;
    case ErrorKind::noinput: return 66;
    case ErrorKind::rejected: return 69;
    case ErrorKind::software: return 70;
    case ErrorKind::tempfail: return 75;
    case ErrorKind::noperm: return 77;
    case ErrorKind::config: return 78;
    }
    return 70;
}

/// Exit codes that are not errors.
inline constexpr int ex_ok = 0;
/// "No" answer of a check command (like grep: not found, not an error).
inline constexpr int ex_no = 1;

/// A value or an Error. Small on purpose: GCC 12 has no std::expected.
template <class T>
class [[nodiscard]] Result {
public:
    Result(T v) : v_(std::move(v)) {}
    Result(Error e) : v_(std::move(e)) {}
    /// True when a value is held.
    bool ok() const { return v_.index() == 0; }
    explicit operator bool() const { return ok(); }
    T& value() { return std::get<0>(v_); }
    const T& value() const { return std::get<0>(v_); }
    T& operator*() { return value(); }
    const T& operator*() const { return value(); }
    T* operator->() { return &value(); }
    const T* operator->() const { return &value(); }
    const Error& error() const { return std::get<1>(v_); }

private:
    std::variant<T, Error> v_;
};

/// Result of an operation that returns nothing but may fail.
template <>
class [[nodiscard]] Result<void> {
public:
    Result() = default;
    Result(Error e) : err_(std::move(e)), ok_(false) {}
    bool ok() const { return ok_; }
    explicit operator bool() const { return ok_; }
    const Error& error() const { return err_; }

private:
    Error err_;
    bool ok_ = true;
};

/// Shorthand for building an Error.
inline Error make_error(ErrorKind k, std::string text) { return Error{k, std::move(text)}; }

} // namespace mail
