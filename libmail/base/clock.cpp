#include "libmail/base/clock.hpp"

#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <ctime>

namespace mail {

std::int64_t now() {
    if (const char* fake = std::getenv("MAILSTAMP_TEST_NOW"); fake && *fake) {
        std::int64_t v = 0;
        auto [p, ec] = std::from_chars(fake, fake + std::char_traits<char>::length(fake), v);
        if (ec == std::errc() && *p == '\0') return v;
    }
    return static_cast<std::int64_t>(std::time(nullptr));
}

std::string format_time(std::int64_t t) {
    if (t == 0) return {};
    std::time_t tt = static_cast<std::time_t>(t);
    std::tm tm{};
    if (!gmtime_r(&tt, &tm)) return {};
    char buf[32];
    std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return buf;
}

namespace {
bool num(std::string_view s, std::size_t pos, std::size_t len, int& out) {
    if (pos + len > s.size()) return false;
    auto [p, ec] = std::from_chars(s.data() + pos, s.data() + pos + len, out);
    return ec == std::errc() && p == s.data() + pos + len;
}
} // namespace

std::optional<std::int64_t> parse_time(std::string_view s) {
    if (s.empty()) return std::nullopt;
    if (s.find('-') == std::string_view::npos) {
        std::int64_t v = 0;
        auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
        if (ec != std::errc() || p != s.data() + s.size() || v < 0) return std::nullopt;
        return v;
    }
    int y, mo, d, h = 0, mi = 0, se = 0;
    if (!num(s, 0, 4, y) || s.size() < 10 || s[4] != '-' || !num(s, 5, 2, mo) || s[7] != '-' || !num(s, 8, 2, d))
        return std::nullopt;
    if (s.size() != 10) {
        if (s.size() != 20 || (s[10] != 'T' && s[10] != ' ') || !num(s, 11, 2, h) || s[13] != ':' ||
            !num(s, 14, 2, mi) || s[16] != ':' || !num(s, 17, 2, se) || s[19] != 'Z')
            return std::nullopt;
    }
    if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || se > 60) return std::nullopt;
    // Days from the civil date (proleptic Gregorian), without timegm's
    // normalisation work: bulk imports parse a time per row.
    std::int64_t yy = y - (mo <= 2 ? 1 : 0);
    std::int64_t era = (yy >= 0 ? yy : yy - 399) / 400;
    std::int64_t yoe = yy - era * 400;
    std::int64_t doy = (153 * (mo + (mo > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    std::int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    std::int64_t days = era * 146097 + doe - 719468;
    return days * 86400 + h * 3600 + mi * 60 + se;
}

std::string rfc5322_date(std::int64_t t) {
    static const char* const days[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    static const char* const months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                         "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    std::time_t tt = static_cast<std::time_t>(t);
    std::tm tm{};
    ::gmtime_r(&tt, &tm);
    char buf[64];
    std::snprintf(buf, sizeof buf, "%s, %02d %s %04d %02d:%02d:%02d +0000", days[tm.tm_wday], tm.tm_mday,
                  months[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
    return buf;
}

} // namespace mail
