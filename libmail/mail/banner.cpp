// The recruitment banner: see banner.hpp and mstamp(1).
//
// What each shape of message gets (the walk is in banner_walk.cpp):
// - text/plain (or no Content-Type): the banner as text after an empty line,
//   in the body's line ending and transfer encoding (quoted-printable and
//   base64 are decoded and encoded again as they stream through). A banner
//   with 8-bit octets goes in so only when the part is declared UTF-8 and
//   is not 7bit; otherwise the message is wrapped (below).
// - text/html: the banner as HTML (escaped, 7-bit) before the last </body>,
//   or at the end when there is none.
// - multipart/alternative: every text/plain and text/html alternative gets
//   its own form, nested multiparts (related) too.
// - multipart/mixed: when the first part is HTML or a multipart, as above
//   inside it; otherwise, or when nothing in it could take the banner, a
//   text/plain part is added before the closing delimiter. If the closing
//   delimiter never comes (broken MIME), the rest passes through unchanged.
// - everything else (other types, an unknown transfer encoding, a charset
//   that is not a superset of ASCII, a Content-Type that does not read as
//   type/subtype): the message is wrapped in a new multipart/mixed whose
//   first part is the original, Content-* fields and body byte for byte,
//   and whose second part is the banner as text/plain.
#include "libmail/mail/banner.hpp"

#include "libmail/mail/banner_internal.hpp"
#include "libmail/mail/message.hpp"
#include "libmail/base/codec.hpp"
#include "libmail/base/text.hpp"

#include <openssl/rand.h>

#include <optional>
#include <ostream>

namespace mail {

namespace banner_detail {

bool is_ascii(std::string_view s) {
    for (unsigned char c : s)
        if (c >= 0x80) return false;
    return true;
}

std::string text_lines(std::string_view banner, std::string_view eol) {
    std::string out;
    for (char c : banner) {
        if (c == '\r') continue;
        if (c == '\n') {
            out += eol;
        } else {
            out += c;
        }
    }
    while (!eol.empty() && out.size() >= eol.size() && out.compare(out.size() - eol.size(), eol.size(), eol) == 0)
        out.erase(out.size() - eol.size());
    return out;
}

namespace {

// The next code point of UTF-8 text at i (advanced); U+FFFD for a bad sequence.
std::uint32_t next_code_point(std::string_view s, std::size_t& i) {
    auto c = static_cast<unsigned char>(s[i++]);
    if (c < 0x80) return c;
    int n = c >= 0xf0 && c < 0xf5 ? 3 : c >= 0xe0 ? 2 : c >= 0xc2 && c < 0xe0 ? 1 : -1;
    if (n < 0 || (c >= 0xf5)) return 0xfffd;
    std::uint32_t cp = c & (0x3f >> n);
    for (int k = 0; k < n; ++k) {
        if (i >= s.size() || (static_cast<unsigned char>(s[i]) & 0xc0) != 0x80) return 0xfffd;
        cp = (cp << 6) | (static_cast<unsigned char>(s[i++]) & 0x3f);
    }
    if ((n == 2 && cp < 0x800) || (n == 3 && (cp < 0x10000 || cp > 0x10ffff)) || (cp >= 0xd800 && cp < 0xe000))
        return 0xfffd;
    return cp;
}

std::string escape_html(std::string_view s) {
    std::string out;
    for (std::size_t i = 0; i < s.size();) {
        std::uint32_t cp = next_code_point(s, i);
        switch (cp) {
        case '&': out += "&amp;"; break;
        case '<': out += "&lt;"; break;
        case '>': out += "&gt;"; break;
        case '"': out += "&quot;"; break;
        default:
            if (cp >= 0x80 || (cp < 0x20 && cp != '\t')) {
                char buf[16];
                std::snprintf(buf, sizeof buf, "&#x%X;", static_cast<unsigned>(cp < 0x20 ? 0xfffd : cp));
                out += buf;
            } else {
                out += static_cast<char>(cp);
            }
        }
    }
    return out;
}

// One banner line as HTML: http(s) addresses become links.
std::string html_line(std::string_view line) {
    std::string out;
    std::size_t i = 0;
    while (i < line.size()) {
        std::size_t a = std::min(line.find("https://", i), line.find("http://", i));
        if (a == std::string_view::npos) break;
        std::size_t e = a;
        while (e < line.size() && line[e] != ' ' && line[e] != '\t' && line[e] != '<' && line[e] != '>' &&
               line[e] != '"')
            ++e;
        while (e > a && (line[e - 1] == '.' || line[e - 1] == ',' || line[e - 1] == ')')) --e;
        std::string url = escape_html(line.substr(a, e - a));
        out += escape_html(line.substr(i, a - i)) + "<a href=\"" + url + "\">" + url + "</a>";
        i = e;
    }
    return out + escape_html(line.substr(i));
}

} // namespace

std::string html_block(std::string_view banner, std::string_view eol) {
    std::string text = text_lines(banner, "\n");
    std::string out = "<div class=\"mailstamp-banner\" style=\"margin-top:1em;border-top:1px solid #999;"
                      "padding-top:0.5em;font-size:small\">";
    std::size_t start = 0;
    bool first = true;
    while (start <= text.size()) {
        std::size_t nl = text.find('\n', start);
        std::string_view line = std::string_view(text).substr(start, nl == std::string::npos ? nl : nl - start);
        out += std::string(eol) + (first ? "" : "<br>") + html_line(line);
        first = false;
        if (nl == std::string::npos) break;
        start = nl + 1;
    }
    return out + std::string(eol) + "</div>";
}

std::string banner_part(std::string_view banner, std::string_view eol) {
    std::string e(eol);
    return "Content-Type: text/plain; charset=utf-8" + e + "Content-Transfer-Encoding: " +
           (is_ascii(banner) ? "7bit" : "8bit") + e + "Content-Disposition: inline" + e + e +
           text_lines(banner, eol) + e;
}

bool identity_cte(std::string_view cte) { return cte == "7bit" || cte == "8bit" || cte == "binary"; }

bool leaf_takes(const ContentType& type, std::string_view cte, std::string_view banner) {
    if (!identity_cte(cte) && cte != "quoted-printable" && cte != "base64") return false;
    std::string cs = lower(type.param("charset"));
    for (const char* wide : {"utf-16", "utf-32", "ucs-", "utf-7", "iso-2022", "hz-", "unicode"})
        if (cs.rfind(wide, 0) == 0) return false;
    if (type.is("text", "html")) return true;
    if (!type.is("text", "plain")) return false;
    return is_ascii(banner) || (cs == "utf-8" && cte != "7bit");
}

} // namespace banner_detail

namespace {

Result<std::string> new_boundary() {
    unsigned char r[12];
    if (RAND_bytes(r, sizeof r) != 1) return Error{ErrorKind::tempfail, "random source failed"};
    // "=_" cannot occur in base64 or quoted-printable text, so no encoded body line can match.
    return "=_mailstamp_" + hex_encode(std::string_view(reinterpret_cast<char*>(r), sizeof r));
}

Result<void> copy_rest(MessageReader& msg, std::ostream& out) {
    char buf[65536];
    for (;;) {
        auto n = msg.read_body(buf, sizeof buf);
        if (!n) return n.error();
        if (*n == 0) return {};
        out.write(buf, static_cast<std::streamsize>(*n));
    }
}

// Wraps the message in multipart/mixed: the original part, then the banner.
Result<void> wrap(MessageReader& msg, std::string_view banner, std::ostream& out) {
    auto b = new_boundary();
    if (!b) return b.error();
    const std::string& eol = msg.eol();
    std::vector<HeaderField> content;
    auto& fields = msg.fields();
    for (auto it = fields.begin(); it != fields.end();) {
        std::string_view n = it->name();
        if (istarts_with(n, "Content-")) {
            content.push_back(std::move(*it));
            it = fields.erase(it);
        } else {
            ++it;
        }
    }
    msg.remove("MIME-Version");
    msg.prepend("Content-Type", "multipart/mixed; boundary=\"" + *b + "\"");
    msg.prepend("MIME-Version", "1.0");
    out << "This is a message in MIME format." << eol << eol << "--" << *b << eol;
    for (const auto& f : content) out << f.raw;
    out << eol;
    if (auto r = copy_rest(msg, out); !r) return r;
    out << eol << "--" << *b << eol << banner_detail::banner_part(banner, eol) << "--" << *b << "--" << eol;
    return {};
}

} // namespace

namespace {
// The transfer encoding as written, lower case; "7bit" when none. A value holding a bare CR (which value()
// drops, joining what it split: "bas<CR>e64") names no encoding we know, and what we do not know is left alone.
std::string transfer_encoding(const MessageReader& msg) {
    for (const auto& f : msg.fields()) {
        if (!f.is("Content-Transfer-Encoding")) continue;
        const std::string& r = f.raw;
        for (std::size_t i = 0; i < r.size(); ++i)
            if (r[i] == '\r' && (i + 1 >= r.size() || r[i + 1] != '\n')) return "x-unknown";
        return lower(f.value());
    }
    return "7bit";
}
} // namespace

Result<void> append_banner(MessageReader& msg, std::string_view banner, std::ostream& body_out) {
    using namespace banner_detail;
    auto field = msg.get("Content-Type");
    // An unreadable Content-Type is not guessed at: the message is wrapped, the banner a part of its own.
    std::optional<ContentType> read = field ? read_content_type(*field) : ContentType{};
    if (!read) return wrap(msg, banner, body_out);
    const ContentType& type = *read;
    std::string cte = transfer_encoding(msg);
    bool in_place = leaf_takes(type, cte, banner);
    if (type.type == "multipart" && identity_cte(cte)) {
        std::string boundary = type.param("boundary");
        in_place = (type.subtype == "mixed" || type.subtype == "alternative" || type.subtype == "related") &&
                   !boundary.empty() && boundary.size() <= limits::mime_boundary;
    }
    if (!in_place) return wrap(msg, banner, body_out);
    auto r = edit_body(msg, type, cte, banner, body_out);
    if (!r) return r.error();
    return {};
}

} // namespace mail
