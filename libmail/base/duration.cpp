#include "libmail/base/duration.hpp"

#include <cstdint>
#include <limits>

namespace mail {

namespace {

constexpr std::int64_t minute = 60;
constexpr std::int64_t hour = 60 * minute;
constexpr std::int64_t day = 24 * hour;
constexpr std::int64_t week = 7 * day;

// Units largest first; the order a combination must be written in.
struct Unit {
    char letter;
    std::int64_t seconds;
};
constexpr Unit units[] = {{'w', week}, {'d', day}, {'h', hour}, {'m', minute}, {'s', 1}};

Error bad(std::string_view text, std::string_view why) {
    return make_error(ErrorKind::usage,
                      "bad duration '" + std::string(text) + "': " + std::string(why));
}

} // namespace

Result<std::int64_t> parse_duration(std::string_view text) {
    if (text.empty()) return bad(text, "empty");
    if (text.size() > 64) return bad(text.substr(0, 64), "too long");
    if (text.front() == '-') return bad(text, "negative");
    constexpr std::int64_t max = std::numeric_limits<std::int64_t>::max();
    std::int64_t total = 0;
    std::size_t next_unit = 0;  // index into units: the smallest still allowed
    std::size_t i = 0;
    while (i < text.size()) {
        if (text[i] < '0' || text[i] > '9') return bad(text, "expected a number");
        std::int64_t n = 0;
        while (i < text.size() && text[i] >= '0' && text[i] <= '9') {
            int d = text[i] - '0';
            if (n > (max - d) / 10) return bad(text, "too large");
            n = n * 10 + d;
            ++i;
        }
        std::int64_t mult = 1;
        if (i == text.size()) {
            // A bare number is seconds, but only on its own: "1d12" is a typo.
            if (next_unit != 0) return bad(text, "number without a unit");
        } else {
            std::size_t u = next_unit;
            while (u < std::size(units) && units[u].letter != text[i]) ++u;
            if (u == std::size(units)) {
                for (const Unit& any : units)
                    if (any.letter == text[i]) return bad(text, "units must be in order w d h m s, each once");
                return bad(text, "unknown unit (use s, m, h, d or w)");
            }
            mult = units[u].seconds;
            next_unit = u + 1;
            ++i;
        }
        if (n > max / mult) return bad(text, "too large");
        n *= mult;
        if (total > max - n) return bad(text, "too large");
        total += n;
    }
    return total;
}

std::string format_duration(std::int64_t seconds) {
    if (seconds == 0) return "0s";
    if (seconds < 0) {
        // Not parseable back (durations are never negative), but still honest.
        if (seconds == std::numeric_limits<std::int64_t>::min()) return "-9223372036854775808s";
        return "-" + format_duration(-seconds);
    }
    std::string out;
    std::int64_t rest = seconds;
    // Weeks only when they divide evenly: "10d" reads better than "1w3d".
    if (rest % week == 0) return std::to_string(rest / week) + "w";
    for (std::size_t u = 1; u < std::size(units); ++u) {
        std::int64_t n = rest / units[u].seconds;
        if (n == 0) continue;
        out += std::to_string(n);
        out += units[u].letter;
        rest -= n * units[u].seconds;
    }
    return out;
}

Result<std::int64_t> parse_size(std::string_view text) {
    std::int64_t n = 0;
    std::size_t i = 0;
    for (; i < text.size() && text[i] >= '0' && text[i] <= '9'; ++i) {
        if (n > (INT64_MAX - 9) / 10) return Error{ErrorKind::usage, "size '" + std::string(text) + "' is too large"};
        n = n * 10 + (text[i] - '0');
    }
    std::size_t digits = i;
    int shift = 0;
    if (digits > 0 && i + 1 == text.size()) {
        switch (text[i] | 0x20) {
        case 'k': shift = 10; break;
        case 'm': shift = 20; break;
        case 'g': shift = 30; break;
        default: shift = -1;
        }
        ++i;
    }
    if (digits == 0 || i != text.size() || shift < 0)
        return Error{ErrorKind::usage, "size '" + std::string(text) + "': want a number of octets, or with K, M or G"};
    if (n > (INT64_MAX >> shift)) return Error{ErrorKind::usage, "size '" + std::string(text) + "' is too large"};
    return n << shift;
}

} // namespace mail
