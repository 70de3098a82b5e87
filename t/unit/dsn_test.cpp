#include "libmail/mail/dsn.hpp"

#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <sstream>

using namespace mail;

namespace {

const std::filesystem::path dir = std::filesystem::path(MAILSTAMP_FIXTURES) / "dsn";

std::string slurp(const std::filesystem::path& p) {
    std::ifstream f(p, std::ios::binary);
    REQUIRE(f);
    std::stringstream ss;
    ss << f.rdbuf();
    return ss.str();
}

DsnReport parsed(std::string_view text) {
    auto r = parse_dsn(text);
    REQUIRE(r.ok());
    return *r;
}

std::string to_crlf(const std::string& s) {
    std::string out;
    for (std::size_t i = 0; i < s.size(); ++i) {
        if (s[i] == '\n' && (i == 0 || s[i - 1] != '\r')) out += '\r';
        out += s[i];
    }
    return out;
}

std::string to_lf(const std::string& s) {
    std::string out;
    for (std::size_t i = 0; i < s.size(); ++i)
        if (!(s[i] == '\r' && i + 1 < s.size() && s[i + 1] == '\n')) out += s[i];
    return out;
}

// What every report must satisfy, notice or not.
void check_invariants(const DsnReport& r) {
    CHECK(r.recipients.size() <= limits::dsn_recipients);
    for (const auto& rc : r.recipients) {
        CHECK(rc.address.size() <= limits::address_length);
        CHECK(rc.address.find_first_of("\r\n") == std::string::npos);
        CHECK(rc.diagnostic.size() <= limits::dsn_diagnostic);
        for (char c : rc.diagnostic) CHECK((static_cast<unsigned char>(c) >= 0x20 && c != 0x7f));
        if (!rc.status.empty()) CHECK((rc.status[0] == '4' || rc.status[0] == '5'));
    }
    if (!r.is_notice) CHECK(r.recipients.empty());
    if (!r.original_message_id.empty()) {
        CHECK(r.original_message_id.front() == '<');
        CHECK(r.original_message_id.back() == '>');
    }
}

bool same(const DsnReport& a, const DsnReport& b) {
    if (a.is_notice != b.is_notice || a.format != b.format || a.reporting_mta != b.reporting_mta ||
        a.permanent != b.permanent || a.original_message_id != b.original_message_id ||
        a.original_sender != b.original_sender || a.recipients.size() != b.recipients.size())
        return false;
    for (std::size_t i = 0; i < a.recipients.size(); ++i) {
        const auto &x = a.recipients[i], &y = b.recipients[i];
        if (x.address != y.address || x.status != y.status || x.permanent != y.permanent ||
            x.diagnostic != y.diagnostic)
            return false;
    }
    return true;
}

struct Rcpt {
    const char* address;
    const char* status;
    bool permanent;
    const char* diagnostic;  ///< a part of the diagnostic
};

struct Expect {
    const char* file;
    const char* source;  ///< the MTA or provider, and how the fixture was made
    bool notice;
    const char* format;
    bool permanent;
    const char* message_id;
    const char* mta;
    const char* sender;
    std::vector<Rcpt> rcpts;
};

const std::vector<Expect> expectations = {
    // Postfix 3.7, made by make-postfix.sh.
    {"postfix-unknown-user.eml", "postfix", true, "rfc3464", true, "<postfix-unknown-1@sender.example>",
     "mx.bounce.example", "sender@capture.example",
     {{"nosuchuser@mx.bounce.example", "5.1.1", true, "unknown user"}}},
    {"postfix-remote-550.eml", "postfix", true, "rfc3464", true, "<postfix-remote-2@sender.example>",
     "mx.bounce.example", "sender@capture.example", {{"bob@remote.example", "5.3.0", true, "500 5.3.0"}}},
    {"postfix-multi.eml", "postfix", true, "rfc3464", true, "<postfix-multi-3@sender.example>", "mx.bounce.example",
     "sender@capture.example",
     {{"ghost@mx.bounce.example", "5.1.1", true, "unknown user: \"ghost\""},
      {"carol@remote.example", "5.3.0", true, "Error: command failed"}}},
    {"postfix-delay.eml", "postfix", true, "rfc3464", false, "<postfix-delay-4@sender.example>",
     "mx.bounce.example", "sender@capture.example", {{"dave@slow.example", "4.3.0", false, "450 4.3.0"}}},
    {"postfix-success.eml", "postfix", false, "rfc3464", true, "<postfix-success-5@sender.example>",
     "mx.bounce.example", "sender@capture.example", {}},
    // Exim 4.96, made by make-exim.sh.
    {"exim-unknown-user.eml", "exim", true, "rfc3464", true, "<exim-unknown-1@sender.example>", "mx.exim.example",
     "sender@capture.example", {{"nosuchuser@mx.exim.example", "5.0.0", true, "Unknown user"}}},
    {"exim-remote-550.eml", "exim", true, "rfc3464", true, "<exim-remote-2@sender.example>", "mx.exim.example",
     "sender@capture.example", {{"bob@remote.example", "5.0.0", true, "500 5.3.0 Error"}}},
    {"exim-multi.eml", "exim", true, "rfc3464", true, "<exim-multi-3@sender.example>", "mx.exim.example",
     "sender@capture.example",
     {{"ghost@mx.exim.example", "5.0.0", true, "Unknown user"}, {"carol@remote.example", "5.0.0", true, "500"}}},
    {"exim-delay.eml", "exim", true, "rfc3464", false, "<exim-delay-4@sender.example>", "mx.exim.example",
     "sender@capture.example", {{"dave@slow.example", "4.0.0", false, "450 4.3.0"}}},
    // Sendmail 8.17, made by make-sendmail.sh.
    {"sendmail-unknown-user.eml", "sendmail", true, "rfc3464", true, "<sendmail-unknown-1@sender.example>",
     "mx.sendmail.example", "sender@capture.example",
     {{"nosuchuser@mx.sendmail.example", "5.1.1", true, "User unknown"}}},
    {"sendmail-remote-550.eml", "sendmail", true, "rfc3464", true, "<sendmail-remote-2@sender.example>",
     "mx.sendmail.example", "sender@capture.example", {{"bob@remote.example", "5.3.0", true, "500 5.3.0"}}},
    {"sendmail-delay.eml", "sendmail", true, "rfc3464", false, "<sendmail-delay-3@sender.example>",
     "mx.sendmail.example", "sender@capture.example", {{"dave@slow.example", "4.3.0", false, "450 4.3.0"}}},
    // OpenSMTPD 6.8, made by make-opensmtpd.sh (CRLF, report inside multipart/mixed).
    {"opensmtpd-remote-550.eml", "opensmtpd", true, "rfc3464", true, "<opensmtpd-remote-1@sender.example>",
     "mx.opensmtpd.example", "sender@capture.example",
     {{"bob@remote.example", "5.0.0", true, "500 5.3.0 Error: command failed"}}},
    {"opensmtpd-delay.eml", "opensmtpd", true, "rfc3464", false, "<opensmtpd-delay-2@sender.example>",
     "mx.opensmtpd.example", "sender@capture.example", {{"dave@slow.example", "4.0.0", false, "450 4.3.0"}}},
    // Written from the documented formats.
    {"qmail-unknown.eml", "qmail", true, "qmail", true, "<20240528081501.31329.qmail@sender.example>",
     "mx.qmail.example", "alice@sender.example",
     {{"nobody@qmail.example", "5.1.1", true, "no mailbox here"},
      {"someone@nowhere.example", "5.1.2", true, "couldn't find any host"},
      {"slowpoke@remote.example", "4.2.2", true, "not going to try again"}}},
    {"yahoo-failure.eml", "yahoo", true, "yahoo", true, "<1717495258123.45678.web@mail.yahoo.example>", "",
     "bob.example@yahoo.example", {{"missing@remote.example", "5.1.1", true, "Remote host said: 550 5.1.1"}}},
    {"exim-old-text.eml", "exim", true, "exim", true, "<exim-old-1@sender.example>", "", "alice@sender.example",
     {{"nosuch@oldexim.example", "", true, "Unrouteable address"},
      {"full@oldexim.example", "", true, "retry timeout exceeded"}}},
    {"exim-old-delay.eml", "exim", true, "exim", false, "<exim-old-2@sender.example>", "mx.oldexim.example", "",
     {{"slow@remote.example", "4.3.0", false, "451 4.3.0 Mailbox temporarily unavailable"}}},
    {"postfix-text.eml", "postfix", true, "postfix-text", true, "<flat-1@sender.example>", "mail.flat.example",
     "alice@sender.example",
     {{"dan@remote.example", "5.1.1", true, "User unknown in local recipient table (in reply to RCPT TO command)"},
      {"eve@alias.example", "", true, "Disk quota exceeded"}}},
    {"sendmail-text.eml", "sendmail", true, "sendmail-text", true, "<200406031502.sm893@client.sender.example>", "",
     "alice@sender.example", {{"frank@remote.example", "5.1.1", true, "User unknown"}}},
    {"exchange-2003.eml", "exchange", true, "exchange", true, "<exch2003-1@sender.example>", "",
     "alice@sender.example",
     {{"grace@exch2003.example", "5.1.1", true, "e-mail account does not exist"},
      {"heidi@exch2003.example", "5.2.2", true, "552 5.2.2 Mailbox full"}}},
    {"exchange-2010-delay.eml", "exchange", true, "exchange", false, "<D1E2F3A4B5C6@EXCH01.corp.exch2010.example>",
     "EXCH01.corp.exch2010.example", "judy@exch2010.example",
     {{"ivan@slow-remote.example", "4.4.7", false, "400 4.4.7 Message delayed"}}},
    {"office365.eml", "office365", true, "rfc3464", true,
     "<AM0PR01MB567812345ABCDEF@AM0PR01MB5678.eurprd01.prod.outlook.example>",
     "AM0PR01MB1234.eurprd01.prod.outlook.example", "kate@o365.example",
     {{"henry@contoso-remote.example", "5.1.10", true, "RESOLVER.ADR.RecipientNotFound"}}},
    {"gmail-failure.eml", "gmail", true, "rfc3464", true, "<CAB1c2D3e4F5g6H7i8J9k0L@mail.gmail.example>",
     "googlemail.example", "liam@gmail.example",
     {{"nobody@remote.example", "5.1.1", true, "does not exist"}}},
    {"gmail-text.eml", "gmail", true, "gmail", true, "<CAA9z8Y7x6W5v4U3t2S1r0Q@mail.gmail.example>", "",
     "mia@gmail.example", {{"noah@remote.example", "5.2.1", true, "550 5.2.1 The email account"}}},
    {"gmail-delay.eml", "gmail", true, "gmail", false, "<CAC1d2E3f4G5h6I7j8K9l0M@mail.gmail.example>", "",
     "peter@gmail.example", {{"olivia@slow-remote.example", "4.3.0", false, "451 4.3.0"}}},
    {"global-dsn.eml", "rfc6533", true, "rfc3464", true, "<intl-1@sender.example>", "mx.intl.example",
     "quinn@sender.example", {{"j\xc3\xbcrgen@m\xc3\xbcnchen.example", "5.1.1", true, "550 5.1.1"}}},
    {"generic-notice.eml", "groupware", true, "domino", true, "", "", "",
     {{"kim@remote.example", "5.7.1", true, "Relaying denied"}}},
    // Not non-delivery notices.
    {"normal-message.eml", "person", false, "", true, "", "", "", {}},
    {"auto-reply.eml", "vacation", false, "", true, "", "", "", {}},
    {"forwarded-bounce.eml", "person", false, "", true, "", "", "", {}},
};

std::string without_first_line(const std::string& s) { return s.substr(s.find('\n') + 1); }

} // namespace

TEST_CASE("dsn: every fixture gives the expected report", "[dsn]") {
    for (const auto& e : expectations) {
        INFO(e.file);
        const std::string text = slurp(dir / e.file);
        REQUIRE(text.rfind("X-Fixture-Source: ", 0) == 0);
        DsnReport r = parsed(text);
        check_invariants(r);
        CHECK(r.is_notice == e.notice);
        CHECK(r.format == e.format);
        CHECK(r.original_message_id == e.message_id);
        CHECK(r.reporting_mta == e.mta);
        CHECK(r.original_sender == e.sender);
        if (e.notice) CHECK(r.permanent == e.permanent);
        REQUIRE(r.recipients.size() == e.rcpts.size());
        for (std::size_t i = 0; i < e.rcpts.size(); ++i) {
            INFO(e.rcpts[i].address);
            CHECK(r.recipients[i].address == e.rcpts[i].address);
            CHECK(r.recipients[i].status == e.rcpts[i].status);
            CHECK(r.recipients[i].permanent == e.rcpts[i].permanent);
            CHECK_THAT(r.recipients[i].diagnostic, Catch::Contains(e.rcpts[i].diagnostic));
        }
        // The fixture marker is just another header field: without it, the same report.
        CHECK(same(r, parsed(without_first_line(text))));
    }
}

TEST_CASE("dsn: the fixtures cover 20 notices from 8 sources, real ones where Debian has the MTA", "[dsn]") {
    std::size_t notices = 0, delays = 0, non_notices = 0;
    std::vector<std::string> sources;
    for (const auto& e : expectations) {
        if (!e.notice) {
            ++non_notices;
            continue;
        }
        ++notices;
        if (!e.permanent) ++delays;
        if (std::find(sources.begin(), sources.end(), e.source) == sources.end()) sources.emplace_back(e.source);
    }
    CHECK(notices >= 20);
    CHECK(sources.size() >= 8);
    CHECK(delays >= 1);
    CHECK(non_notices >= 2);
    std::size_t files = 0;
    for (const auto& f : std::filesystem::directory_iterator(dir)) {
        if (f.path().extension() != ".eml") continue;
        ++files;
        const std::string name = f.path().filename().string();
        bool listed = false;
        for (const auto& e : expectations) listed = listed || name == e.file;
        INFO(name);
        CHECK(listed);
        std::string first = slurp(f.path()).substr(0, 100);
        for (const char* mta : {"postfix", "exim", "sendmail", "opensmtpd"}) {
            std::string script = std::string("make-") + mta + ".sh";
            if (first.find(script) != std::string::npos) CHECK(std::filesystem::exists(dir / script));
        }
    }
    CHECK(files == expectations.size());
}

TEST_CASE("dsn: CRLF and LF give the same report", "[dsn]") {
    for (const auto& e : expectations) {
        INFO(e.file);
        const std::string text = slurp(dir / e.file);
        DsnReport r = parsed(text);
        CHECK(same(r, parsed(to_crlf(text))));
        CHECK(same(r, parsed(to_lf(text))));
    }
}

TEST_CASE("dsn: a truncated notice is read as far as it goes", "[dsn]") {
    const std::string text = slurp(dir / "postfix-unknown-user.eml");
    // Cut inside the report: the recipient's group is incomplete, so the text part tells.
    std::size_t cut = text.find("Original-Recipient:");
    REQUIRE(cut != std::string::npos);
    DsnReport r = parsed(std::string_view(text).substr(0, cut));
    CHECK(r.is_notice);
    CHECK(r.format == "postfix-text");
    REQUIRE(r.recipients.size() == 1);
    CHECK(r.recipients[0].address == "nosuchuser@mx.bounce.example");
    CHECK(r.recipients[0].permanent);
    CHECK(r.original_message_id.empty());

    // Cut inside the returned message's header: what is there still counts.
    std::size_t in_copy = text.find("Message-ID: <postfix-unknown-1");
    REQUIRE(in_copy != std::string::npos);
    DsnReport r2 = parsed(std::string_view(text).substr(0, text.find('\n', in_copy) + 1));
    CHECK(r2.format == "rfc3464");
    CHECK(r2.original_message_id == "<postfix-unknown-1@sender.example>");

    // Every prefix parses, and never claims more than the whole notice.
    for (std::size_t n = 0; n <= text.size(); n += 13) {
        auto p = parse_dsn(std::string_view(text).substr(0, n));
        REQUIRE(p.ok());
        check_invariants(*p);
        CHECK(p->recipients.size() <= 1);
    }
}

TEST_CASE("dsn: reports in nested multiparts, and the nesting bound", "[dsn]") {
    const std::string report = "Content-Type: message/delivery-status\n\n"
                               "Reporting-MTA: dns; mx.nest.example\n\n"
                               "Final-Recipient: rfc822; deep@remote.example\nAction: failed\nStatus: 5.1.1\n";
    auto nested = [&](int levels) {
        std::string body = report;
        for (int i = levels; i > 0; --i) {
            std::string b = "b" + std::to_string(i);
            body = "Content-Type: multipart/" + std::string(i % 2 ? "mixed" : "alternative") + "; boundary=" + b +
                   "\n\n--" + b + "\n" + body + "\n--" + b + "--\n";
        }
        return "From: MAILER-DAEMON@mx.nest.example\nSubject: notice\n" + body;
    };
    DsnReport shallow = parsed(nested(5));
    CHECK(shallow.is_notice);
    REQUIRE(shallow.recipients.size() == 1);
    CHECK(shallow.recipients[0].address == "deep@remote.example");
    CHECK(shallow.reporting_mta == "mx.nest.example");

    DsnReport deep = parsed(nested(static_cast<int>(limits::dsn_depth) + 4));
    check_invariants(deep);
    CHECK(deep.recipients.empty());
}

TEST_CASE("dsn: base64 and quoted-printable parts are decoded", "[dsn]") {
    const std::string msg = "From: MAILER-DAEMON@mx.b64.example\n"
                            "Content-Type: multipart/report; report-type=delivery-status; boundary=\"=_x y\"\n\n"
                            "--=_x y\nContent-Type: text/plain\nContent-Transfer-Encoding: quoted-printable\n\n"
                            "The mail system at host mx.b64.exam=\nple could not deliver.=20\n"
                            "--=_x y\nContent-Type: message/delivery-status\nContent-Transfer-Encoding: base64\n\n"
                            // "Reporting-MTA: dns; mx.b64.example\n\nFinal-Recipient: rfc822; b64@remote.example\n"
                            // "Action: delayed\nStatus: 4.2.2\n", wrapped and without padding.
                            "UmVwb3J0aW5nLU1UQTogZG5zOyBteC5iNjQuZXhhbXBsZQoKRmluYWwtUmVjaXBpZW50OiByZmM4\n"
                            "MjI7IGI2NEByZW1vdGUuZXhhbXBsZQpBY3Rpb246IGRlbGF5ZWQKU3RhdHVzOiA0LjIuMgo\n"
                            "--=_x y--\n";
    DsnReport r = parsed(msg);
    CHECK(r.is_notice);
    CHECK(r.format == "rfc3464");
    CHECK(r.reporting_mta == "mx.b64.example");
    CHECK_FALSE(r.permanent);
    REQUIRE(r.recipients.size() == 1);
    CHECK(r.recipients[0].address == "b64@remote.example");
    CHECK(r.recipients[0].status == "4.2.2");
    CHECK_FALSE(r.recipients[0].permanent);
}

TEST_CASE("dsn: Action decides permanence, then Status", "[dsn]") {
    auto report = [](const std::string& groups) {
        return "From: MAILER-DAEMON@mx.example\n"
               "Content-Type: multipart/report; report-type=delivery-status; boundary=B\n\n"
               "--B\nContent-Type: message/delivery-status\n\nReporting-MTA: dns; mx.example\n\n" +
               groups + "--B--\n";
    };
    // Given up after the queue lifetime: final, though the last reply was 4xx.
    DsnReport expired = parsed(report("Final-Recipient: rfc822; a@x.example\nAction: failed\nStatus: 4.4.7\n\n"));
    REQUIRE(expired.recipients.size() == 1);
    CHECK(expired.recipients[0].permanent);
    CHECK(expired.recipients[0].status == "4.4.7");
    CHECK(expired.permanent);

    // No Action: the status class decides; one delay makes the notice temporary.
    DsnReport mixed = parsed(report("Final-Recipient: rfc822; a@x.example\nStatus: 5.1.1 (bad mailbox)\n\n"
                                    "Final-Recipient: rfc822; b@x.example\nStatus: 4.2.2\n\n"
                                    "Final-Recipient: rfc822; c@x.example\nAction: delivered\nStatus: 2.0.0\n\n"));
    REQUIRE(mixed.recipients.size() == 2);
    CHECK(mixed.recipients[0].permanent);
    CHECK(mixed.recipients[0].status == "5.1.1");
    CHECK_FALSE(mixed.recipients[1].permanent);
    CHECK_FALSE(mixed.permanent);

    // Groups run together without blank lines; Original-Recipient when Final-Recipient is not an address.
    DsnReport packed = parsed(report("Final-Recipient: rfc822; A@X.example\nAction: failed\nStatus: 5.1.1\n"
                                     "Final-Recipient: x400; /G=b/S=c/\nOriginal-Recipient: rfc822;<b@x.example>\n"
                                     "Action: failed\nStatus: 5.1.1\n"));
    REQUIRE(packed.recipients.size() == 2);
    CHECK(packed.recipients[0].address == "a@x.example");
    CHECK(packed.recipients[1].address == "b@x.example");
}

TEST_CASE("dsn: huge input is bounded", "[dsn]") {
    std::string text = slurp(dir / "postfix-unknown-user.eml");
    const DsnReport small = parsed(text);
    // A returned body of 8 MB: only the first limits::dsn_scan_size octets are read.
    std::size_t end = text.rfind("\n--");  // the closing delimiter
    std::string big = text.substr(0, end) + std::string(8 * 1024 * 1024, 'x') + "\n" + text.substr(end);
    CHECK(same(small, parsed(big)));

    std::string over(limits::message_size + 1, 'x');
    auto r = parse_dsn(over);
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().kind == ErrorKind::data);

    // Recipients and parts stop at their bounds.
    std::string many = "From: MAILER-DAEMON@mx.example\n"
                       "Content-Type: multipart/report; report-type=delivery-status; boundary=B\n\n"
                       "--B\nContent-Type: message/delivery-status\n\nReporting-MTA: dns; mx.example\n\n";
    for (int i = 0; i < 1500; ++i)
        many += "Final-Recipient: rfc822; u" + std::to_string(i) + "@x.example\nAction: failed\nStatus: 5.1.1\n\n";
    many += "--B--\n";
    DsnReport m = parsed(many);
    CHECK(m.recipients.size() == limits::dsn_recipients);
    CHECK(m.recipients.back().address == "u999@x.example");

    std::string parts = "From: MAILER-DAEMON@mx.example\nContent-Type: multipart/mixed; boundary=P\n\n";
    for (int i = 0; i < 500; ++i) parts += "--P\nContent-Type: text/plain\n\nnothing here\n";
    parts += "--P\nContent-Type: message/delivery-status\n\nFinal-Recipient: rfc822; late@x.example\n"
             "Action: failed\n--P--\n";
    DsnReport p = parsed(parts);
    check_invariants(p);
    CHECK(p.recipients.empty());  // past limits::dsn_parts

    // A long diagnostic is cut to one line of limits::dsn_diagnostic octets.
    std::string longdiag = "From: MAILER-DAEMON@mx.example\n"
                           "Content-Type: multipart/report; report-type=delivery-status; boundary=B\n\n"
                           "--B\nContent-Type: message/delivery-status\n\nFinal-Recipient: rfc822; l@x.example\n"
                           "Action: failed\nDiagnostic-Code: smtp; 550 " +
                           std::string(2000, 'y') + "\n\tand\x01more\n--B--\n";
    DsnReport l = parsed(longdiag);
    REQUIRE(l.recipients.size() == 1);
    CHECK(l.recipients[0].diagnostic.size() <= limits::dsn_diagnostic);
    CHECK(l.recipients[0].diagnostic.rfind("550 yyy", 0) == 0);
}

TEST_CASE("dsn: a stream is read in a bounded buffer, and counted to its limit", "[dsn]") {
    for (const auto& e : expectations) {
        INFO(e.file);
        const std::string text = slurp(dir / e.file);
        std::istringstream in(text);
        auto r = parse_dsn(in);
        REQUIRE(r.ok());
        CHECK(same(*r, parsed(text)));
    }
    std::string text = slurp(dir / "exim-multi.eml");
    std::string big = text + std::string(3 * limits::dsn_scan_size, 'z');
    std::istringstream in(big);
    auto r = parse_dsn(in);
    REQUIRE(r.ok());
    CHECK(same(*r, parsed(text)));

    std::istringstream over(big);
    auto e = parse_dsn(over, big.size() - 1);
    REQUIRE_FALSE(e.ok());
    CHECK(e.error().kind == ErrorKind::data);
    std::istringstream exact(big);
    CHECK(parse_dsn(exact, big.size()).ok());
}

TEST_CASE("dsn: odd but harmless input", "[dsn]") {
    CHECK_FALSE(parsed("").is_notice);
    CHECK_FALSE(parsed("\n\n\n").is_notice);
    CHECK_FALSE(parsed("no header at all, just text with a@b.example and 550 5.1.1\n").is_notice);

    // An mbox From line before the header.
    std::string text = slurp(dir / "qmail-unknown.eml");
    DsnReport plain = parsed(text);
    CHECK(same(plain, parsed("From MAILER-DAEMON Tue Jun  4 08:15:02 2024\n" + text)));

    // A Message-ID without angle brackets is given with them.
    DsnReport r = parsed("From: MAILER-DAEMON@mx.example\n"
                         "Content-Type: multipart/report; report-type=delivery-status; boundary=B\n\n"
                         "--B\nContent-Type: message/delivery-status\n\n"
                         "Final-Recipient: rfc822; z@x.example\nAction: failed\nStatus: 5.0.0\n\n"
                         "--B\nContent-Type: text/rfc822-headers\n\nMessage-ID: bare@id.example\n"
                         "Return-Path: <>\nFrom: Someone <Someone@Sender.Example>\n--B--\n");
    CHECK(r.original_message_id == "<bare@id.example>");
    CHECK(r.original_sender == "someone@sender.example");

    // Binary junk and NULs in a notice do not reach a diagnostic.
    std::string junk = "From: MAILER-DAEMON@mx.example\nSubject: Undelivered Mail\n\n"
                       "This is the mail system at host mx.example.\n\n<j@x.example>: said ";
    junk += std::string("\0\a\x1b[31m", 7) + " 550 bad" + std::string("\xff\xfe\x80\0", 4);
    DsnReport j = parsed(junk);
    check_invariants(j);
    REQUIRE(j.recipients.size() == 1);
    CHECK(j.format == "postfix-text");
}
