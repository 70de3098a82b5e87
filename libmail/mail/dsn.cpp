// Non-delivery notices: see dsn.hpp. This file reads the message's parts,
// the machine-readable reports (RFC 3464) and the returned message, and
// decides; dsn_text.cpp reads the notices written as text.
#include "libmail/mail/dsn.hpp"

#include "libmail/mail/address.hpp"
#include "libmail/mail/dsn_provider.hpp"
#include "libmail/mail/dsn_scan.hpp"
#include "libmail/mail/dsn_text.hpp"
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

using namespace dsn_detail;
using std::string_view;
constexpr std::size_t npos = string_view::npos;

// ---------------------------------------------------------------- the parts

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
                out.htmls.push_back(text_as_utf8(ct.param("charset"), decode_body(p.body, p.header)));
            } else if (ct.type == "text") {
                out.texts.push_back(text_as_utf8(ct.param("charset"), decode_body(p.body, p.header)));
            }
        },
        bounds);
}

// ---------------------------------------------------------------- RFC 3464 reports

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

// ---------------------------------------------------------------- the returned message

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
    const std::string subject = decoded_field(top.value("subject"));

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
        const bool envelope = bounce_envelope(top) || parts.report_type_dsn;
        std::string family = read_text_notice(lines, notification, top, wording, envelope, c);
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
