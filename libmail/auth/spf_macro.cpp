// SPF macro expansion (RFC 7208 §7): pure, bounded.
#include "libmail/auth/spf.hpp"
#include "libmail/auth/spf_internal.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <cstring>

namespace mail::spf {

namespace {

constexpr std::size_t max_expansion = 8192;  // longer output is an error (a domain is at most 253)

bool is_delimiter(char c) {
    return c == '.' || c == '-' || c == '+' || c == ',' || c == '/' || c == '_' || c == '=';
}

bool is_unreserved(char c) {  // RFC 3986 §2.3
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '.' ||
           c == '_' || c == '~';
}

std::string url_escape(std::string_view s) {
    static const char hex[] = "0123456789ABCDEF";
    std::string out;
    for (char c : s) {
        if (is_unreserved(c)) {
            out += c;
        } else {
            auto u = static_cast<unsigned char>(c);
            out += '%';
            out += hex[u >> 4];
            out += hex[u & 15];
        }
    }
    return out;
}

std::string_view local_part(std::string_view sender) {
    auto at = sender.rfind('@');
    std::string_view l = at == std::string_view::npos ? std::string_view("postmaster") : sender.substr(0, at);
    return l.empty() ? std::string_view("postmaster") : l;
}

std::string_view domain_part(std::string_view sender) {
    auto at = sender.rfind('@');
    return at == std::string_view::npos ? sender : sender.substr(at + 1);
}

// The value of letter (lower-case) before transformers; nullopt for a letter not allowed here.
std::optional<std::string> letter_value(char letter, const MacroContext& ctx, bool exp) {
    switch (letter) {
    case 's': return ctx.sender;
    case 'l': return std::string(local_part(ctx.sender));
    case 'o': return std::string(domain_part(ctx.sender));
    case 'd': return ctx.domain;
    case 'h': return ctx.helo;
    case 'p': return ctx.validated.empty() ? std::string("unknown") : ctx.validated;
    case 'i': {
        auto ip = parse_ip(ctx.ip);
        if (!ip) return std::string(ctx.ip);
        return dotted_ip(*ip);
    }
    case 'v': {
        auto ip = parse_ip(ctx.ip);
        return std::string(ip && ip->v6 ? "ip6" : "in-addr");
    }
    case 'c':
        if (!exp) return std::nullopt;
        if (auto ip = parse_ip(ctx.ip)) return printable_ip(*ip);
        return ctx.ip;
    case 'r': return exp ? std::optional<std::string>(ctx.receiver.empty() ? "unknown" : ctx.receiver) : std::nullopt;
    case 't': return exp ? std::optional<std::string>(std::to_string(ctx.timestamp)) : std::nullopt;
    default: return std::nullopt;
    }
}

// Applies the transformers (digits, r) and delimiters to value (§7.3).
std::string transform(std::string_view value, int keep, bool reverse, std::string_view delims) {
    std::vector<std::string_view> parts;
    std::size_t start = 0;
    auto is_delim = [&](char c) {
        return delims.empty() ? c == '.' : delims.find(c) != std::string_view::npos;
    };
    for (std::size_t i = 0; i <= value.size(); ++i) {
        if (i == value.size() || is_delim(value[i])) {
            parts.push_back(value.substr(start, i - start));
            start = i + 1;
        }
    }
    if (reverse) {
        for (std::size_t a = 0, b = parts.size() - 1; a < b; ++a, --b) std::swap(parts[a], parts[b]);
    }
    std::size_t first = 0;
    if (keep > 0 && static_cast<std::size_t>(keep) < parts.size()) first = parts.size() - static_cast<std::size_t>(keep);
    std::string out;
    for (std::size_t i = first; i < parts.size(); ++i) {
        if (i > first) out += '.';
        out += parts[i];
    }
    return out;
}

} // namespace

Result<std::vector<MacroToken>> tokenize_macro(std::string_view s, bool exp) {
    std::vector<MacroToken> out;
    for (std::size_t i = 0; i < s.size();) {
        char c = s[i];
        if (c != '%') {
            auto u = static_cast<unsigned char>(c);
            bool ok = (u >= 0x21 && u <= 0x7e) || (exp && c == ' ');
            if (!ok) return Error{ErrorKind::data, "invalid character in macro-string"};
            MacroToken t;
            t.literal = std::string(1, c);
            out.push_back(std::move(t));
            ++i;
            continue;
        }
        if (i + 1 >= s.size()) return Error{ErrorKind::data, "'%' at the end of a macro-string"};
        char n = s[i + 1];
        if (n == '%' || n == '_' || n == '-') {
            MacroToken t;
            t.macro = true;
            static const std::string percent = "%", space = " ", escaped_space = "%20";
            t.literal = n == '%' ? percent : n == '_' ? space : escaped_space;
            out.push_back(std::move(t));
            i += 2;
            continue;
        }
        if (n != '{') return Error{ErrorKind::data, "'%' not followed by '{', '%', '_' or '-'"};
        auto close = s.find('}', i + 2);
        if (close == std::string_view::npos) return Error{ErrorKind::data, "unterminated macro"};
        std::string_view body = s.substr(i + 2, close - i - 2);
        if (body.empty()) return Error{ErrorKind::data, "empty macro"};
        MacroToken t;
        t.macro = true;
        t.letter = body[0];
        char low = lower(t.letter);
        if (std::string_view("slodiphcrtv").find(low) == std::string_view::npos)
            return Error{ErrorKind::data, std::string("unknown macro letter '") + t.letter + "'"};
        if (!exp && (low == 'c' || low == 'r' || low == 't'))
            return Error{ErrorKind::data, std::string("macro letter '") + t.letter + "' is only allowed in exp= text"};
        std::size_t j = 1;
        bool digits = false;
        long keep = 0;
        while (j < body.size() && body[j] >= '0' && body[j] <= '9') {
            digits = true;
            if (keep < 1000) keep = keep * 10 + (body[j] - '0');
            ++j;
        }
        if (digits && keep == 0) return Error{ErrorKind::data, "macro transformer 0"};
        t.keep = static_cast<int>(keep);
        if (j < body.size() && (body[j] == 'r' || body[j] == 'R')) {
            t.reverse = true;
            ++j;
        }
        for (; j < body.size(); ++j) {
            if (!is_delimiter(body[j])) return Error{ErrorKind::data, "invalid macro delimiter or transformer"};
            t.delimiters += body[j];
        }
        out.push_back(std::move(t));
        i = close + 1;
    }
    return out;
}

Result<std::string> expand(std::string_view macro_string, const MacroContext& ctx, bool exp) {
    auto toks = tokenize_macro(macro_string, exp);
    if (!toks) return toks.error();
    std::string out;
    for (const auto& t : *toks) {
        if (!t.macro || t.letter == 0) {
            out += t.literal;
        } else {
            char low = lower(t.letter);
            auto v = letter_value(low, ctx, exp);
            if (!v) return Error{ErrorKind::data, std::string("macro letter '") + t.letter + "' not allowed here"};
            std::string x = (t.keep || t.reverse || !t.delimiters.empty()) ? transform(*v, t.keep, t.reverse, t.delimiters)
                                                                          : *v;
            if (t.letter != low) x = url_escape(x);
            out += x;
        }
        if (out.size() > max_expansion) return Error{ErrorKind::data, "macro expansion too long"};
    }
    return out;
}

// ---- addresses ----

std::optional<Ip> parse_ip(std::string_view text) {
    if (text.empty() || text.size() > 64) return std::nullopt;
    std::string s(text);
    Ip ip;
    unsigned char buf[16];
    if (inet_pton(AF_INET, s.c_str(), buf) == 1) {
        ip.v6 = false;
        std::memcpy(ip.bytes.data(), buf, 4);
        return ip;
    }
    if (inet_pton(AF_INET6, s.c_str(), buf) == 1) {
        static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
        if (std::memcmp(buf, mapped, 12) == 0) {  // IPv4-mapped: the client is IPv4 (RFC 7208 §5)
            ip.v6 = false;
            std::memcpy(ip.bytes.data(), buf + 12, 4);
            return ip;
        }
        ip.v6 = true;
        std::memcpy(ip.bytes.data(), buf, 16);
        return ip;
    }
    return std::nullopt;
}

std::string dotted_ip(const Ip& ip) {
    std::string out;
    if (!ip.v6) {
        for (int k = 0; k < 4; ++k) {
            if (k) out += '.';
            out += std::to_string(ip.bytes[static_cast<std::size_t>(k)]);
        }
        return out;
    }
    static const char hex[] = "0123456789abcdef";
    for (std::size_t k = 0; k < 16; ++k) {
        if (k) out += '.';
        out += hex[ip.bytes[k] >> 4];
        out += '.';
        out += hex[ip.bytes[k] & 15];
    }
    return out;
}

std::string printable_ip(const Ip& ip) {
    char buf[INET6_ADDRSTRLEN];
    if (!inet_ntop(ip.v6 ? AF_INET6 : AF_INET, ip.bytes.data(), buf, sizeof buf)) return {};
    return buf;
}

bool cidr_match(const Ip& a, const Ip& b, int bits) {
    if (a.v6 != b.v6) return false;
    int total = a.v6 ? 128 : 32;
    if (bits < 0 || bits > total) bits = total;
    std::size_t whole = static_cast<std::size_t>(bits / 8);
    if (std::memcmp(a.bytes.data(), b.bytes.data(), whole) != 0) return false;
    int rest = bits % 8;
    if (rest == 0) return true;
    auto mask = static_cast<unsigned char>(0xff << (8 - rest));
    return (a.bytes[whole] & mask) == (b.bytes[whole] & mask);
}

} // namespace mail::spf
