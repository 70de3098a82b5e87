// Non-delivery notices: see dsn.hpp.
#include "libmail/mail/dsn.hpp"

#include "libmail/mail/address.hpp"
#include "libmail/mail/mime.hpp"
#include "libmail/base/codec.hpp"
#include "libmail/base/text.hpp"

#include <algorithm>
#include <exception>
#include <istream>
#include <optional>
#include <utility>

namespace mail {

namespace {

using std::string_view;
constexpr std::size_t npos = string_view::npos;

// ---------------------------------------------------------------- text helpers

bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_alnum(char c) { return is_digit(c) || (lower(c) >= 'a' && lower(c) <= 'z'); }

// Case-insensitive find.
std::size_t ifind(string_view hay, string_view needle, std::size_t from = 0) {
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
std::string one_line(string_view s, std::size_t max = limits::dsn_diagnostic) {
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

// ---------------------------------------------------------------- MIME

// What the walk over a notice's parts collects.
struct Parts {
    std::vector<std::string> texts;    ///< decoded text/plain parts
    std::vector<std::string> htmls;    ///< decoded text/html parts
    std::vector<std::string> reports;  ///< decoded delivery-status parts
    std::optional<std::string> returned;  ///< the returned message or its header
    bool report_type_dsn = false;      ///< a multipart/report; report-type=delivery-status was seen
};

// Collects the parts of a notice that say something: text, HTML, reports and the returned message.
void collect_parts(const MimeHeader& top, Parts& out) {
    MimeBounds bounds;
    bounds.parts = limits::dsn_parts;
    bounds.depth = limits::dsn_depth;
    bounds.fields = limits::dsn_fields;
    walk_mime(
        top,
        [&out](const MimePart& p) {
            const ContentType& ct = p.type;
            if (ct.type == "multipart") {
                std::string rt = lower(ct.param("report-type"));
                if (ct.subtype == "report" && (rt == "delivery-status" || rt == "global-delivery-status"))
                    out.report_type_dsn = true;
            } else if (ct.type == "message" &&
                       (ct.subtype == "delivery-status" || ct.subtype == "global-delivery-status")) {
                out.reports.push_back(decode_body(p.body, p.header));
            } else if ((ct.type == "message" &&
                        (ct.subtype == "rfc822" || ct.subtype == "global" || ct.subtype == "global-headers")) ||
                       ct.is("text", "rfc822-headers")) {
                if (!out.returned) out.returned = decode_body(p.body, p.header);
            } else if (ct.is("text", "html")) {
                out.htmls.push_back(decode_body(p.body, p.header));
            } else if (ct.type == "text") {
                out.texts.push_back(decode_body(p.body, p.header));
            }
        },
        bounds);
}

// Text of an HTML part: tags dropped, block ends as line ends, a few entities.
std::string html_text(string_view html) {
    std::string out;
    for (std::size_t i = 0; i < html.size(); ++i) {
        char c = html[i];
        if (c == '<') {
            std::size_t e = html.find('>', i);
            if (e == npos) break;
            string_view tag = html.substr(i + 1, e - i - 1);
            if (!tag.empty() && tag[0] == '/') tag.remove_prefix(1);
            for (string_view t : {"br", "p", "div", "tr", "li", "h1", "h2", "h3", "table"})
                if (istarts_with(tag, t) && (tag.size() == t.size() || !is_alnum(tag[t.size()]))) {
                    out += '\n';
                    break;
                }
            i = e;
        } else if (c == '&') {
            static const std::pair<string_view, char> entities[] = {
                {"&amp;", '&'}, {"&lt;", '<'}, {"&gt;", '>'}, {"&quot;", '"'}, {"&#39;", '\''},
                {"&nbsp;", ' '}, {"&#64;", '@'}, {"&#x40;", '@'}};
            bool done = false;
            for (const auto& [name, ch] : entities)
                if (istarts_with(html.substr(i), name)) {
                    out += ch;
                    i += name.size() - 1;
                    done = true;
                    break;
                }
            if (!done) out += c;
        } else if (c != '\r') {
            out += c == '\n' ? ' ' : c;
        }
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

bool local_char(char ch) {
    auto c = static_cast<unsigned char>(ch);
    if (c >= 0x80 || is_alnum(ch)) return true;
    return string_view("!#$%&'*+-/=?^_`{|}~.").find(ch) != npos;
}
bool domain_char(char ch) {
    auto c = static_cast<unsigned char>(ch);
    return c >= 0x80 || is_alnum(ch) || ch == '-' || ch == '.' || ch == '_';
}

// The first address in running text, normalised; *begin and *end say where it was.
std::optional<std::string> find_address(string_view s, std::size_t* begin = nullptr, std::size_t* end = nullptr) {
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

// RFC 6533 §3 embedded-unicode-char: \x{HHHH} to UTF-8.
std::string decode_unicode_escapes(string_view s) {
    std::string out;
    for (std::size_t i = 0; i < s.size(); ++i) {
        if (s[i] == '\\' && i + 3 < s.size() && s[i + 1] == 'x' && s[i + 2] == '{') {
            std::size_t e = s.find('}', i + 3);
            if (e != npos && e - i - 3 >= 1 && e - i - 3 <= 6) {
                unsigned long cp = 0;
                bool ok = true;
                for (std::size_t k = i + 3; k < e; ++k) {
                    int v = hex_value(s[k]);
                    if (v < 0) ok = false;
                    else cp = cp * 16 + static_cast<unsigned>(v);
                }
                if (ok && cp >= 0x20 && cp <= 0x10ffff && !(cp >= 0xd800 && cp <= 0xdfff) && cp != 0x7f) {
                    if (cp < 0x80) {
                        out += static_cast<char>(cp);
                    } else if (cp < 0x800) {
                        out += static_cast<char>(0xc0 | (cp >> 6));
                        out += static_cast<char>(0x80 | (cp & 0x3f));
                    } else if (cp < 0x10000) {
                        out += static_cast<char>(0xe0 | (cp >> 12));
                        out += static_cast<char>(0x80 | ((cp >> 6) & 0x3f));
                        out += static_cast<char>(0x80 | (cp & 0x3f));
                    } else {
                        out += static_cast<char>(0xf0 | (cp >> 18));
                        out += static_cast<char>(0x80 | ((cp >> 12) & 0x3f));
                        out += static_cast<char>(0x80 | ((cp >> 6) & 0x3f));
                        out += static_cast<char>(0x80 | (cp & 0x3f));
                    }
                    i = e;
                    continue;
                }
            }
        }
        out += s[i];
    }
    return out;
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

// A Message-ID as written in a field: the first <...>, or a bare id put in brackets.
std::string message_id_of(string_view v) {
    v = trim(v);
    std::size_t lt = v.find('<');
    string_view id;
    if (lt != npos) {
        std::size_t gt = v.find('>', lt);
        if (gt == npos) return {};
        id = trim(v.substr(lt + 1, gt - lt - 1));
    } else {
        id = v;
    }
    if (id.empty() || id.size() > 996 || id.find('@') == npos) return {};
    for (char c : id)
        if (static_cast<unsigned char>(c) <= ' ' || c == 0x7f || c == '<' || c == '>') return {};
    return "<" + std::string(id) + ">";
}

// ---------------------------------------------------------------- collected result

struct Collect {
    DsnReport r;
    void add(DsnRecipient rc) {
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
    DsnRecipient* find(string_view address) {
        for (auto& rc : r.recipients)
            if (rc.address == address) return &rc;
        return nullptr;
    }
};

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

// ---------------------------------------------------------------- RFC 3464 reports

struct ReportResult {
    bool failures = false;  ///< a failed or delayed recipient was seen
    bool successes = false; ///< a delivered, relayed or expanded one was seen
    std::string sender;     ///< X-Postfix-Sender or similar envelope sender
};

struct RcptGroup {
    std::string final_rcpt, original_rcpt, action, status, diagnostic;
    bool any = false;
};

void finish_group(RcptGroup& g, Collect& c, ReportResult& rr) {
    if (!g.any) return;
    std::string action = lower(trim(g.action));
    std::string status = failure_status(trim(g.status).substr(0, 32));
    std::string st_any = find_status(trim(g.status).substr(0, 32));
    bool failed = action.rfind("fail", 0) == 0;
    bool delayed = action.rfind("delay", 0) == 0;
    bool success = action.rfind("deliver", 0) == 0 || action.rfind("relay", 0) == 0 || action.rfind("expand", 0) == 0;
    if (action.empty() || (!failed && !delayed && !success)) {
        if (!status.empty()) {
            failed = status[0] == '5';
            delayed = status[0] == '4';
        } else if (!st_any.empty() && st_any[0] == '2') success = true;
    }
    if (success && !failed && !delayed) {
        rr.successes = true;
        g = RcptGroup{};
        return;
    }
    if (!failed && !delayed) {
        g = RcptGroup{};
        return;
    }
    rr.failures = true;
    DsnRecipient rc;
    std::string fin = decode_unicode_escapes(after_type(g.final_rcpt));
    std::string orig = decode_unicode_escapes(after_type(g.original_rcpt));
    if (auto n = normal_address(fin)) rc.address = *n;
    else if (auto o = normal_address(orig)) rc.address = *o;
    else {
        std::string raw = one_line(!fin.empty() ? fin : orig, limits::address_length + 1);
        if (raw.size() <= limits::address_length && raw.find(' ') == npos) rc.address = raw;
    }
    rc.diagnostic = std::string(after_type(g.diagnostic));
    rc.status = !status.empty() ? status : failure_status(rc.diagnostic);
    rc.permanent = failed;
    c.add(std::move(rc));
    g = RcptGroup{};
}

void parse_report(string_view text, Collect& c, ReportResult& rr) {
    RcptGroup g;
    string_view rest = text;
    std::size_t groups = 0;
    while (!rest.empty() && groups++ < limits::dsn_recipients * 2) {
        while (!rest.empty() && (rest.front() == '\n' || rest.front() == '\r' || rest.front() == ' ' ||
                                 rest.front() == '\t')) {
            // Blank (or whitespace-only) lines between groups.
            std::size_t eol = rest.find('\n');
            string_view line = rest.substr(0, eol == npos ? rest.size() : eol);
            if (!trim(line).empty()) break;
            rest.remove_prefix(eol == npos ? rest.size() : eol + 1);
        }
        if (rest.empty()) break;
        MimeHeader h = parse_mime_header(rest, limits::dsn_fields);
        if (h.fields.empty()) {  // not a field: skip the line
            std::size_t eol = rest.find('\n');
            rest.remove_prefix(eol == npos ? rest.size() : eol + 1);
            continue;
        }
        rest = h.rest;
        for (const auto& [name, value] : h.fields) {
            if (name == "reporting-mta") {
                if (c.r.reporting_mta.empty()) c.r.reporting_mta = host_name(value);
            } else if (name == "x-postfix-sender") {
                if (rr.sender.empty())
                    if (auto n = normal_address(after_type(value))) rr.sender = *n;
            } else if (name == "final-recipient") {
                if (!g.final_rcpt.empty()) finish_group(g, c, rr);
                g.final_rcpt = value;
                g.any = true;
            } else if (name == "original-recipient") {
                if (!g.original_rcpt.empty()) finish_group(g, c, rr);
                g.original_rcpt = value;
                g.any = true;
            } else if (name == "action") {
                if (!g.action.empty()) finish_group(g, c, rr);
                g.action = value;
                g.any = true;
            } else if (name == "status") {
                g.status = value;
                g.any = true;
            } else if (name == "diagnostic-code") {
                g.diagnostic = value;
            }
        }
        finish_group(g, c, rr);
    }
    finish_group(g, c, rr);
}

// A diagnostic for address from the notification text: "<addr>: why..." with
// its indented continuation lines, or the lines indented under a line that is
// just the address (Exim).
std::string diagnostic_from_text(const std::vector<string_view>& lines, string_view address) {
    for (std::size_t i = 0; i < lines.size(); ++i) {
        std::size_t at = ifind(lines[i], address);
        if (at == npos) continue;
        string_view after = lines[i].substr(at + address.size());
        if (!after.empty() && after[0] == '>') after.remove_prefix(1);
        std::string diag;
        std::size_t base = indent_of(lines[i]);
        if (!after.empty() && after[0] == ':') {
            diag = std::string(trim(after.substr(1)));
            for (std::size_t j = i + 1; j < lines.size() && indent_of(lines[j]) > base && !trim(lines[j]).empty(); ++j)
                diag.append(" ").append(trim(lines[j]));
        } else if (trim(after).empty() && trim(lines[i]).size() <= address.size() + 2) {
            for (std::size_t j = i + 1; j < lines.size() && indent_of(lines[j]) > base && !trim(lines[j]).empty(); ++j)
                diag.append(" ").append(trim(lines[j]));
        }
        if (!trim(diag).empty()) return one_line(diag);
    }
    return {};
}

// ---------------------------------------------------------------- text forms

// Markers before the copy of the returned message in text notices.
bool is_returned_marker(string_view line) {
    string_view t = trim(line);
    if (t.size() < 8 || t.size() > 120) return false;
    static const string_view exact[] = {
        "--- Below this line is a copy of the message.",
        "Below is a copy of the original message:",
        "Original message headers:",
        "------ This is a copy of the message, including all the headers. ------",
        "------ This is a copy of the message's headers. ------",
    };
    for (string_view m : exact)
        if (istarts_with(t, m)) return true;
    if (t.substr(0, 3) != "---") return false;
    return has(t, "original message") || has(t, "unsent message") || has(t, "copy of the message") ||
           has(t, "message header") || has(t, "returned message") || has(t, "rfc822") ||
           has(t, "message follows");
}

// The family of a text notice by its wording; "" when none matches.
std::string text_family(string_view t, const MimeHeader& top) {
    if (has(t, "This is the qmail-send program at") || has(t, "I'm afraid I wasn't able to deliver your message"))
        return "qmail";
    if (has(t, "unable to deliver your message to the following address")) return "yahoo";
    if (top.get("x-failed-recipients") || has(t, "This message was created automatically by mail delivery software"))
        return "exim";
    if (has(t, "This is the mail system at host") || has(t, "This is the Postfix program at host"))
        return "postfix-text";
    if (has(t, "----- The following addresses had") || has(t, "----- Transcript of session follows -----"))
        return "sendmail-text";
    if (has(t, "Delivery has failed to these recipients or groups") ||
        has(t, "Delivery has been delayed to these recipients or groups") ||
        has(t, "Delivery is delayed to these recipients or groups") ||
        has(t, "Diagnostic information for administrators") ||
        has(t, "did not reach some or all of the intended recipients") ||
        has(t, "The following recipient(s) cannot be reached") || has(t, "Remote Server returned '"))
        return "exchange";
    if (has(t, "wasn't delivered to") || has(t, "wasn\u2019t delivered to") ||
        has(t, "Delivery to the following recipient failed permanently") ||
        has(t, "Delivery to the following recipient has been delayed") ||
        has(t, "There was a temporary problem delivering your message"))
        return "gmail";
    return {};
}

// What the wording of a text notice decides for all it lists: a delay
// (false), a final failure even where a reply code is 4xx, because the mail
// system gave up (true), or nothing.
std::optional<bool> wording_decides(string_view subject, string_view t) {
    for (string_view w : {"delay", "warning", "still being retried", "delivery incomplete"})
        if (has(subject, w)) return false;
    for (string_view w : {"THIS IS A WARNING", "not yet been delivered", "has been delayed", "is delayed to these",
                          "hasn't been delivered yet", "will be retried",
                          "will retry", "still being retried", "will keep trying", "Delivery attempts will continue",
                          "temporary problem delivering", "Delivery incomplete", "is delayed for more than",
                          "delivery status notification only", "transient non-fatal errors"})
        if (has(t, w)) return false;
    for (string_view w : {"permanent error", "failed permanently", "permanent fatal errors", "I've given up",
                          "I'm not going to try again", "could not be delivered to one or more",
                          "Delivery has failed to these recipients", "did not reach some or all",
                          "unable to deliver your message"})
        if (has(t, w)) return true;
    return std::nullopt;
}

// Whoever sent the notice looks like a mail system, or its subject like a bounce.
bool bounce_envelope(const MimeHeader& top) {
    std::string rp = top.value("return-path");
    if (trim(rp) == "<>") return true;
    std::string from = lower(top.value("from"));
    for (string_view w : {"mailer-daemon", "mailer_daemon", "maildaemon", "mail-daemon", "postmaster", "mail delivery",
                          "mail administrator", "mailerdaemon"})
        if (from.find(w) != npos) return true;
    std::string subject = top.value("subject");
    for (string_view w : {"undeliver", "undelivered", "delivery status notification", "returned mail",
                          "mail delivery failed", "failure notice", "delivery failure", "delivery failed",
                          "delayed mail", "delivery delayed", "non-delivery", "nondeliverable", "could not be delivered",
                          "returned to sender", "delivery notification", "mail system error", "unzustellbar",
                          "non remis", "delivery has failed"})
        if (has(subject, w)) return true;
    return false;
}

bool is_header_like(string_view t) {
    for (string_view h : {"to:", "from:", "cc:", "bcc:", "reply-to:", "sender:", "return-path:", "received:",
                          "message-id:", "delivered-to:", "x-", "subject:", "references:", "in-reply-to:", "date:"})
        if (istarts_with(t, h)) return true;
    return false;
}

bool is_system_address(string_view a) {
    return istarts_with(a, "postmaster@") || istarts_with(a, "mailer-daemon@") || istarts_with(a, "mailer_daemon@");
}

// qmail's QSBMF, Yahoo's copy of it, and Postfix's wording: "<addr>:" starts
// a paragraph, and the lines after it (to a blank line) say why.
void parse_paragraphs(const std::vector<string_view>& lines, std::optional<bool> dflt, Collect& c) {
    for (std::size_t i = 0; i < lines.size(); ++i) {
        string_view t = trim(lines[i]);
        if (t.size() < 4 || t.front() != '<') continue;
        std::size_t gt = t.find('>');
        if (gt == npos) continue;
        auto addr = normal_address(t.substr(1, gt - 1));
        if (!addr) continue;
        string_view after = t.substr(gt + 1);
        if (istarts_with(after, " (expanded from")) {  // Postfix: "<addr> (expanded from <alias>): why"
            std::size_t e = after.find("):");
            if (e == npos) continue;
            after = after.substr(e + 1);
        }
        if (after.empty() || after[0] != ':') continue;
        std::string diag(trim(after.substr(1)));
        std::size_t j = i + 1;
        for (; j < lines.size(); ++j) {
            string_view u = trim(lines[j]);
            if (u.empty() || (indent_of(lines[j]) == 0 && u.front() == '<' && u.find('>') != npos)) break;
            if (diag.size() < 4 * limits::dsn_diagnostic) diag.append(" ").append(u);
        }
        c.add(text_recipient(*addr, diag, dflt));
        i = j - 1;
    }
}

// Exim: "  addr" (two spaces) names a failed address, deeper lines say why;
// X-Failed-Recipients lists them all.
void parse_exim(const std::vector<string_view>& lines, const MimeHeader& top, std::optional<bool> dflt, Collect& c) {
    std::optional<std::string> cur;
    std::string diag;
    auto flush = [&] {
        if (cur) c.add(text_recipient(*cur, diag, dflt));
        cur.reset();
        diag.clear();
    };
    for (string_view line : lines) {
        std::size_t ind = indent_of(line);
        string_view t = trim(line);
        if (t.empty()) {
            flush();
            continue;
        }
        if (ind >= 1 && ind <= 3) {
            string_view first = t.substr(0, std::min(t.find(' '), t.size()));
            if (auto a = normal_address(first)) {
                flush();
                cur = *a;
                continue;
            }
        }
        if (cur && ind >= 4 && diag.size() < 4 * limits::dsn_diagnostic) diag.append(" ").append(t);
    }
    flush();
    for (const auto& [name, value] : top.fields) {
        if (name != "x-failed-recipients") continue;
        std::size_t b = 0;
        while (b < value.size()) {
            std::size_t e = value.find(',', b);
            if (e == npos) e = value.size();
            if (auto a = normal_address(string_view(value).substr(b, e - b))) c.add(text_recipient(*a, "", dflt));
            b = e + 1;
        }
    }
}

// Sendmail: the address lists after "----- The following addresses had ...
// errors -----", their "(reason: ...)" lines, and the transcript's
// "addr... why" lines.
void parse_sendmail(const std::vector<string_view>& lines, std::optional<bool> dflt, Collect& c) {
    enum { none, perm, temp, transcript } mode = none;
    DsnRecipient* cur = nullptr;
    for (string_view line : lines) {
        string_view t = trim(line);
        if (has(t, "following addresses had permanent fatal errors")) { mode = perm; cur = nullptr; continue; }
        if (has(t, "following addresses had transient non-fatal errors")) { mode = temp; cur = nullptr; continue; }
        if (has(t, "Transcript of session follows")) { mode = transcript; cur = nullptr; continue; }
        if (t.substr(0, std::min<std::size_t>(3, t.size())) == "---") { mode = none; continue; }
        if (mode == perm || mode == temp) {
            if (t.empty()) { mode = none; continue; }
            if (istarts_with(t, "(reason:")) {
                string_view why = trim(t.substr(8));
                if (!why.empty() && why.back() == ')') why.remove_suffix(1);
                if (cur && cur->diagnostic.empty()) {  // the section already said how bad
                    cur->diagnostic = one_line(why);
                    cur->status = failure_status(cur->diagnostic);
                }
                continue;
            }
            if (t.front() == '(' || indent_of(line) > 0) continue;
            string_view first = t.substr(0, std::min(t.find(' '), t.size()));
            if (auto a = normal_address(first)) {
                c.add(text_recipient(*a, "", std::optional<bool>(mode == perm)));
                cur = c.find(*a);
            }
        } else if (mode == transcript) {
            std::size_t dots = t.find("... ");
            if (dots == npos || dots == 0) continue;
            if (istarts_with(t, "<<< ")) t.remove_prefix(4);  // the server's reply as the transcript quotes it
            dots = t.find("... ");
            if (dots == npos || dots == 0) continue;
            string_view who = t.substr(0, dots);
            std::size_t sp = who.find_last_of(' ');
            if (sp != npos) who = who.substr(sp + 1);
            auto a = normal_address(who);
            if (!a) continue;
            bool deferred = has(t, "Deferred");
            DsnRecipient* rc = c.find(*a);
            if (!rc) {
                c.add(text_recipient(*a, t, deferred ? std::optional<bool>(false) : dflt));
            } else if (rc->diagnostic.empty()) {
                rc->diagnostic = one_line(t);
                rc->status = failure_status(rc->diagnostic);
            }
        }
    }
}

// Exchange and Office 365: lines naming an address, followed by "Remote
// Server returned '...'", "#550 5.1.1 ... ##" or "<host #5.1.1 smtp;...>".
void parse_exchange(const std::vector<string_view>& lines, std::optional<bool> dflt, Collect& c) {
    DsnRecipient* cur = nullptr;
    bool technical = false;  // cur's diagnostic came from the server, not the prose
    auto set = [&](string_view diag) {
        if (!cur) return;
        cur->diagnostic = one_line(diag);
        cur->status = failure_status(cur->diagnostic);
        cur->permanent = permanence(dflt, cur->diagnostic);
        technical = true;
    };
    for (string_view line : lines) {
        string_view t = trim(line);
        if (t.empty()) continue;
        if (istarts_with(t, "Generating server:")) {
            if (c.r.reporting_mta.empty()) c.r.reporting_mta = host_name(t.substr(18));
            continue;
        }
        if (std::size_t p = ifind(t, " returned '"); p != npos) {  // "Remote Server returned '550 ...'"
            string_view why = t.substr(p + 11);
            std::size_t q = why.rfind('\'');
            if (q != npos && q > 0) why = why.substr(0, q);
            if (!technical) set(why);
            continue;
        }
        if (t.front() == '#' && t.size() > 3) {  // "#550 5.1.1 RESOLVER.ADR.RecipNotFound; not found ##"
            string_view why = t;
            while (!why.empty() && why.front() == '#') why.remove_prefix(1);
            while (!why.empty() && (why.back() == '#' || why.back() == ' ')) why.remove_suffix(1);
            if (class_of(why)) {
                set(why);
                continue;
            }
        }
        if (t.front() == '<' && t.back() == '>' && t.find(" #") != npos) {  // "<host #5.2.2 smtp;552 ...>"
            string_view code = t.substr(t.find(" #") + 2);
            code.remove_suffix(1);
            if (std::size_t smtp = ifind(code, "smtp;"); smtp != npos) {
                set(code.substr(smtp + 5));
            } else if (cur) {  // only a status: keep the prose as the diagnostic
                cur->status = failure_status(code);
                cur->permanent = permanence(dflt, code);
                if (cur->diagnostic.empty()) cur->diagnostic = one_line(code);
                technical = true;
            }
            continue;
        }
        if (is_header_like(t)) continue;
        std::size_t b = 0, e = 0;
        auto a = find_address(t, &b, &e);
        // An address line, not prose that happens to mention one.
        bool prose = t.size() - (e - b) > 50 || has(t, "contact") || has(t, "helpdesk") || has(t, "administrator") ||
                     has(t, "postmaster");
        if (a && !is_system_address(*a) && !prose) {
            if (DsnRecipient* old = c.find(*a)) {
                cur = old;
                technical = !old->diagnostic.empty() && !old->status.empty();
            } else {
                c.add(text_recipient(*a, "", dflt));
                cur = c.find(*a);
                technical = false;
            }
            continue;
        }
        if (cur && !technical && cur->diagnostic.empty() && !is_returned_marker(t) && t.size() > 10)
            cur->diagnostic = one_line(t);
    }
}

// Gmail: "wasn't delivered to ADDR because", "failed permanently:" or "has
// been delayed:" before the address, and the remote server's answer after
// "The response from the remote server was:".
void parse_gmail(const std::vector<string_view>& lines, std::optional<bool> dflt, Collect& c) {
    DsnRecipient* cur = nullptr;
    auto next_nonblank = [&](std::size_t i) -> std::size_t {
        for (std::size_t j = i + 1; j < lines.size(); ++j)
            if (!trim(lines[j]).empty()) return j;
        return lines.size();
    };
    auto add = [&](string_view where, std::optional<bool> perm) {
        if (auto a = find_address(where)) {
            c.add(text_recipient(*a, "", perm));
            cur = c.find(*a);
        }
    };
    for (std::size_t i = 0; i < lines.size(); ++i) {
        string_view t = trim(lines[i]);
        std::size_t p = ifind(t, "wasn't delivered to ");
        std::size_t p2 = ifind(t, "wasn\u2019t delivered to ");  // a typographic apostrophe
        if (p != npos || p2 != npos) {
            add(p != npos ? t.substr(p + 20) : t.substr(p2 + 22), dflt);
        } else if (std::size_t q = ifind(t, "problem delivering your message to "); q != npos) {
            add(t.substr(q + 35), std::optional<bool>(false));
        } else if (has(t, "recipient failed permanently:") || has(t, "recipient has been delayed:")) {
            std::size_t j = next_nonblank(i);
            if (j < lines.size()) add(lines[j], std::optional<bool>(!has(t, "delayed")));
        } else if (has(t, "response from the remote server was:") || has(t, "The response was:") ||
                   has(t, "The error that the other server returned was:") ||
                   has(t, "Technical details of permanent failure:") ||
                   has(t, "Technical details of temporary failure:")) {
            std::size_t j = next_nonblank(i);
            if (j < lines.size() && cur) {
                cur->diagnostic = one_line(trim(lines[j]));
                cur->status = failure_status(cur->diagnostic);
                if (!dflt)
                    if (auto k = class_of(cur->diagnostic)) cur->permanent = *k;
            }
        }
    }
}

// Anything else from a mail system: a line with an address and a failure
// code or phrase, or an address alone followed by one.
void parse_generic(const std::vector<string_view>& lines, const MimeHeader& top, std::optional<bool> dflt, Collect& c) {
    std::vector<std::string> own;
    for (const char* name : {"from", "to", "sender", "reply-to"})
        if (auto v = top.get(name))
            if (auto a = find_address(*v)) own.push_back(*a);
    auto failure = [](string_view t) {
        if (class_of(t)) return true;
        for (string_view w : {"user unknown", "unknown user", "no such user", "does not exist", "mailbox unavailable",
                              "mailbox is full", "quota exceeded", "address rejected", "not found", "undeliverable",
                              "could not be delivered", "unrouteable", "host unknown"})
            if (has(t, w)) return true;
        return false;
    };
    for (std::size_t i = 0; i < lines.size(); ++i) {
        string_view t = trim(lines[i]);
        if (t.empty() || is_header_like(t)) continue;
        auto a = find_address(t);
        if (!a || is_system_address(*a) || std::find(own.begin(), own.end(), *a) != own.end()) continue;
        if (failure(t)) {
            c.add(text_recipient(*a, t, dflt));
            continue;
        }
        for (std::size_t j = i + 1, seen = 0; j < lines.size() && seen < 2; ++j) {
            string_view u = trim(lines[j]);
            if (u.empty()) continue;
            ++seen;
            if (find_address(u)) break;
            if (failure(u)) {
                c.add(text_recipient(*a, u, dflt));
                break;
            }
        }
    }
}

// The host a text notice names itself by, after phrase; "" when absent.
std::string host_after(string_view t, string_view phrase) {
    std::size_t p = ifind(t, phrase);
    if (p == npos) return {};
    return host_name(trim(t.substr(p + phrase.size(), 300)));
}

// ---------------------------------------------------------------- the returned message

// A header block that plausibly belongs to a message.
bool plausible_header(const MimeHeader& h) {
    for (const auto& f : h.fields)
        if (f.first == "message-id" || f.first == "from" || f.first == "received" || f.first == "return-path" ||
            f.first == "subject" || f.first == "date" || f.first == "to")
            return true;
    return false;
}

void take_original(const MimeHeader& h, DsnReport& r, const std::string& envelope_sender) {
    if (r.original_message_id.empty())
        if (auto id = h.get("message-id")) r.original_message_id = message_id_of(*id);
    if (r.original_sender.empty()) {
        if (auto rp = h.get("return-path")) {
            auto a = parse_path(*rp);
            if (a && !a->empty()) {
                std::string n = normalize_address(*a);
                if (n.size() <= limits::address_length && !has_control(n)) r.original_sender = n;
            }
        }
    }
    if (r.original_sender.empty()) r.original_sender = envelope_sender;
    if (r.original_sender.empty()) {
        if (auto from = h.get("from")) {
            auto list = parse_address_list(*from);
            if (list && !list->empty()) {
                std::string n = normalize_address(list->front());
                if (n.size() <= limits::address_length && !has_control(n)) r.original_sender = n;
            }
        }
    }
}

// A "Message-ID:" line anywhere in text (headers quoted after some other
// prose), as a last resort.
std::string message_id_line(string_view text) {
    for (string_view line : lines_of(text.substr(0, 256 * 1024))) {
        string_view t = trim(line);
        if (istarts_with(t, "message-id:")) {
            std::string id = message_id_of(t.substr(11));
            if (!id.empty()) return id;
        }
    }
    return {};
}

DsnReport parse(string_view msg) {
    Collect c;
    DsnReport& r = c.r;

    string_view window = msg.substr(0, std::min(msg.size(), limits::dsn_scan_size));
    if (window.rfind("From ", 0) == 0) {  // an mbox From line
        std::size_t eol = window.find('\n');
        window.remove_prefix(eol == npos ? window.size() : eol + 1);
    }
    MimeHeader top = parse_mime_header(window, limits::dsn_fields);
    Parts parts;
    collect_parts(top, parts);
    const std::string subject = top.value("subject");

    // The notification text: the text parts (or, failing that, the HTML).
    std::string text;
    for (const auto& t : parts.texts) {
        if (text.size() >= limits::dsn_scan_size) break;
        text.append(t).append("\n");
    }
    if (trim(text).empty())
        for (const auto& h : parts.htmls) text.append(html_text(h)).append("\n");
    std::vector<string_view> all_lines = lines_of(text);
    // Cut at the copy of the returned message, if the text carries one.
    std::vector<string_view> lines;
    string_view copy;
    for (std::size_t i = 0; i < all_lines.size(); ++i) {
        if (is_returned_marker(all_lines[i])) {
            std::size_t off = static_cast<std::size_t>(all_lines[i].data() - text.data()) + all_lines[i].size();
            copy = string_view(text).substr(std::min(off, text.size()));
            break;
        }
        lines.push_back(all_lines[i]);
    }
    string_view notification = string_view(text).substr(
        0, copy.empty() ? text.size() : static_cast<std::size_t>(copy.data() - text.data()));

    // Machine-readable reports first.
    ReportResult rr;
    for (const auto& rep : parts.reports) parse_report(rep, c, rr);
    const std::optional<bool> wording = wording_decides(subject, notification);
    if (!r.recipients.empty()) {
        r.is_notice = true;
        r.format = "rfc3464";
        // Reports without Diagnostic-Code (Exim's local failures, OpenSMTPD): the text may say why.
        // Bounded: each look-up scans the whole text.
        std::size_t lookups = 0;
        for (auto& rc : r.recipients)
            if (rc.diagnostic.empty() && !rc.address.empty() && lookups++ < 100)
                rc.diagnostic = diagnostic_from_text(lines, rc.address);
    } else if (rr.successes && !rr.failures) {
        r.format = "rfc3464";  // a success notice: not a non-delivery notice
    } else {
        std::string family = text_family(notification, top);
        const bool envelope = bounce_envelope(top) || parts.report_type_dsn;
        if (family == "qmail") {
            parse_paragraphs(lines, wording, c);
            r.reporting_mta = host_after(notification, "qmail-send program at ");
        } else if (family == "yahoo") {
            parse_paragraphs(lines, wording, c);
        } else if (family == "exim") {
            parse_exim(lines, top, wording, c);
            r.reporting_mta = host_after(notification, "on the queue on ");
        } else if (family == "postfix-text") {
            parse_paragraphs(lines, wording, c);
            r.reporting_mta = host_after(notification, "program at host ");
            if (r.reporting_mta.empty()) r.reporting_mta = host_after(notification, "mail system at host ");
        } else if (family == "sendmail-text") {
            parse_sendmail(lines, wording, c);
        } else if (family == "exchange") {
            parse_exchange(lines, wording, c);
        } else if (family == "gmail") {
            parse_gmail(lines, wording, c);
        } else if (envelope) {
            parse_generic(lines, top, wording, c);
            if (!r.recipients.empty()) family = "generic";
        }
        if (!family.empty() && (envelope || !r.recipients.empty())) {
            r.is_notice = true;
            r.format = family;
        } else if (parts.report_type_dsn) {
            r.is_notice = true;  // a report whose machine-readable part is missing or unreadable
            r.format = "rfc3464";
        } else {
            r.recipients.clear();
            r.reporting_mta.clear();
        }
    }

    if (r.is_notice) {
        bool any_temp = false;
        for (const auto& rc : r.recipients) any_temp = any_temp || !rc.permanent;
        r.permanent = r.recipients.empty() ? wording.value_or(true) : !any_temp;
    }

    // The original message: the returned part, else a header block after the
    // text's marker, else a Message-ID line, else the notice's own references.
    if (r.is_notice || !parts.reports.empty()) {
        if (parts.returned) {
            MimeHeader h = parse_mime_header(*parts.returned, limits::dsn_fields);
            take_original(h, r, rr.sender);
        }
        if (r.original_message_id.empty() && !copy.empty()) {
            string_view rest = copy;
            while (!rest.empty() && is_trim_space(rest.front())) rest.remove_prefix(1);
            MimeHeader h = parse_mime_header(rest, limits::dsn_fields);
            if (plausible_header(h)) take_original(h, r, rr.sender);
        }
        if (r.original_message_id.empty() && parts.returned) r.original_message_id = message_id_line(*parts.returned);
        if (r.original_message_id.empty() && !copy.empty()) r.original_message_id = message_id_line(copy);
        if (r.original_message_id.empty() && r.is_notice) {
            if (auto irt = top.get("in-reply-to")) r.original_message_id = message_id_of(*irt);
        }
        if (r.original_message_id.empty() && r.is_notice) {
            if (auto refs = top.get("references")) {
                std::size_t lt = refs->rfind('<');
                if (lt != npos) r.original_message_id = message_id_of(string_view(*refs).substr(lt));
            }
        }
        if (r.original_sender.empty()) r.original_sender = rr.sender;
    }
    return r;
}

} // namespace

Result<DsnReport> parse_dsn(std::istream& in, std::size_t max_size) {
    std::string head(limits::dsn_scan_size, '\0');
    in.read(head.data(), static_cast<std::streamsize>(head.size()));
    head.resize(static_cast<std::size_t>(in.gcount()));
    std::size_t total = head.size();
    char skip[64 * 1024];
    while (in && total <= max_size) {
        in.read(skip, sizeof skip);
        total += static_cast<std::size_t>(in.gcount());
    }
    if (in.bad()) return Error{ErrorKind::tempfail, "reading the message failed"};
    if (total > max_size) return Error{ErrorKind::data, "message larger than " + std::to_string(max_size) + " octets"};
    return parse_dsn(head);
}

Result<DsnReport> parse_dsn(std::string_view message) {
    if (message.size() > limits::message_size)
        return Error{ErrorKind::data, "message larger than " + std::to_string(limits::message_size) + " octets"};
    try {
        return parse(message);
    } catch (const std::exception& e) {
        // Only allocation can fail here; a notice is never worth a crash.
        return Error{ErrorKind::software, std::string("reading the notice: ") + e.what()};
    }
}

} // namespace mail
