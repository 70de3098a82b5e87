// Text notices: see dsn_text.hpp.
#include "libmail/mail/dsn_text.hpp"

#include "libmail/mail/dsn_provider.hpp"
#include "libmail/mail/dsn_vendor.hpp"

#include "libmail/base/text.hpp"

#include <algorithm>

namespace mail::dsn_detail {

namespace {
using std::string_view;
constexpr std::size_t npos = string_view::npos;
} // namespace

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
        "Original message follows.",  // IMail (SMTP32)
    };
    for (string_view m : exact)
        if (istarts_with(t, m)) return true;
    if (t.substr(0, 3) != "---") return false;
    return has(t, "original message") || has(t, "unsent message") || has(t, "copy of the message") ||
           has(t, "message header") || has(t, "returned message") || has(t, "rfc822") ||
           has(t, "message follows");
}

namespace {

// The family of a text notice by its wording; "" when none matches.
std::string text_family(string_view t, const MimeHeader& top) {
    if (has(t, "This is the qmail-send program at") || has(t, "I'm afraid I wasn't able to deliver your message"))
        return "qmail";
    if (has(t, "unable to deliver your message to the following address") ||
        has(t, "Unable to deliver message to the following address"))  // Yahoo before 2010
        return "yahoo";
    // Before Exim's: Gmail's text notices carry X-Failed-Recipients too.
    if (has(t, "wasn't delivered to") || has(t, "wasn\u2019t delivered to") ||
        has(t, "Delivery to the following recipient failed permanently") ||
        has(t, "Delivery to the following recipient has been delayed") ||
        has(t, "There was a temporary problem delivering your message"))
        return "gmail";
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
        has(t, "The following recipient(s) cannot be reached") || has(t, "Remote Server returned '") ||
        has(t, "rejected your message to the following email addresses") ||
        has(t, "rejected your message to the following e-mail addresses"))
        return "exchange";
    // Exchange 2007 and later, and 2003, localised (de, fr, es, nl, it, pt, ja).
    for (string_view w : {"Die Zustellung an folgende Empfänger oder Gruppen ist fehlgeschlagen",
                          "Diagnoseinformationen für Administratoren",
                          "Folgende Empfänger konnten nicht erreicht werden",
                          "Folgende(r) Empfänger konnte(n) nicht erreicht werden",
                          "hat einige oder alle Empfänger nicht erreicht",
                          "La remise à ces destinataires ou groupes a échoué",
                          "Informations de diagnostic pour les administrateurs",
                          "Impossible de joindre le ou les destinataires suivants",
                          "Error en la entrega a estos destinatarios o grupos",
                          "Información de diagnóstico para administradores",
                          "No se puede llegar a los siguientes destinatarios",
                          "Levering aan deze ontvangers of groepen is mislukt",
                          "Diagnostische gegevens voor beheerders",
                          "Recapito non riuscito per i seguenti destinatari o gruppi",
                          "Informazioni di diagnostica per gli amministratori",
                          "Falha na entrega para estes destinatários ou grupos",
                          "Informações de diagnóstico para administradores",
                          "管理者向け診断情報"})
        if (has(t, w)) return "exchange";
    return {};
}

} // namespace

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
                          "unable to deliver your message",
                          // Exchange, localised
                          "an folgende Empfänger oder Gruppen ist fehlgeschlagen",
                          "ces destinataires ou groupes a échoué", "Error en la entrega a estos destinatarios",
                          "ontvangers of groepen is mislukt", "Recapito non riuscito per i seguenti destinatari",
                          "Falha na entrega para estes destinatários"})
        if (has(t, w)) return true;
    return std::nullopt;
}

// Whoever sent the notice looks like a mail system, or its subject like a bounce.
bool bounce_envelope(const MimeHeader& top) {
    std::string rp = top.value("return-path");
    if (trim(rp) == "<>") return true;
    std::string from = lower(top.value("from"));
    for (string_view w : {"mailer-daemon", "mailer_daemon", "maildaemon", "mail-daemon", "postmaster", "mail delivery",
                          "mail administrator", "mailerdaemon", "microsoftexchange"})
        if (from.find(w) != npos) return true;
    std::string subject = decoded_field(top.value("subject"));
    for (string_view w : {"fwd:", "fw:", "re:", "wg:", "aw:", "tr:", "rv:"})  // a person passing a notice on
        if (istarts_with(trim(subject), w)) return false;
    for (string_view w : {"undeliver", "undelivered", "delivery status notification", "returned mail",
                          "mail delivery failed", "failure notice", "delivery failure", "delivery failed",
                          "delayed mail", "delivery delayed", "non-delivery", "nondeliverable", "could not be delivered",
                          "returned to sender", "delivery notification", "mail system error", "unzustellbar",
                          "non remis", "delivery has failed", "no se puede entregar", "onbestelbaar",
                          "non recapitabile", "não é possível entregar", "não entregue",
                          "配信不能"})
        if (has(subject, w)) return true;
    return false;
}

namespace {

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
            if (!first.empty() && first.back() == ':') first.remove_suffix(1);  // Exim 3: "  addr:"
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

// "Generating server:" in the languages of Exchange: the length of the label, 0 when t has none.
std::size_t generating_server(string_view t) {
    for (string_view l : {"Generating server:", "Generierender Server:", "Serveur de génération :",
                          "Serveur de génération:", "Servidor de generación:",
                          "Genererende server:", "Server di generazione:", "Servidor de geração:",
                          "生成サーバー:"})
        if (istarts_with(t, l)) return l.size();
    return 0;
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
        if (std::size_t g = generating_server(t)) {
            if (c.r.reporting_mta.empty()) c.r.reporting_mta = host_name(t.substr(g));
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

} // namespace

// Reads the recipients of a text notice into c by the family its wording names, or with the generic
// fallback when envelope says a mail system sent it; the family, "" when none.
std::string read_text_notice(const std::vector<string_view>& lines, string_view notification, const MimeHeader& top,
                             std::optional<bool> wording, bool envelope, Collect& c) {
    DsnReport& r = c.r;
    if (is_auto_reply(top)) return {};
    if (std::string p = read_provider_notice(lines, notification, top, wording, c); !p.empty()) return p;
    std::string family = text_family(notification, top);
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
    } else if (!(family = read_vendor_notice(lines, notification, top, wording, envelope, c)).empty()) {
        // Domino, GroupWise, MDaemon, IMail, iPlanet, PMDF, Courier, qmail clones: dsn_vendor.cpp
    } else if (!(family = read_simple_notice(lines, top, wording, envelope, c)).empty()) {
        // a sentence naming the failed address: dsn_vendor.cpp
    } else if (envelope) {
        parse_generic(lines, top, wording, c);
        if (!r.recipients.empty()) family = "generic";
    }
    return provider_family(std::move(family), notification);
}

} // namespace mail::dsn_detail
