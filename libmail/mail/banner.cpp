// The recruitment banner: see banner.hpp and mstamp(1).
//
// What each shape of message gets:
// - text/plain (or no Content-Type) in 7bit, 8bit or binary: the banner is
//   appended as text after an empty line, in the body's line ending. A
//   banner with 8-bit octets is appended so only when the part is declared
//   UTF-8 and 8bit/binary; otherwise the message is wrapped (below).
// - multipart/mixed: a text/plain part is added before the closing
//   delimiter. If the closing delimiter never comes (broken MIME), the body
//   passes through unchanged and no banner is added.
// - everything else (text/html, quoted-printable or base64 parts,
//   multipart/alternative, other types, a Content-Type that does not read
//   as type/subtype): the message is wrapped in a new multipart/mixed whose
//   first part is the original, Content-* fields and body byte for byte,
//   and whose second part is the banner as text/plain.
//   Whichever alternative a reader shows, the banner follows it.
#include "libmail/mail/banner.hpp"

#include "libmail/mail/message.hpp"
#include "libmail/mail/mime.hpp"
#include "libmail/base/codec.hpp"
#include "libmail/base/text.hpp"

#include <openssl/rand.h>

#include <optional>
#include <ostream>

namespace mail {

namespace {

bool is_ascii(std::string_view s) {
    for (unsigned char c : s)
        if (c >= 0x80) return false;
    return true;
}

// The banner's lines in the message's line ending, ending with one.
std::string banner_lines(std::string_view banner, const std::string& eol) {
    std::string out;
    for (std::size_t i = 0; i < banner.size(); ++i) {
        char c = banner[i];
        if (c == '\r') continue;
        if (c == '\n') {
            out += eol;
        } else {
            out += c;
        }
    }
    while (out.size() >= eol.size() && out.compare(out.size() - eol.size(), eol.size(), eol) == 0)
        out.erase(out.size() - eol.size());
    return out + eol;
}

std::string banner_part(std::string_view banner, const std::string& eol) {
    return "Content-Type: text/plain; charset=utf-8" + eol + "Content-Transfer-Encoding: " +
           (is_ascii(banner) ? "7bit" : "8bit") + eol + "Content-Disposition: inline" + eol + eol +
           banner_lines(banner, eol);
}

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
    out << eol << "--" << *b << eol << banner_part(banner, eol) << "--" << *b << "--" << eol;
    return {};
}

// Streams a multipart/mixed body, adding the banner part before the closing delimiter.
Result<bool> add_part(MessageReader& msg, std::string_view boundary, std::string_view banner, std::ostream& out) {
    const std::string close = "--" + std::string(boundary) + "--";
    std::string line;  // the current line, while it may still be the closing delimiter
    bool candidate = true, added = false;
    char buf[65536];
    for (;;) {
        auto n = msg.read_body(buf, sizeof buf);
        if (!n) return n.error();
        if (*n == 0) break;
        for (std::size_t i = 0; i < *n; ++i) {
            char c = buf[i];
            if (added) {
                out.write(buf + i, static_cast<std::streamsize>(*n - i));
                break;
            }
            if (candidate) {
                line += c;
                if (c == '\n') {
                    if (delimiter_of(line, boundary) == Delimiter::close) {
                        out << "--" << boundary << msg.eol() << banner_part(banner, msg.eol());
                        added = true;
                    }
                    out << line;
                    line.clear();
                } else if (line.size() > close.size() + 2 || close.compare(0, line.size(), line) != 0) {
                    out << line;  // cannot be the delimiter: pass the rest of the line straight through
                    line.clear();
                    candidate = false;
                }
            } else {
                out.put(c);
                if (c == '\n') candidate = true;
            }
        }
    }
    if (!added && candidate && !line.empty()) {
        if (delimiter_of(line, boundary) == Delimiter::close) {  // on the last line, without a line end
            out << "--" << boundary << msg.eol() << banner_part(banner, msg.eol());
            added = true;
        }
    }
    out << line;
    return added;
}

} // namespace

Result<void> append_banner(MessageReader& msg, std::string_view banner, std::ostream& body_out) {
    auto field = msg.get("Content-Type");
    // An unreadable Content-Type is not guessed at: the message is wrapped, the banner a part of its own.
    std::optional<ContentType> read = field ? read_content_type(*field) : ContentType{};
    if (!read) return wrap(msg, banner, body_out);
    const ContentType& type = *read;
    std::string cte = lower(msg.get("Content-Transfer-Encoding").value_or("7bit"));
    bool plain_cte = cte == "7bit" || cte == "8bit" || cte == "binary";

    if (type.is("text", "plain") && plain_cte) {
        bool utf8 = lower(type.param("charset")) == "utf-8";
        if (is_ascii(banner) || (utf8 && cte != "7bit")) {
            // Append after the body, which may or may not end with a line end.
            char last = 0;
            char buf[65536];
            for (;;) {
                auto n = msg.read_body(buf, sizeof buf);
                if (!n) return n.error();
                if (*n == 0) break;
                body_out.write(buf, static_cast<std::streamsize>(*n));
                last = buf[*n - 1];
            }
            if (last != 0 && last != '\n') body_out << msg.eol();
            body_out << msg.eol() << banner_lines(banner, msg.eol());
            return {};
        }
    }
    if (type.is("multipart", "mixed") && plain_cte) {
        std::string boundary = type.param("boundary");
        if (!boundary.empty() && boundary.size() <= limits::mime_boundary) {
            auto added = add_part(msg, boundary, banner, body_out);
            if (!added) return added.error();
            return {};
        }
    }
    return wrap(msg, banner, body_out);
}

} // namespace mail
