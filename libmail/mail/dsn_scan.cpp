// What notices are scanned for: see dsn_scan.hpp.
#include "libmail/mail/dsn_scan.hpp"

#include "libmail/mail/address.hpp"
#include "libmail/base/text.hpp"

#include <utility>

namespace mail::dsn_detail {

namespace {

using std::string_view;
constexpr std::size_t npos = string_view::npos;

bool is_digit(char c) { return c >= '0' && c <= '9'; }

} // namespace

// ---------------------------------------------------------------- text helpers

bool is_alnum(char c) { return is_digit(c) || (lower(c) >= 'a' && lower(c) <= 'z'); }

// Case-insensitive find.
std::size_t ifind(string_view hay, string_view needle, std::size_t from) {
    if (needle.empty() || hay.size() < needle.size()) return npos;
    const char first = lower(needle[0]);
    for (std::size_t i = from; i + needle.size() <= hay.size(); ++i)
        if (lower(hay[i]) == first && istarts_with(hay.substr(i), needle)) return i;
    return npos;
}
bool has(string_view hay, string_view needle) { return ifind(hay, needle) != npos; }

// Leading spaces and tabs (a tab counts as 8).
std::size_t indent_of(string_view line) {
    std::size_t n = 0;
    for (char c : line) {
        if (c == ' ') ++n;
        else if (c == '\t') n += 8;
        else break;
    }
    return n;
}

// s as one line: controls and runs of whitespace become one space, at most max
// octets, never ending inside a UTF-8 sequence.
std::string one_line(string_view s, std::size_t max) {
    std::string out;
    bool space = false;
    for (char ch : s) {
        auto c = static_cast<unsigned char>(ch);
        if (c <= ' ' || c == 0x7f) {
            space = !out.empty();
            continue;
        }
        if (out.size() + (space ? 2 : 1) > max) {
            // Drop a UTF-8 sequence cut short at the end.
            std::size_t i = out.size();
            while (i > 0 && (static_cast<unsigned char>(out[i - 1]) & 0xc0) == 0x80) --i;
            if (i > 0) {
                auto lead = static_cast<unsigned char>(out[i - 1]);
                std::size_t want = lead >= 0xf0 ? 4 : lead >= 0xe0 ? 3 : lead >= 0xc0 ? 2 : 1;
                if (out.size() - (i - 1) < want) out.resize(i - 1);
            }
            break;
        }
        if (space) out += ' ';
        space = false;
        out += ch;
    }
    while (!out.empty() && out.back() == ' ') out.pop_back();
    return out;
}

// The lines of text, without their line ends, at most limits::dsn_text_lines.
std::vector<string_view> lines_of(string_view text) {
    std::vector<string_view> out;
    std::size_t pos = 0;
    while (pos < text.size() && out.size() < limits::dsn_text_lines) {
        std::size_t eol = text.find('\n', pos);
        std::size_t end = eol == npos ? text.size() : eol;
        string_view line = text.substr(pos, end - pos);
        if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
        out.push_back(line);
        pos = eol == npos ? text.size() : eol + 1;
    }
    return out;
}

// ---------------------------------------------------------------- codes and addresses

// The first RFC 3463 status code (class.subject.detail) in s; "" when none.
std::string find_status(string_view s) {
    for (std::size_t i = 0; i < s.size(); ++i) {
        if (s[i] != '2' && s[i] != '4' && s[i] != '5') continue;
        if (i > 0 && (is_digit(s[i - 1]) || s[i - 1] == '.')) continue;
        std::size_t j = i + 1;
        if (j >= s.size() || s[j] != '.') continue;
        std::size_t k = ++j;
        while (k < s.size() && is_digit(s[k]) && k - j < 3) ++k;
        if (k == j || k >= s.size() || s[k] != '.') continue;
        std::size_t m = ++k;
        while (m < s.size() && is_digit(s[m]) && m - k < 3) ++m;
        if (m == k) continue;
        if (m < s.size() && (is_digit(s[m]) || (s[m] == '.' && m + 1 < s.size() && is_digit(s[m + 1])))) continue;
        return std::string(s.substr(i, m - i));
    }
    return {};
}

namespace {

// The first SMTP reply code (RFC 5321 §4.2) in s; 0 when none.
int find_smtp_code(string_view s) {
    for (std::size_t i = 0; i + 2 < s.size(); ++i) {
        if (s[i] != '2' && s[i] != '4' && s[i] != '5') continue;
        if (i > 0 && (is_alnum(s[i - 1]) || s[i - 1] == '.' || s[i - 1] == ':')) continue;
        if (s[i + 1] < '0' || s[i + 1] > '5' || !is_digit(s[i + 2])) continue;
        if (i + 3 < s.size() && s[i + 3] != ' ' && s[i + 3] != '-' && s[i + 3] != '\t') continue;
        return (s[i] - '0') * 100 + (s[i + 1] - '0') * 10 + (s[i + 2] - '0');
    }
    return 0;
}

} // namespace

// Permanent (true) or temporary (false) by the first status or reply code in s.
std::optional<bool> class_of(string_view s) {
    std::string st = find_status(s);
    if (!st.empty() && st[0] != '2') return st[0] == '5';
    int code = find_smtp_code(s);
    if (code >= 400 && code < 600) return code >= 500;
    return std::nullopt;
}

// A failure status: a code of class 4 or 5 in s, else "".
std::string failure_status(string_view s) {
    std::string st = find_status(s);
    return !st.empty() && st[0] != '2' ? st : std::string();
}

// The normal form of an address written alone (angle brackets allowed); nothing when it is not one.
std::optional<std::string> normal_address(string_view raw) {
    raw = trim(raw);
    if (raw.size() >= 2 && raw.front() == '<' && raw.back() == '>') raw = trim(raw.substr(1, raw.size() - 2));
    if (raw.empty() || raw.size() > 2 * limits::address_length) return std::nullopt;
    auto a = parse_addr_spec(raw);
    if (!a || a->empty()) return std::nullopt;
    std::string n = normalize_address(*a);
    if (n.size() > limits::address_length || has_control(n)) return std::nullopt;
    return n;
}

namespace {

bool local_char(char ch) {
    auto c = static_cast<unsigned char>(ch);
    if (c >= 0x80 || is_alnum(ch)) return true;
    return string_view("!#$%&'*+-/=?^_`{|}~.").find(ch) != npos;
}
bool domain_char(char ch) {
    auto c = static_cast<unsigned char>(ch);
    return c >= 0x80 || is_alnum(ch) || ch == '-' || ch == '.' || ch == '_';
}

} // namespace

// The first address in running text, normalised; *begin and *end say where it was.
std::optional<std::string> find_address(string_view s, std::size_t* begin, std::size_t* end) {
    for (std::size_t at = s.find('@'); at != npos; at = s.find('@', at + 1)) {
        std::size_t b = at;
        while (b > 0 && local_char(s[b - 1]) && at - b < limits::local_part_length) --b;
        std::size_t e = at + 1;
        while (e < s.size() && domain_char(s[e]) && e - at <= limits::domain_length) ++e;
        while (b < at && (s[b] == '.' || s[b] == '\'')) ++b;
        while (e > at + 1 && (s[e - 1] == '.' || s[e - 1] == '-')) --e;
        if (b == at || e <= at + 1) continue;
        if (s.substr(at + 1, e - at - 1).find('.') == npos) continue;  // a bare host is too weak a sign
        if (auto n = normal_address(s.substr(b, e - b))) {
            if (begin) *begin = b;
            if (end) *end = e;
            return n;
        }
    }
    return std::nullopt;
}

// "type; value" (RFC 3464 §2.1.2): the value, when the part before ';' is a type token.
string_view after_type(string_view v) {
    std::size_t semi = v.find(';');
    if (semi == npos) return trim(v);
    string_view type = trim(v.substr(0, semi));
    for (char c : type)
        if (!(is_alnum(c) || c == '-' || c == '_' || c == '.')) return trim(v);
    return trim(v.substr(semi + 1));
}

// A host name as a notice gives it: "dns; mx.example" or running text; "" when unusable.
std::string host_name(string_view v) {
    v = after_type(v);
    std::size_t e = 0;
    while (e < v.size() && (domain_char(v[e]) || v[e] == '[' || v[e] == ']' || v[e] == ':') &&
           static_cast<unsigned char>(v[e]) < 0x80)
        ++e;
    string_view h = v.substr(0, e);
    while (!h.empty() && (h.back() == '.' || h.back() == ':')) h.remove_suffix(1);
    if (h.empty() || h.size() > limits::domain_length) return {};
    return std::string(h);
}

// ---------------------------------------------------------------- collected result

void Collect::add(DsnRecipient rc) {
    rc.diagnostic = one_line(rc.diagnostic);
    if (!rc.address.empty()) {
        for (auto& old : r.recipients)
            if (old.address == rc.address) {
                if (old.diagnostic.empty()) old.diagnostic = rc.diagnostic;
                if (old.status.empty()) old.status = rc.status;
                return;
            }
    }
    if (r.recipients.size() < limits::dsn_recipients) r.recipients.push_back(std::move(rc));
}

DsnRecipient* Collect::find(string_view address) {
    for (auto& rc : r.recipients)
        if (rc.address == address) return &rc;
    return nullptr;
}

// Whether a failure is permanent: as the notice decided, when its wording
// does, else by the diagnostic's code, else permanent.
bool permanence(std::optional<bool> decided, string_view diag) {
    return decided ? *decided : class_of(diag).value_or(true);
}

DsnRecipient text_recipient(std::string address, string_view diag, std::optional<bool> decided) {
    DsnRecipient rc;
    rc.address = std::move(address);
    rc.diagnostic = one_line(diag);
    rc.status = failure_status(rc.diagnostic);
    rc.permanent = permanence(decided, rc.diagnostic);
    return rc;
}

} // namespace mail::dsn_detail
