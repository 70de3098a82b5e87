// Text notices of older and smaller mail systems: see dsn_vendor.hpp.
#include "libmail/mail/dsn_vendor.hpp"

#include "libmail/base/text.hpp"

#include <algorithm>

namespace mail::dsn_detail {

namespace {

using std::string_view;
using Lines = std::vector<string_view>;
constexpr std::size_t npos = string_view::npos;
/// Reasons are gathered to this many octets before one_line() cuts them.
constexpr std::size_t gather = 4 * limits::dsn_diagnostic;

bool is_line(string_view line, string_view s) { return iequals(trim(line), s); }

bool any_line(const Lines& lines, string_view s) {
    return std::any_of(lines.begin(), lines.end(), [s](string_view l) { return is_line(l, s); });
}

// The value after the first ':' of a line, trimmed.
string_view after_colon(string_view t) {
    std::size_t p = t.find(':');
    return p == npos ? string_view() : trim(t.substr(p + 1));
}

// A line that is only an address, bare or in angle brackets, perhaps ending in ':'.
std::optional<std::string> address_line(string_view line) {
    string_view t = trim(line);
    if (!t.empty() && t.back() == ':') t.remove_suffix(1);
    return normal_address(t);
}

void append(std::string& to, string_view t) {
    if (to.size() < gather) to.append(to.empty() ? "" : " ").append(trim(t));
}

bool system_address(string_view a) {
    return istarts_with(a, "postmaster@") || istarts_with(a, "mailer-daemon@") || istarts_with(a, "mailer_daemon@");
}

// Sets what a later line says about a recipient already added (a server's reply, a reason).
void set_diagnostic(Collect& c, string_view address, string_view diag, std::optional<bool> decided) {
    DsnRecipient* rc = c.find(address);
    if (!rc || trim(diag).empty()) return;
    rc->diagnostic = one_line(trim(diag));
    rc->status = failure_status(rc->diagnostic);
    rc->permanent = permanence(decided, rc->diagnostic);
}

// ---------------------------------------------------------------- Lotus Domino and Notes

// Domino: "was not delivered to:" (addresses) "because:" (the reason), once per
// failure, each block opened by "Your message".
bool domino_like(const Lines& lines) {
    bool to = false;
    for (string_view l : lines) {
        if (is_line(l, "was not delivered to:")) to = true;
        else if (to && is_line(l, "because:")) return true;
    }
    return false;
}

void parse_domino(const Lines& lines, std::optional<bool> dflt, Collect& c) {
    enum { none, to, because } mode = none;
    std::vector<std::string> block;
    std::string why;
    auto flush = [&] {
        for (const auto& a : block) c.add(text_recipient(a, why, dflt));
        block.clear();
        why.clear();
    };
    for (string_view line : lines) {
        string_view t = trim(line);
        if (is_line(t, "was not delivered to:")) {
            flush();
            mode = to;
        } else if (is_line(t, "because:")) {
            mode = because;
        } else if (is_line(t, "Your message")) {
            flush();
            mode = none;
        } else if (t.empty()) {
            if (mode == because && !why.empty()) {
                flush();
                mode = none;
            }
        } else if (mode == to) {
            if (auto a = address_line(t); a && block.size() < limits::dsn_recipients) block.push_back(*a);
        } else if (mode == because) {
            append(why, t);
        }
    }
    flush();
}

// Notes (R4/R5): after "------- Failure Reasons --------", a reason line and
// the addresses it applies to, up to "------- Returned Message --------".
void parse_notes(const Lines& lines, std::optional<bool> dflt, Collect& c) {
    bool in = false, after_address = false;
    std::string why;
    for (string_view line : lines) {
        string_view t = trim(line);
        if (istarts_with(t, "------- Failure Reasons")) {
            in = true;
            continue;
        }
        if (!in || t.empty()) continue;
        if (t.substr(0, 3) == "---") break;
        if (auto a = address_line(t)) {
            c.add(text_recipient(*a, why, dflt));
            after_address = true;
        } else {
            if (after_address) why.clear();
            after_address = false;
            append(why, t);
        }
    }
}

// ---------------------------------------------------------------- Novell GroupWise

bool groupwise_like(string_view t) {
    return has(t, "The message that you sent was undeliverable to the following") ||
           (has(t, "Could not be delivered because of") && has(t, "The following recipients were affected"));
}

// "was undeliverable to the following:" then "addr (reason)" lines; or (GWIA)
// "Could not be delivered because of" the reply, then "The following
// recipients were affected:" and the addresses.
void parse_groupwise(const Lines& lines, std::optional<bool> dflt, Collect& c) {
    enum { none, list, reason, affected } mode = none;
    bool got = false;
    std::string why;
    for (string_view line : lines) {
        string_view t = trim(line);
        if (has(t, "was undeliverable to the following")) {
            mode = list;
            got = false;
        } else if (istarts_with(t, "Could not be delivered because of")) {
            mode = reason;
            why.clear();
        } else if (istarts_with(t, "The following recipients were affected")) {
            mode = affected;
            got = false;
        } else if (t.empty()) {
            if (got || (mode == reason && !why.empty())) mode = none;
        } else if (mode == list) {
            std::size_t sp = t.find_first_of(" \t");
            string_view rest = sp == npos ? string_view() : trim(t.substr(sp));
            if (rest.size() >= 2 && rest.front() == '(' && rest.back() == ')') rest = rest.substr(1, rest.size() - 2);
            if (auto a = normal_address(t.substr(0, sp))) {
                c.add(text_recipient(*a, rest, dflt));
                got = true;
            }
        } else if (mode == reason) {
            append(why, t);
        } else if (mode == affected) {
            if (auto a = address_line(t)) {
                c.add(text_recipient(*a, why, dflt));
                got = true;
            }
        }
    }
}

// ---------------------------------------------------------------- MDaemon

bool mdaemon_like(const Lines& lines, string_view t, const MimeHeader& top) {
    return any_line(lines, "--- Session Transcript ---") &&
           (has(t, "delivery errors") || has(top.value("x-mailer"), "MDaemon") || has(top.value("from"), "MDaemon"));
}

// The session transcript: the reply to each "--> RCPT To:<addr>" (and to
// DATA, for the recipients accepted); else the "*  To:" lines.
void parse_mdaemon(const Lines& lines, string_view t, std::optional<bool> dflt, Collect& c) {
    std::optional<bool> decided = dflt;
    if (has(t, "PERMANENT fatal delivery errors")) decided = true;  // it gave up: even a 4xx reply is final
    bool in = false, data = false;
    std::optional<std::string> rcpt;
    std::vector<std::string> accepted, listed;
    for (string_view line : lines) {
        string_view u = trim(line);
        if (is_line(u, "--- Session Transcript ---")) {
            in = true;
            continue;
        }
        if (is_line(u, "--- End Transcript ---")) in = false;
        if (!in) continue;
        if (std::size_t p = u.find("--> "); p != npos) {
            string_view cmd = trim(u.substr(p + 4));
            rcpt.reset();
            data = iequals(cmd, "DATA");
            if (istarts_with(cmd, "RCPT TO:")) {
                string_view path = cmd.substr(8);
                std::size_t lt = path.find('<'), gt = path.find('>');
                if (lt != npos && gt != npos && gt > lt) path = path.substr(lt, gt - lt + 1);
                if (auto a = normal_address(path)) rcpt = *a;
            }
        } else if (std::size_t q = u.find("<-- "); q != npos) {
            string_view reply = trim(u.substr(q + 4));
            bool fail = reply.size() >= 3 && (reply[0] == '4' || reply[0] == '5');
            if (rcpt) {
                if (fail) c.add(text_recipient(*rcpt, reply, decided));
                else if (reply[0] == '2' && accepted.size() < limits::dsn_recipients) accepted.push_back(*rcpt);
                rcpt.reset();
            } else if (data && fail) {
                for (const auto& a : accepted) c.add(text_recipient(a, reply, decided));
                data = false;
            }
        } else if (std::size_t s = ifind(u, "*  To:"); s != npos) {
            if (auto a = find_address(u.substr(s + 6)); a && listed.size() < limits::dsn_recipients)
                listed.push_back(*a);
        }
    }
    if (c.r.recipients.empty())
        for (const auto& a : listed) c.add(text_recipient(a, "", decided));
}

// ---------------------------------------------------------------- Ipswitch IMail (SMTP32)

bool smtp32_like(const Lines& lines, const MimeHeader& top) {
    if (istarts_with(trim(top.value("x-mailer")), "<SMTP32 v")) return true;
    return is_line(top.value("subject"), "Undeliverable Mail") && any_line(lines, "Original message follows.");
}

// "Reason: addr" lines ("Unknown user: a@b", "Delivery failed 3 attempts:
// a@b"), "undeliverable to a@b", and the server's reply on the line after
// "... generated response:".
void parse_smtp32(const Lines& lines, std::optional<bool> dflt, Collect& c) {
    std::string last, host;
    for (std::size_t i = 0; i < lines.size(); ++i) {
        string_view t = trim(lines[i]);
        if (is_line(t, "Original message follows.")) break;
        if (istarts_with(t, "undeliverable to ")) {
            if (auto a = normal_address(t.substr(17))) {
                c.add(text_recipient(*a, host.empty() ? t : string_view(host), dflt));
                last = *a;
            }
            continue;
        }
        if (has(t, "generated response:") || has(t, "generated following response:")) {
            std::size_t j = i + 1;
            while (j < lines.size() && trim(lines[j]).empty()) ++j;
            if (j < lines.size() && !last.empty()) set_diagnostic(c, last, lines[j], dflt);
            i = j;
            continue;
        }
        std::size_t colon = t.rfind(": ");
        if (colon == npos) continue;
        string_view what = t.substr(0, colon);
        if (auto a = normal_address(t.substr(colon + 2)); a && what.find(' ') != npos) {
            // IMail returns the message when it gives up, whatever the last reply was.
            std::optional<bool> decided = istarts_with(what, "Delivery failed") ? std::optional<bool>(true) : dflt;
            c.add(text_recipient(*a, what, decided));
            last = *a;
        } else if (istarts_with(t, "Unknown host:")) {
            host = std::string(t.substr(0, std::min(t.size(), gather)));
        }
    }
}

// ---------------------------------------------------------------- Netscape, iPlanet, Sun, PMDF

bool iplanet_like(string_view t) {
    return has(t, "This report relates to a message you sent") ||
           has(t, "cannot be delivered to the following recipients") ||
           has(t, "This Message was undeliverable due to the following reason") ||
           (has(t, "The message could not be delivered to:") && has(t, "Addressee:"));
}

// Blocks of "Recipient address:" (or PMDF's "Addressee:", Netscape's
// "Recipient:"), "Reason:" and "Diagnostic code:" lines, in sections that say
// whether delivery failed or is delayed; Netscape's list of "<addr>" lines
// under the reason given at the top.
void parse_iplanet(const Lines& lines, std::optional<bool> dflt, Collect& c) {
    std::optional<bool> section = dflt;
    std::optional<std::string> cur;
    std::string reason, code, top_reason;
    bool want_reason = false, want_top = false, list = false;
    auto flush = [&] {
        if (cur) c.add(text_recipient(*cur, !code.empty() ? code : !reason.empty() ? reason : top_reason, section));
        cur.reset();
        reason.clear();
        code.clear();
        want_reason = false;
    };
    for (string_view line : lines) {
        string_view t = trim(line);
        if (t.empty()) {
            if (!want_reason) flush();
            if (want_top && !top_reason.empty()) want_top = false;
            if (list && !c.r.recipients.empty()) list = false;
            continue;
        }
        if (has(t, "cannot be delivered to the following") || has(t, "could not be delivered to:") ||
            has(t, "was undeliverable due to")) {
            flush();
            section = true;
            want_top = has(t, "was undeliverable due to");
        } else if (has(t, "has been delayed") || has(t, "still awaiting delivery")) {
            flush();
            section = false;
        } else if (istarts_with(t, "Recipient address:") || istarts_with(t, "Addressee:") ||
                   istarts_with(t, "Recipient:")) {
            flush();
            if (auto a = normal_address(after_colon(t))) cur = *a;
        } else if (istarts_with(t, "Reason:")) {
            reason = std::string(after_colon(t));
            want_reason = reason.empty();
        } else if (istarts_with(t, "Diagnostic code:")) {
            code = std::string(after_type(after_colon(t)));
        } else if (istarts_with(t, "The following recipients did not receive this message")) {
            list = true;
        } else if (list) {
            if (auto a = address_line(t)) c.add(text_recipient(*a, top_reason, section));
        } else if (want_reason) {
            append(reason, t);
            want_reason = false;
        } else if (want_top) {
            append(top_reason, t);
        }
    }
    flush();
}

bool is_pmdf(string_view t, const MimeHeader& top) {
    if (has(t, "PMDF")) return true;
    for (const auto& [name, value] : top.fields)
        if ((name == "received" || name == "message-id" || name == "x-mailer") && has(value, "PMDF")) return true;
    return false;
}

// ---------------------------------------------------------------- Courier and qmail clones

bool courier_like(string_view t, const MimeHeader& top) {
    return has(t, "running the Courier mail server") ||
           (has(top.value("from"), "Courier mail server at") &&
            (has(t, "UNDELIVERABLE MAIL") || has(t, "DELAYS IN DELIVERING YOUR MESSAGE")));
}

bool qmail_clone_like(string_view t) {
    for (string_view m : {"This is the machine generated message from mail service", "This is the mail delivery agent at",
                          "Unable to deliver message to the following address",
                          "Unfortunately, your mail was not delivered to the following address",
                          "Your mail message to the following address", "Su mensaje no pudo ser entregado"})
        if (has(t, m)) return true;
    return false;
}

// "<addr>:" at the start of a line opens a paragraph; its lines to a blank
// one say why; a "<<< " line (the server's reply, Courier) is preferred.
// Courier's "UNDELIVERABLE MAIL" and "DELAYS IN DELIVERING YOUR MESSAGE"
// headings decide permanence for the paragraphs under them.
void parse_paragraphs(const Lines& lines, std::optional<bool> dflt, Collect& c) {
    std::optional<bool> section = dflt;
    for (std::size_t i = 0; i < lines.size(); ++i) {
        string_view t = trim(lines[i]);
        if (is_line(t, "UNDELIVERABLE MAIL")) section = true;
        if (is_line(t, "DELAYS IN DELIVERING YOUR MESSAGE")) section = false;
        if (indent_of(lines[i]) > 0 || t.size() < 5 || t.front() != '<' || t.back() != ':' || t[t.size() - 2] != '>')
            continue;
        auto a = normal_address(t.substr(0, t.size() - 1));
        if (!a) continue;
        std::string why, reply;
        std::size_t j = i + 1;
        for (; j < lines.size() && !trim(lines[j]).empty(); ++j) {
            string_view u = trim(lines[j]);
            if (istarts_with(u, "<<<")) reply = std::string(trim(u.substr(3)).substr(0, gather));
            else if (!istarts_with(u, ">>>")) append(why, u);
        }
        c.add(text_recipient(*a, !reply.empty() ? reply : why, section));
        i = j;
    }
}

// The host after phrase, as a notice names itself; "" when absent.
std::string host_after(string_view t, string_view phrase) {
    std::size_t p = ifind(t, phrase);
    return p == npos ? std::string() : host_name(trim(t.substr(p + phrase.size(), 300)));
}

// ---------------------------------------------------------------- simple

bool failure_phrase(string_view t) {
    for (string_view w : {"could not be delivered", "couldn't be delivered", "cannot be delivered", "can't be delivered",
                          "was not delivered", "wasn't delivered", "has not been delivered", "could not be reached",
                          "not be reached", "was rejected", "were rejected", "undeliverable", "delivery failed",
                          "failed:", "failed permanently", "does not exist", "no such user", "user unknown"})
        if (has(t, w)) return true;
    return false;
}

bool forwarded(const MimeHeader& top, const Lines& lines) {
    const std::string subject = top.value("subject");
    string_view s = trim(subject);
    for (string_view p : {"fwd:", "fw:", "re:", "wg:", "aw:", "tr:", "rv:"})
        if (istarts_with(s, p)) return true;
    for (string_view l : lines)
        if (has(l, "Forwarded Message") || has(l, "Forwarded message") || has(l, "Original Message-----")) return true;
    return false;
}

// A sentence naming the failed address ("Your message to <a@b> could not be
// delivered: ..."), or one announcing the failed addresses on the lines after
// it, each alone on its line; the reason is the sentence, or the first line
// after the list with a code or a reason.
void parse_simple(const Lines& lines, const MimeHeader& top, std::optional<bool> dflt, Collect& c) {
    std::vector<std::string> own;
    for (const char* name : {"from", "to", "sender", "reply-to"})
        if (auto v = top.get(name))
            if (auto a = find_address(*v)) own.push_back(*a);
    auto usable = [&](const std::string& a) {
        return !system_address(a) && std::find(own.begin(), own.end(), a) == own.end();
    };
    for (std::size_t i = 0; i < lines.size(); ++i) {
        string_view t = trim(lines[i]);
        if (t.empty() || !failure_phrase(t)) continue;
        auto a = find_address(t);
        if (a) {
            if (usable(*a)) c.add(text_recipient(*a, t, dflt));
            continue;
        }
        if (!has(t, "following") && t.back() != ':') continue;
        // The list: address lines after the sentence (blank lines allowed before it).
        std::vector<std::string> list;
        std::size_t j = i + 1;
        for (; j < lines.size(); ++j) {
            string_view u = trim(lines[j]);
            if (u.empty()) {
                if (list.empty()) continue;
                break;
            }
            auto b = address_line(u);
            if (!b) break;
            if (usable(*b) && list.size() < limits::dsn_recipients) list.push_back(*b);
        }
        if (list.empty()) continue;
        string_view why = t;
        for (std::size_t k = j, seen = 0; k < lines.size() && seen < 4; ++k) {
            string_view u = trim(lines[k]);
            if (u.empty()) continue;
            ++seen;
            if (class_of(u) || istarts_with(u, "Reason") || failure_phrase(u)) {
                why = u;
                break;
            }
        }
        for (const auto& b : list) c.add(text_recipient(b, why, dflt));
        i = j - 1;
    }
}

// Signs in the header alone that a family's notice came from its mail system.
bool own_sign(const MimeHeader& top) {
    const std::string subject = top.value("subject");
    string_view s = trim(subject);
    return istarts_with(s, "DELIVERY FAILURE:") || istarts_with(s, "DELIVERY_FAILURE:") ||
           istarts_with(trim(top.value("x-mailer")), "<SMTP32 v") || has(top.value("x-mailer"), "MDaemon") ||
           has(top.value("from"), "Courier mail server at") || istarts_with(s, "Delivery Notification:");
}

} // namespace

std::string read_vendor_notice(const std::vector<string_view>& lines, string_view t, const MimeHeader& top,
                               std::optional<bool> wording, bool envelope, Collect& c) {
    // A person quoting a notice is not one: the families need a mail system's envelope or header.
    if (!envelope && !own_sign(top)) return {};
    if (domino_like(lines)) {
        parse_domino(lines, wording, c);
        return "domino";
    }
    if (has(t, "------- Failure Reasons")) {
        parse_notes(lines, wording, c);
        return "domino";
    }
    if (groupwise_like(t)) {
        parse_groupwise(lines, wording, c);
        return "groupwise";
    }
    if (mdaemon_like(lines, t, top)) {
        parse_mdaemon(lines, t, wording, c);
        return "mdaemon";
    }
    if (smtp32_like(lines, top)) {
        parse_smtp32(lines, wording, c);
        return "smtp32";
    }
    if (courier_like(t, top)) {
        parse_paragraphs(lines, wording, c);
        c.r.reporting_mta = host_after(t, "delivery status notification from ");
        return "courier";
    }
    if (iplanet_like(t)) {
        parse_iplanet(lines, wording, c);
        return is_pmdf(t, top) ? "pmdf" : "iplanet";
    }
    if (qmail_clone_like(t)) {
        parse_paragraphs(lines, wording, c);
        return "qmail";
    }
    return {};
}

std::string read_simple_notice(const std::vector<string_view>& lines, const MimeHeader& top,
                               std::optional<bool> wording, bool envelope, Collect& c) {
    if (!envelope || forwarded(top, lines)) return {};
    parse_simple(lines, top, wording, c);
    return c.r.recipients.empty() ? std::string() : std::string("simple");
}

} // namespace mail::dsn_detail
