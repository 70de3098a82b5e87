// Small ASCII text helpers: see text.hpp.
#include "libmail/base/text.hpp"

#include <algorithm>

namespace mail {

std::string lower(std::string_view s) {
    std::string out(s);
    for (char& c : out) c = lower(c);
    return out;
}

std::string_view trim(std::string_view s) {
    while (!s.empty() && is_trim_space(s.front())) s.remove_prefix(1);
    return rtrim(s);
}

std::string_view rtrim(std::string_view s) {
    while (!s.empty() && is_trim_space(s.back())) s.remove_suffix(1);
    return s;
}

bool iequals(std::string_view a, std::string_view b) {
    return a.size() == b.size() && istarts_with(a, b);
}

bool istarts_with(std::string_view s, std::string_view prefix) {
    if (s.size() < prefix.size()) return false;
    for (std::size_t i = 0; i < prefix.size(); ++i)
        if (lower(s[i]) != lower(prefix[i])) return false;
    return true;
}

bool has_control(std::string_view s) { return std::any_of(s.begin(), s.end(), is_control); }

std::size_t utf8_cut(std::string_view s, std::size_t n) {
    for (int k = 0; k < 3 && n > 0 && n < s.size() && (static_cast<unsigned char>(s[n]) & 0xc0) == 0x80; ++k) --n;
    return n;
}

std::string scrub(std::string_view s, std::size_t max) {
    bool cut = s.size() > max;
    if (cut) {
        s = s.substr(0, utf8_cut(s, max - std::min<std::size_t>(max, 3)));  // room for "..."
    }
    std::string out;
    out.reserve(s.size() + 3);
    for (char c : s) out += c == '\t' ? ' ' : is_control(c) ? '?' : c;
    if (cut) out += "...";
    return out;
}

} // namespace mail
