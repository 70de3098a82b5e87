// The digest of held mail as a message: see digest_mail.hpp.
#include "libmail/mail/digest_mail.hpp"

#include "libmail/base/clock.hpp"
#include "libmail/base/codec.hpp"
#include "libmail/base/text.hpp"

#include <optional>

namespace mail {

namespace {

std::string sender_of(const DigestEntry& e) { return e.sender.empty() ? "<> (a notice)" : scrub(e.sender, 254); }

std::string size_of(std::int64_t n) {
    if (n < 10 * 1024) return std::to_string(n) + " bytes";
    if (n < 10 * 1024 * 1024) return std::to_string(n / 1024) + " kB";
    return std::to_string(n / (1024 * 1024)) + " MB";
}

// base64 in lines of 76 characters (RFC 2045 6.8).
std::string base64_lines(std::string_view bytes) {
    std::string b = base64_encode(bytes), out;
    for (std::size_t i = 0; i < b.size(); i += 76) out += b.substr(i, 76) + "\n";
    return out;
}

} // namespace

std::string html_escape(std::string_view s) {
    std::string out;
    out.reserve(s.size() + 16);
    for (char c : s) {
        switch (c) {
        case '&': out += "&amp;"; break;
        case '<': out += "&lt;"; break;
        case '>': out += "&gt;"; break;
        case '"': out += "&quot;"; break;
        case '\'': out += "&#39;"; break;
        default: out += c;
        }
    }
    return out;
}

std::string mailto_uri(std::string_view address, std::string_view subject) {
    static const char hex[] = "0123456789ABCDEF";
    auto enc = [&](std::string_view s, bool at_ok) {
        std::string out;
        for (char ch : s) {
            unsigned char c = static_cast<unsigned char>(ch);
            bool keep = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
                        c == '.' || c == '_' || c == '~' || (at_ok && c == '@');
            if (keep) {
                out += ch;
            } else {
                out += '%';
                out += hex[c >> 4];
                out += hex[c & 15];
            }
        }
        return out;
    };
    std::string u = "mailto:" + enc(address, true);
    if (!subject.empty()) u += "?subject=" + enc(subject, false);
    return u;
}

namespace {

// One encoded word's text ("charset?enc?text" without the =? ?= around it) decoded to UTF-8, or nothing.
std::optional<std::string> decode_word(std::string_view w) {
    auto q1 = w.find('?');
    if (q1 == std::string_view::npos || q1 + 2 >= w.size() || w[q1 + 2] != '?') return std::nullopt;
    std::string charset = lower(w.substr(0, q1));
    if (auto star = charset.find('*'); star != std::string::npos) charset.resize(star);  // RFC 2231 language
    char enc = lower(w[q1 + 1]);
    std::string_view text = w.substr(q1 + 3);
    std::string raw;
    if (enc == 'b') {
        auto b = base64_decode(text);
        if (!b) return std::nullopt;
        raw = *b;
    } else if (enc == 'q') {
        for (std::size_t i = 0; i < text.size(); ++i) {
            if (text[i] == '_') {
                raw += ' ';
            } else if (text[i] == '=' && i + 2 < text.size() && hex_value(text[i + 1]) >= 0 &&
                       hex_value(text[i + 2]) >= 0) {
                raw += static_cast<char>(hex_value(text[i + 1]) * 16 + hex_value(text[i + 2]));
                i += 2;
            } else {
                raw += text[i];
            }
        }
    } else {
        return std::nullopt;
    }
    if (charset == "utf-8" || charset == "us-ascii") return raw;
    if (charset == "iso-8859-1" || charset == "latin1") {
        std::string out;
        for (char c : raw) {
            auto u = static_cast<unsigned char>(c);
            if (u < 0x80) {
                out += c;
            } else {
                out += static_cast<char>(0xc0 | (u >> 6));
                out += static_cast<char>(0x80 | (u & 0x3f));
            }
        }
        return out;
    }
    return std::nullopt;
}

} // namespace

std::string decode_words(std::string_view s) {
    std::string out;
    std::size_t i = 0;
    bool last_word = false;  // the previous token was a decoded word: whitespace before the next is dropped
    std::string pending_space;
    while (i < s.size()) {
        if (s.compare(i, 2, "=?") == 0) {
            // charset ? enc ? text ?= : the text may not hold "?=" or spaces
            auto q1 = s.find('?', i + 2);
            auto q2 = q1 == std::string_view::npos ? q1 : s.find('?', q1 + 1);
            auto end = q2 == std::string_view::npos ? q2 : s.find("?=", q2 + 1);
            if (end != std::string_view::npos && s.substr(i, end - i).find(' ') == std::string_view::npos) {
                if (auto d = decode_word(s.substr(i + 2, end - i - 2))) {
                    if (!last_word) out += pending_space;
                    pending_space.clear();
                    out += *d;
                    last_word = true;
                    i = end + 2;
                    continue;
                }
            }
        }
        if (s[i] == ' ' || s[i] == '\t') {
            pending_space += s[i++];
            continue;
        }
        out += pending_space;
        pending_space.clear();
        out += s[i++];
        last_word = false;
    }
    return out + pending_space;
}

std::string digest_subject(std::string_view s) {
    std::string t = scrub(trim(decode_words(s)), digest_subject_max);
    return t.empty() ? "(no subject)" : t;
}

std::string digest_text(const DigestMail& d) {
    std::string t;
    t += "Mail held for " + d.recipient + ": " + std::to_string(d.entries.size()) +
         (d.entries.size() == 1 ? " message" : " messages") + ", as of " + rfc5322_date(d.date) + ".\n\n";
    t += "These came from senders that are not on your whitelist and have not\n"
         "confirmed. To have one delivered, send any message (from this\n"
         "address, " + d.recipient + ") to its release address; to have it\n"
         "delivered and its sender whitelisted, to its whitelist address.\n"
         "Each address works once, until " + format_time(d.expires) + ".\n\n";
    std::size_t n = 0;
    for (const auto& e : d.entries) {
        t += std::to_string(++n) + ". From:      " + sender_of(e) + "\n";
        t += "   Subject:   " + digest_subject(e.subject) + "\n";
        t += "   Date:      " + format_time(e.received) + "\n";
        t += "   Size:      " + size_of(e.size) + "\n";
        t += "   Category:  " + scrub(e.category, 80) + "\n";
        t += "   Held:      " + scrub(e.why.empty() ? "unknown sender" : e.why, 200) + "\n";
        t += "   Release:   <" + e.release + ">\n";
        if (!e.whitelist.empty()) t += "   Whitelist: <" + e.whitelist + ">\n";
        t += "\n";
    }
    t += "Release everything above: <" + d.all + ">\n\n";
    t += "Mail you do not release is deleted when its holding time ends.\n";
    return t;
}

std::string digest_html(const DigestMail& d) {
    std::string h;
    h += "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n";
    h += "<title>Mail held for " + html_escape(d.recipient) + "</title>\n</head>\n<body>\n";
    h += "<h1>Mail held for " + html_escape(d.recipient) + "</h1>\n";
    h += "<p>" + std::to_string(d.entries.size()) + (d.entries.size() == 1 ? " message" : " messages") +
         " from senders that are not on your whitelist, as of " + html_escape(rfc5322_date(d.date)) + ".</p>\n";
    h += "<p>Each link opens a message to an address that works once, from " + html_escape(d.recipient) +
         " only, until " + html_escape(format_time(d.expires)) + ": send it to have the mail delivered.</p>\n";
    h += "<table border=\"1\" cellpadding=\"4\" cellspacing=\"0\">\n";
    h += "<tr><th>From</th><th>Subject</th><th>Date</th><th>Size</th><th>Category</th><th>Held because</th>"
         "<th>Release</th></tr>\n";
    for (const auto& e : d.entries) {
        h += "<tr class=\"entry\">";
        h += "<td class=\"sender\">" + html_escape(sender_of(e)) + "</td>";
        h += "<td class=\"subject\">" + html_escape(digest_subject(e.subject)) + "</td>";
        h += "<td>" + html_escape(format_time(e.received)) + "</td>";
        h += "<td>" + html_escape(size_of(e.size)) + "</td>";
        h += "<td>" + html_escape(scrub(e.category, 80)) + "</td>";
        h += "<td>" + html_escape(scrub(e.why.empty() ? "unknown sender" : e.why, 200)) + "</td>";
        h += "<td><a href=\"" + html_escape(mailto_uri(e.release, "release " + e.id)) + "\">release</a>";
        if (!e.whitelist.empty())
            h += "<br><a href=\"" + html_escape(mailto_uri(e.whitelist, "whitelist " + e.id)) +
                 "\">release and whitelist the sender</a>";
        h += "</td></tr>\n";
    }
    h += "</table>\n";
    h += "<p><a href=\"" + html_escape(mailto_uri(d.all, "release all")) + "\">Release everything listed</a></p>\n";
    h += "<p>Mail you do not release is deleted when its holding time ends.</p>\n</body>\n</html>\n";
    return h;
}

std::string compose_digest(const DigestMail& d) {
    std::string boundary = "=_mailstamp_digest_" + d.id;
    std::string m;
    m += "From: \"Held mail\" <" + d.from + ">\n";
    m += "To: <" + d.recipient + ">\n";
    m += "Subject: Held mail: " + std::to_string(d.entries.size()) +
         (d.entries.size() == 1 ? " message" : " messages") + " waiting\n";
    m += "Date: " + rfc5322_date(d.date) + "\n";
    m += "Message-ID: <digest." + d.id + "@" + d.hostname + ">\n";
    m += "Auto-Submitted: auto-generated\n";
    m += "X-Mailstamp-Digest: " + d.id + "\n";
    m += "MIME-Version: 1.0\n";
    m += "Content-Type: multipart/alternative; boundary=\"" + boundary + "\"\n\n";
    m += "This is a message in MIME format: a plain-text part and an HTML part.\n\n";
    m += "--" + boundary + "\n";
    m += "Content-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: base64\n\n";
    m += base64_lines(digest_text(d));
    m += "--" + boundary + "\n";
    m += "Content-Type: text/html; charset=utf-8\nContent-Transfer-Encoding: base64\n\n";
    m += base64_lines(digest_html(d));
    m += "--" + boundary + "--\n";
    return m;
}

} // namespace mail
