// SPF record parsing (RFC 7208 §4.5, §4.6, §12): pure.
#include "libmail/auth/spf.hpp"
#include "libmail/auth/spf_internal.hpp"

namespace mail::spf {

namespace {

bool is_alpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_alnum(char c) { return is_alpha(c) || is_digit(c); }

Error perm(std::string text) { return Error{ErrorKind::data, std::move(text)}; }

// toplabel = ( *alphanum ALPHA *alphanum ) / ( 1*alphanum "-" *( alphanum / "-" ) alphanum )
bool is_toplabel(std::string_view s) {
    if (s.empty()) return false;
    bool alpha = false, hyphen = false;
    for (char c : s) {
        if (is_alpha(c)) alpha = true;
        else if (c == '-') hyphen = true;
        else if (!is_digit(c)) return false;
    }
    if (!hyphen) return alpha;
    return s.front() != '-' && s.back() != '-';
}

// A CIDR length: "0" or a number without leading zeros, at most max. -1 when malformed.
int cidr_value(std::string_view digits, int max) {
    if (digits.empty() || digits.size() > 3) return -1;
    if (digits.size() > 1 && digits[0] == '0') return -1;
    int v = 0;
    for (char c : digits) {
        if (!is_digit(c)) return -1;
        v = v * 10 + (c - '0');
    }
    return v <= max ? v : -1;
}

// Takes a trailing "/digits" off s (digits only, no slash inside); returns the digits or nullopt.
std::optional<std::string_view> take_cidr(std::string_view& s, bool dual) {
    std::size_t end = s.size();
    std::size_t i = end;
    while (i > 0 && is_digit(s[i - 1])) --i;
    if (i == end || i == 0 || s[i - 1] != '/') return std::nullopt;
    std::size_t slash = i - 1;
    if (dual) {
        if (slash == 0 || s[slash - 1] != '/') return std::nullopt;
        auto d = s.substr(i);
        s = s.substr(0, slash - 1);
        return d;
    }
    if (slash > 0 && s[slash - 1] == '/') return std::nullopt;
    auto d = s.substr(i);
    s = s.substr(0, slash);
    return d;
}

// ip4-network: four dec-octets without leading zeros.
bool valid_ip4(std::string_view s) {
    int parts = 0;
    std::size_t i = 0;
    while (true) {
        std::size_t j = i;
        while (j < s.size() && is_digit(s[j])) ++j;
        std::string_view d = s.substr(i, j - i);
        if (d.empty() || d.size() > 3 || (d.size() > 1 && d[0] == '0')) return false;
        int v = 0;
        for (char c : d) v = v * 10 + (c - '0');
        if (v > 255) return false;
        ++parts;
        if (j == s.size()) break;
        if (s[j] != '.' || parts == 4) return false;
        i = j + 1;
    }
    return parts == 4;
}

Result<void> check_domain_spec(std::string_view spec, std::string_view term) {
    auto toks = tokenize_macro(spec, false);
    if (!toks) return perm(toks.error().text + ": " + std::string(term));
    if (!valid_domain_end(spec)) return perm("invalid domain-spec (not a FQDN and no macro at its end): " + std::string(term));
    return {};
}

} // namespace

bool valid_domain_end(std::string_view spec) {
    auto toks = tokenize_macro(spec, false);
    if (!toks || toks->empty()) return false;
    if (toks->back().macro) return true;
    // The literal tail after the last macro.
    std::string tail;
    for (auto it = toks->rbegin(); it != toks->rend() && !it->macro; ++it) tail.insert(0, it->literal);
    if (!tail.empty() && tail.back() == '.') tail.pop_back();
    auto dot = tail.rfind('.');
    if (dot == std::string::npos) return false;
    return is_toplabel(std::string_view(tail).substr(dot + 1));
}

bool is_spf_record(std::string_view txt) {
    if (txt.size() < 6 || !istarts_with(txt, "v=spf1")) return false;
    return txt.size() == 6 || txt[6] == ' ';
}

Result<std::vector<Term>> parse_record(std::string_view record) {
    if (!is_spf_record(record)) return perm("not an SPF version 1 record");
    std::vector<Term> terms;
    bool redirect = false, exp = false;
    std::size_t pos = 6;
    while (pos < record.size()) {
        if (record[pos] == ' ') {
            ++pos;
            continue;
        }
        auto end = record.find(' ', pos);
        if (end == std::string_view::npos) end = record.size();
        std::string_view text = record.substr(pos, end - pos);
        pos = end;
        if (terms.size() >= 1000) return perm("too many terms");

        Term t;
        // A modifier: name "=" macro-string, name = ALPHA *( ALPHA / DIGIT / "-" / "_" / "." ).
        std::size_t n = 0;
        if (!text.empty() && is_alpha(text[0])) {
            n = 1;
            while (n < text.size() && (is_alnum(text[n]) || text[n] == '-' || text[n] == '_' || text[n] == '.')) ++n;
        }
        if (n > 0 && n < text.size() && text[n] == '=') {
            t.kind = Term::Kind::modifier;
            t.name = lower(text.substr(0, n));
            t.domain_spec = std::string(text.substr(n + 1));
            if (t.name == "redirect" || t.name == "exp") {
                bool& seen = t.name == "redirect" ? redirect : exp;
                if (seen) return perm(t.name + "= appears more than once");
                seen = true;
                if (auto r = check_domain_spec(t.domain_spec, text); !r) return r.error();
            } else {
                auto toks = tokenize_macro(t.domain_spec, false);
                if (!toks) return perm(toks.error().text + ": " + std::string(text));
            }
            terms.push_back(std::move(t));
            continue;
        }

        // A directive: [qualifier] mechanism.
        std::string_view m = text;
        if (!m.empty() && (m[0] == '+' || m[0] == '-' || m[0] == '~' || m[0] == '?')) {
            t.qualifier = m[0];
            m.remove_prefix(1);
        }
        std::size_t k = 0;
        while (k < m.size() && m[k] != ':' && m[k] != '/') ++k;
        t.name = lower(m.substr(0, k));
        std::string_view rest = m.substr(k);
        const std::string& name = t.name;
        if (name == "all") {
            if (!rest.empty()) return perm("all takes no argument: " + std::string(text));
        } else if (name == "include" || name == "exists") {
            if (rest.size() < 2 || rest[0] != ':') return perm(name + " needs a domain: " + std::string(text));
            t.domain_spec = std::string(rest.substr(1));
            if (auto r = check_domain_spec(t.domain_spec, text); !r) return r.error();
        } else if (name == "a" || name == "mx") {
            if (auto d6 = take_cidr(rest, true)) {
                t.cidr6 = cidr_value(*d6, 128);
                if (t.cidr6 < 0) return perm("invalid IPv6 CIDR length: " + std::string(text));
            }
            if (auto d4 = take_cidr(rest, false)) {
                t.cidr4 = cidr_value(*d4, 32);
                if (t.cidr4 < 0) return perm("invalid IPv4 CIDR length: " + std::string(text));
            }
            if (!rest.empty()) {
                if (rest.size() < 2 || rest[0] != ':') return perm("invalid " + name + " mechanism: " + std::string(text));
                t.domain_spec = std::string(rest.substr(1));
                if (auto r = check_domain_spec(t.domain_spec, text); !r) return r.error();
            }
        } else if (name == "ptr") {
            if (!rest.empty()) {
                if (rest.size() < 2 || rest[0] != ':') return perm("invalid ptr mechanism: " + std::string(text));
                t.domain_spec = std::string(rest.substr(1));
                if (auto r = check_domain_spec(t.domain_spec, text); !r) return r.error();
            }
        } else if (name == "ip4" || name == "ip6") {
            bool v6 = name == "ip6";
            if (rest.size() < 2 || rest[0] != ':') return perm(name + " needs an address: " + std::string(text));
            rest.remove_prefix(1);
            auto slash = rest.find('/');
            std::string_view net = rest.substr(0, slash);
            if (slash != std::string_view::npos) {
                int v = cidr_value(rest.substr(slash + 1), v6 ? 128 : 32);
                if (v < 0) return perm(std::string("invalid ") + (v6 ? "IPv6" : "IPv4") + " CIDR length: " + std::string(text));
                (v6 ? t.cidr6 : t.cidr4) = v;
            }
            bool ok = false;
            if (v6) {
                auto ip = parse_ip(net);
                // An IPv4-mapped network is still an ip6 network; parse_ip folds it to IPv4, so accept either.
                ok = ip && net.find(':') != std::string_view::npos;
            } else {
                ok = valid_ip4(net);
            }
            if (!ok) return perm(std::string("invalid ") + (v6 ? "IPv6" : "IPv4") + " address: " + std::string(text));
            t.domain_spec = std::string(net);
        } else {
            return perm("unknown mechanism: " + std::string(text));
        }
        terms.push_back(std::move(t));
    }
    return terms;
}

} // namespace mail::spf
