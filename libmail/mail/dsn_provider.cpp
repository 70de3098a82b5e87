// Provider notices, auto-replies and encoded Subjects: see dsn_provider.hpp.
#include "libmail/mail/dsn_provider.hpp"
#include "libmail/mail/dsn_text.hpp"

#include "libmail/base/codec.hpp"
#include "libmail/base/text.hpp"

namespace mail::dsn_detail {

namespace {
using std::string_view;
constexpr std::size_t npos = string_view::npos;

// The octets of one encoded word's text: B is base64, Q quoted-printable with '_' for a space.
std::string decode_word_text(char enc, string_view text) {
    if (enc == 'B' || enc == 'b') return base64_decode_lenient(text);
    std::string out;
    for (std::size_t i = 0; i < text.size(); ++i) {
        char c = text[i];
        if (c == '_') {
            out += ' ';
        } else if (c == '=' && i + 2 < text.size() && hex_value(text[i + 1]) >= 0 && hex_value(text[i + 2]) >= 0) {
            out += static_cast<char>(hex_value(text[i + 1]) * 16 + hex_value(text[i + 2]));
            i += 2;
        } else {
            out += c;
        }
    }
    return out;
}

bool is_latin(string_view charset) {
    std::string cs = lower(trim(charset));
    return cs == "iso-8859-1" || cs == "iso-8859-15" || cs == "windows-1252" || cs == "cp1252" || cs == "latin1" ||
           cs == "iso_8859-1";
}

// Octets in charset, as UTF-8 where the charset is one a table-free conversion knows; controls as spaces unless
// keep_lines (then CR, LF and HTAB stay).
void append_charset(std::string& out, string_view charset, string_view octets, bool keep_lines = false) {
    bool latin = is_latin(charset);
    for (char ch : octets) {
        auto u = static_cast<unsigned char>(ch);
        if (keep_lines && (ch == '\n' || ch == '\r' || ch == '\t')) {
            out += ch;
        } else if (u < 0x20 || u == 0x7f) {
            out += ' ';
        } else if (latin && u >= 0x80) {
            if (u < 0xa0) {
                out += '?';  // windows-1252's C1 range would need a table
            } else {
                out += static_cast<char>(0xc0 | (u >> 6));
                out += static_cast<char>(0x80 | (u & 0x3f));
            }
        } else {
            out += ch;
        }
    }
}

// "=?charset?enc?text?=" at s[0]: the word's length and its parts; 0 when s does not start with one.
// Only a bounded window is searched, so that a field full of word starts costs linear time.
std::size_t encoded_word(string_view s, string_view& charset, char& enc, string_view& text) {
    if (s.size() < 8 || s[0] != '=' || s[1] != '?') return 0;
    s = s.substr(0, 64 + 3 + 1000 + 2);
    std::size_t q1 = s.find('?', 2);
    if (q1 == npos || q1 == 2 || q1 > 64 || q1 + 3 >= s.size() || s[q1 + 2] != '?') return 0;
    enc = s[q1 + 1];
    if (enc != 'B' && enc != 'b' && enc != 'Q' && enc != 'q') return 0;
    std::size_t end = s.find("?=", q1 + 3);
    if (end == npos || end - (q1 + 3) > 1000) return 0;
    text = s.substr(q1 + 3, end - (q1 + 3));
    if (text.find(' ') != npos) return 0;
    charset = s.substr(2, q1 - 2);
    if (std::size_t star = charset.find('*'); star != npos) charset = charset.substr(0, star);  // RFC 2231 language
    return end + 2;
}

bool from_mail_system(const MimeHeader& top) {
    std::string from = lower(top.value("from"));
    for (string_view w : {"mailer-daemon", "mailer_daemon", "postmaster", "mail delivery", "microsoftexchange"})
        if (from.find(w) != npos) return true;
    return false;
}

bool is_system_address(string_view a) {
    return istarts_with(a, "postmaster@") || istarts_with(a, "mailer-daemon@") || istarts_with(a, "mailer_daemon@");
}

// The lines after a recipient's line up to a blank line or the next recipient, as one diagnostic; "host:"
// lines and a bare "Reason:" label left out.
std::string following_lines(const std::vector<string_view>& lines, std::size_t i, bool (*starts)(string_view)) {
    std::string diag;
    for (std::size_t j = i + 1; j < lines.size(); ++j) {
        string_view u = trim(lines[j]);
        if (u.empty() || starts(lines[j]) || is_returned_marker(u)) break;
        if (istarts_with(u, "host:") || iequals(u, "Reason:")) continue;
        if (diag.size() < 4 * limits::dsn_diagnostic) diag.append(" ").append(u);
    }
    return diag;
}

// GMX and web.de: "\"addr\":" alone on a line, then the SMTP stage, "host: ...", and the server's reply (or
// "Reason:" and a line of reason).
std::optional<std::string> gmx_address(string_view line) {
    if (line.size() < 6 || line.front() != '"' || line.substr(line.size() - 2) != "\":") return std::nullopt;
    return normal_address(line.substr(1, line.size() - 3));
}

bool gmx_starts(string_view line) { return gmx_address(trim(line)).has_value() && indent_of(line) == 0; }

bool read_gmx(const std::vector<string_view>& lines, std::optional<bool> wording, Collect& c) {
    bool any = false;
    for (std::size_t i = 0; i < lines.size(); ++i) {
        if (indent_of(lines[i]) != 0) continue;
        auto a = gmx_address(trim(lines[i]));
        if (!a || is_system_address(*a)) continue;
        c.add(text_recipient(*a, following_lines(lines, i, gmx_starts), wording));
        any = true;
    }
    return any;
}

// Zoho: after "The following address(es) failed:", "addr reason..." from the first column; or
// "[Status: Error, Address: <addr>, ResponseCode 421, , Host not reachable.]" anywhere.
bool zoho_starts(string_view line) {
    if (indent_of(line) != 0) return false;
    string_view t = trim(line);
    std::size_t sp = t.find_first_of(" \t");
    return sp != npos && normal_address(t.substr(0, sp)).has_value();
}

bool read_zoho(const std::vector<string_view>& lines, std::optional<bool> wording, Collect& c) {
    bool any = false, listing = false;
    for (std::size_t i = 0; i < lines.size(); ++i) {
        string_view t = trim(lines[i]);
        if (istarts_with(t, "[Status:")) {
            std::size_t at = ifind(t, "Address:");
            if (at == npos) continue;
            string_view rest = trim(t.substr(at + 8));
            std::size_t comma = rest.find(',');
            if (auto a = normal_address(rest.substr(0, comma == npos ? rest.size() : comma))) {
                string_view why = comma == npos ? string_view() : rest.substr(comma + 1);
                if (!why.empty() && why.back() == ']') why.remove_suffix(1);
                c.add(text_recipient(*a, trim(why), wording));
                any = true;
            }
            continue;
        }
        if (has(t, "address(es) failed:") || has(t, "following address failed:") ||
            has(t, "following addresses failed:")) {
            listing = true;
            continue;
        }
        if (!listing || !zoho_starts(lines[i])) continue;
        std::size_t sp = t.find_first_of(" \t");
        auto a = normal_address(t.substr(0, sp));
        if (!a || is_system_address(*a)) continue;
        std::string diag(trim(t.substr(sp)));
        diag += following_lines(lines, i, zoho_starts);
        c.add(text_recipient(*a, diag, wording));
        any = true;
    }
    return any;
}

// Amazon SES: "The following message to <addr> was undeliverable." and the line after "The reason for the
// problem:"; or the addresses listed under "An error occurred while trying to deliver the mail to the
// following recipients:".
bool read_ses(const std::vector<string_view>& lines, std::optional<bool> wording, Collect& c) {
    bool any = false, listing = false;
    DsnRecipient* cur = nullptr;
    for (std::size_t i = 0; i < lines.size(); ++i) {
        string_view t = trim(lines[i]);
        if (std::size_t p = ifind(t, "The following message to <"); p != npos) {
            string_view rest = t.substr(p + 26);
            std::size_t gt = rest.find('>');
            if (gt == npos) continue;
            if (auto a = normal_address(rest.substr(0, gt))) {
                c.add(text_recipient(*a, "", wording));
                cur = c.find(*a);
                any = true;
            }
        } else if (has(t, "The reason for the problem:")) {
            std::size_t j = i + 1;
            while (j < lines.size() && trim(lines[j]).empty()) ++j;
            if (cur && j < lines.size()) {
                cur->diagnostic = one_line(trim(lines[j]));
                cur->status = failure_status(cur->diagnostic);
                cur->permanent = permanence(wording, cur->diagnostic);
            }
        } else if (has(t, "while trying to deliver the mail to the following recipients")) {
            listing = true;
        } else if (listing) {
            if (t.empty()) {
                if (any) listing = false;
                continue;
            }
            if (auto a = normal_address(t)) {
                c.add(text_recipient(*a, "", wording));
                any = true;
            } else {
                listing = false;
            }
        }
    }
    return any;
}

} // namespace

std::string text_as_utf8(string_view charset, std::string text) {
    if (!is_latin(charset)) return text;
    std::string out;
    out.reserve(text.size() + text.size() / 8);
    append_charset(out, charset, text, true);
    return out;
}

std::string decoded_field(string_view value) {
    std::string out;
    const std::size_t max = 4 * limits::dsn_diagnostic;
    bool last_word = false;  // white space between two encoded words is dropped (RFC 2047 §6.2)
    std::size_t pending = 0;
    for (std::size_t i = 0; i < value.size() && out.size() < max;) {
        string_view charset, text;
        char enc = 0;
        if (std::size_t n = encoded_word(value.substr(i), charset, enc, text)) {
            if (!last_word) out.append(value.substr(i - pending, pending));
            append_charset(out, charset, decode_word_text(enc, text));
            i += n;
            last_word = true;
            pending = 0;
            continue;
        }
        char ch = value[i];
        if (ch == ' ' || ch == '\t') {
            ++pending;
            ++i;
            continue;
        }
        out.append(value.substr(i - pending, pending));
        pending = 0;
        last_word = false;
        out += static_cast<unsigned char>(ch) < 0x20 || ch == 0x7f ? ' ' : ch;
        ++i;
    }
    if (out.size() > max) out.resize(max);
    return out;
}

bool is_auto_reply(const MimeHeader& top) {
    std::string subject(trim(decoded_field(top.value("subject"))));
    static const string_view prefixes[] = {
        "automatic reply:", "automatische antwort:", "réponse automatique", "respuesta automática",
        "risposta automatica", "automatisch antwoord", "resposta automática", "auto reply", "auto-reply",
        "autoreply", "auto:", "auto response", "autoresponse", "out of office", "out of the office",
        "abwesenheitsnotiz", "absence", "vacation", "away:"};
    for (string_view p : prefixes)
        if (istarts_with(subject, p)) return true;
    if (top.get("x-ms-exchange-message-is-ndr") || from_mail_system(top)) return false;
    std::string as = lower(trim(top.value("auto-submitted")));
    if (as.rfind("auto-replied", 0) == 0) return true;
    for (const char* name : {"x-autoreply", "x-autorespond", "x-autoresponder", "x-autoreply-from"})
        if (top.get(name)) return true;
    return lower(trim(top.value("precedence"))) == "auto_reply";
}

std::string read_provider_notice(const std::vector<string_view>& lines, string_view notification,
                                 const MimeHeader& top, std::optional<bool> wording, Collect& c) {
    (void)top;
    if (has(notification, "created automatically by mail delivery")) {
        if (read_gmx(lines, wording, c)) return "gmx";
        if (read_zoho(lines, wording, c)) return "zoho";
    }
    if ((has(notification, "The following message to <") && has(notification, "was undeliverable")) ||
        has(notification, "while trying to deliver the mail to the following recipients"))
        if (read_ses(lines, wording, c)) return "ses";
    return {};
}

std::string provider_family(std::string family, string_view notification) {
    // As written: "mail.ru" in any case is also in gmail.ru or hotmail.ru addresses.
    if (family == "exim" && notification.find("Mail.Ru") != npos) return "mailru";
    return family;
}

} // namespace mail::dsn_detail
