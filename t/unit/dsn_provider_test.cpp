// The provider families of the notice parser (dsn_provider.cpp), the
// auto-replies that are never notices, and encoded Subjects: edge cases the
// fixtures of t/fixtures/dsn/wild do not pin down.
#include "libmail/mail/dsn.hpp"
#include "libmail/mail/dsn_provider.hpp"
#include "libmail/mail/mime.hpp"

#include <catch2/catch.hpp>

#include <string>

using namespace mail;
using namespace mail::dsn_detail;

namespace {

DsnReport parsed(const std::string& text) {
    auto r = parse_dsn(text);
    REQUIRE(r.ok());
    return *r;
}

bool auto_reply(const std::string& header) { return is_auto_reply(parse_mime_header(header + "\n", 100)); }

bool valid_utf8(const std::string& s) {
    for (std::size_t i = 0; i < s.size();) {
        auto c = static_cast<unsigned char>(s[i]);
        std::size_t n = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
        if (n == 0 || i + n > s.size()) return false;
        for (std::size_t k = 1; k < n; ++k)
            if ((static_cast<unsigned char>(s[i + k]) >> 6) != 2) return false;
        i += n;
    }
    return true;
}

const std::string exchange_text =
    "Delivery has failed to these recipients or groups:\n\n"
    "ghost@remote.example\n"
    "The e-mail address you entered couldn't be found.\n\n"
    "Diagnostic information for administrators:\n\n"
    "Generating server: EX1.corp.example\n\n"
    "ghost@remote.example\n"
    "#550 5.1.1 RESOLVER.ADR.RecipNotFound; not found ##\n";

} // namespace

TEST_CASE("dsn provider: RFC 2047 encoded words in a field", "[dsn]") {
    CHECK(decoded_field("=?utf-8?B?VW56dXN0ZWxsYmFyOiBQcsO8ZnVuZw==?=") == "Unzustellbar: Pr\xc3\xbc" "fung");
    CHECK(decoded_field("=?iso-8859-1?Q?Non_remis_:_R=E9union?=") == "Non remis : R\xc3\xa9union");
    // White space between two encoded words goes; around plain words it stays.
    CHECK(decoded_field("=?utf-8?Q?a?= =?utf-8?Q?b?=  plain =?utf-8?Q?c?=") == "ab  plain c");
    // Lower-case encodings and a language tag (RFC 2231).
    CHECK(decoded_field("=?UTF-8*de?q?Gr=C3=BC=C3=9Fe?=") == "Gr\xc3\xbc\xc3\x9f" "e");
    // Not encoded words: left as written.
    CHECK(decoded_field("=?utf-8?X?abc?=") == "=?utf-8?X?abc?=");
    CHECK(decoded_field("=?utf-8?Q?no end") == "=?utf-8?Q?no end");
    CHECK(decoded_field("=??Q?abc?=") == "=??Q?abc?=");
    CHECK(decoded_field("price =? 5") == "price =? 5");
    // windows-1252's C1 range has no table here; controls become spaces.
    CHECK(decoded_field("=?windows-1252?Q?=93x=94?=") == "?x?");
    CHECK(decoded_field("=?utf-8?Q?a=0Ab?=") == "a b");
    // Another charset keeps its octets (ISO-2022-JP stays as JIS, its escapes as spaces).
    CHECK(decoded_field("=?iso-2022-jp?B?GyRCR1s/LklURz0bKEI=?=") == " $BG[?.ITG= (B");
    // Bounded, however long the field.
    std::string huge;
    for (int i = 0; i < 2000; ++i) huge += "=?utf-8?B?QUJDREVGR0g=?= ";
    CHECK(decoded_field(huge).size() <= 4 * limits::dsn_diagnostic);
    // Word starts that never end: each is searched in a bounded window, not to the field's end.
    std::string open_words;
    for (int i = 0; i < 100000; ++i) open_words += "=?a?B?xyz ";
    CHECK(decoded_field(open_words).size() <= 4 * limits::dsn_diagnostic);
    CHECK(parse_dsn("Subject: " + open_words + "\n\nbody\n").ok());
    CHECK(valid_utf8(decoded_field("=?iso-8859-1?B?" + std::string(200, 'z') + "?=")));
}

TEST_CASE("dsn provider: Latin-1 text parts are read as UTF-8, line ends kept", "[dsn]") {
    CHECK(text_as_utf8("ISO-8859-1", "Empf\xe4nger\r\nx\ty") == "Empf\xc3\xa4nger\r\nx\ty");
    CHECK(text_as_utf8(" windows-1252", "\x80") == "?");
    CHECK(text_as_utf8("utf-8", "Empf\xc3\xa4nger") == "Empf\xc3\xa4nger");
    CHECK(text_as_utf8("", "\xe4") == "\xe4");  // unknown: unchanged
}

TEST_CASE("dsn provider: auto-replies are told from Exchange's notices", "[dsn]") {
    CHECK(auto_reply("From: Ann <ann@x.example>\nSubject: Automatic reply: plans"));
    CHECK(auto_reply("From: Ann <ann@x.example>\nSubject: =?utf-8?Q?R=C3=A9ponse_automatique_:_plans?="));
    CHECK(auto_reply("From: Ann <ann@x.example>\nSubject: Re: plans\nAuto-Submitted: auto-replied (vacation)"));
    CHECK(auto_reply("From: Ann <ann@x.example>\nSubject: Re: plans\nX-Autoreply: yes"));
    CHECK(auto_reply("From: Ann <ann@x.example>\nSubject: Re: plans\nPrecedence: auto_reply"));
    // A subject prefix is an auto-reply even from a system mailbox.
    CHECK(auto_reply("From: postmaster@x.example\nSubject: Out of Office: Undeliverable"));
    // Exchange's NDRs say auto-replied too.
    CHECK_FALSE(auto_reply("From: Microsoft Outlook <MicrosoftExchange329e71ec88ae4615bbc36ab6ce41109e@x.example>\n"
                           "Subject: Undeliverable: plans\nAuto-Submitted: auto-replied"));
    CHECK_FALSE(auto_reply("From: someone@x.example\nSubject: Undeliverable: plans\nAuto-Submitted: auto-replied\n"
                           "X-MS-Exchange-Message-Is-Ndr:"));
    CHECK_FALSE(auto_reply("From: postmaster@x.example\nSubject: Undeliverable: Automatic reply: plans\n"
                           "Auto-Submitted: auto-replied"));
    CHECK_FALSE(auto_reply("From: Ann <ann@x.example>\nSubject: plans\nAuto-Submitted: auto-generated"));
    CHECK_FALSE(auto_reply("From: Ann <ann@x.example>\nSubject: plans\nPrecedence: bulk"));
}

TEST_CASE("dsn provider: a notice's text quoted in an auto-reply is no notice", "[dsn]") {
    const std::string ndr = "From: Microsoft Outlook <MicrosoftExchange329e71ec88ae4615bbc36ab6ce41109e@corp.example>\n"
                            "To: a@sender.example\nSubject: Undeliverable: plans\nAuto-Submitted: auto-replied\n\n" +
                            exchange_text;
    DsnReport r = parsed(ndr);
    CHECK(r.is_notice);
    CHECK(r.format == "exchange");
    REQUIRE(r.recipients.size() == 1);
    CHECK(r.recipients[0].status == "5.1.1");
    CHECK(r.reporting_mta == "EX1.corp.example");

    const std::string vacation = "Return-Path: <>\nFrom: Bob <bob@corp.example>\nTo: a@sender.example\n"
                                 "Subject: Re: Undeliverable: plans\nAuto-Submitted: auto-replied\n\n" +
                                 exchange_text;
    r = parsed(vacation);
    CHECK_FALSE(r.is_notice);
    CHECK(r.recipients.empty());
}

TEST_CASE("dsn provider: an encoded Subject alone can say a text is a bounce", "[dsn]") {
    // No family wording, no Return-Path, a person-like sender: only the decoded Subject lets the fallback
    // readers run (the "simple" one, which comes before the generic one, reads it).
    const std::string body = "\n\nThe message could not be delivered:\n\n    kai@remote.example\n"
                             "    550 5.1.1 mailbox unavailable\n";
    DsnReport r = parsed("From: Gateway <gw@relay.example>\nTo: a@sender.example\n"
                         "Subject: =?utf-8?B?R3LDvMOfZSBhdXMgVG9raW8=?=" + body);
    CHECK_FALSE(r.is_notice);  // "Grüße aus Tokio" says nothing a bounce says
    r = parsed("From: Gateway <gw@relay.example>\nTo: a@sender.example\n"
               "Subject: =?utf-8?B?6YWN5L+h5LiN6IO9OiBwbGFucw==?=" + body);  // "配信不能: plans"
    CHECK(r.is_notice);
    CHECK(r.format == "simple");
    REQUIRE(r.recipients.size() == 1);
    CHECK(r.recipients[0].address == "kai@remote.example");
    r = parsed("From: Gateway <gw@relay.example>\nTo: a@sender.example\n"
               "Subject: =?iso-8859-1?Q?N=E3o_entregue:_plans?=" + body);
    CHECK(r.is_notice);
}

TEST_CASE("dsn provider: GMX, Zoho and SES texts read only where their layout says", "[dsn]") {
    const std::string head = "Return-Path: <>\nFrom: mailer-daemon@mx.example\nTo: a@sender.example\n"
                             "Subject: Mail delivery failed\n\n";
    const std::string intro = "This message was created automatically by mail delivery software.\n\n"
                              "A message that you sent could not be delivered to one or more of\n"
                              "its recipients. This is a permanent error. The following address(es) failed:\n\n";
    SECTION("GMX: a quoted address alone on its line, not indented, not a system address") {
        DsnReport r = parsed(head + intro +
                             "\"one@remote.example\":\nSMTP error from remote server after RCPT command:\n"
                             "host: mx.remote.example\n550 5.1.1 unknown\n\n"
                             "  \"indented@remote.example\":\n\n"
                             "\"postmaster@remote.example\":\nReason:\nwhatever\n\n"
                             "\"two@remote.example\": trailing text\n");
        CHECK(r.format == "gmx");
        REQUIRE(r.recipients.size() == 1);
        CHECK(r.recipients[0].address == "one@remote.example");
        CHECK(r.recipients[0].status == "5.1.1");
        CHECK(r.recipients[0].diagnostic == "SMTP error from remote server after RCPT command: 550 5.1.1 unknown");
    }
    SECTION("Zoho: address lines only after the \"failed:\" line, and the status line anywhere") {
        DsnReport r = parsed(head + "This message was created automatically by mail delivery software.\n"
                                    "before@remote.example is not listed yet\n" + intro +
                             "one@remote.example Invalid Address, ERROR_CODE :550, ERROR_CODE :5.1.1 nope\n"
                             "  two@remote.example indented: not Zoho's\n"
                             "[Status: Error, Address: <three@remote.example>, ResponseCode 421, , Host not reachable.]\n");
        CHECK(r.format == "zoho");
        REQUIRE(r.recipients.size() == 2);
        CHECK(r.recipients[0].address == "one@remote.example");
        CHECK(r.recipients[0].status == "5.1.1");
        CHECK(r.recipients[1].address == "three@remote.example");
        CHECK(r.recipients[1].permanent);  // "This is a permanent error" decides over the 421
        CHECK(r.recipients[1].diagnostic == "ResponseCode 421, , Host not reachable.");
    }
    SECTION("Exim's own indented list stays Exim's") {
        DsnReport r = parsed(head + intro + "  one@remote.example\n    550 5.1.1 unknown\n");
        CHECK(r.format == "exim");
        REQUIRE(r.recipients.size() == 1);
    }
    SECTION("mail.ru's Exim notice is named for it") {
        DsnReport r = parsed(head + "Mail.Ru\n\n" + intro + "  one@remote.example\n    550 5.1.1 unknown\n");
        CHECK(r.format == "mailru");
    }
    SECTION("SES: the list ends at the first line that is not an address; a broken bracket is skipped") {
        DsnReport r = parsed(head +
                             "An error occurred while trying to deliver the mail to the following recipients:\n"
                             "one@remote.example\n<two@remote.example>\nnot an address\nthree@remote.example\n\n"
                             "The following message to <broken@remote.example was undeliverable.\n");
        CHECK(r.format == "ses");
        REQUIRE(r.recipients.size() == 2);
        CHECK(r.recipients[0].address == "one@remote.example");
        CHECK(r.recipients[1].address == "two@remote.example");
    }
    SECTION("SES: the reason line gives status and permanence") {
        DsnReport r = parsed(head + "The following message to <one@remote.example> was undeliverable.\n"
                                    "The reason for the problem:\n\n"
                                    "4.4.7 - Delivery expired (message too old) 'timeout'\n");
        CHECK(r.format == "ses");
        REQUIRE(r.recipients.size() == 1);
        CHECK(r.recipients[0].status == "4.4.7");
        CHECK_FALSE(r.recipients[0].permanent);  // the text does not say it gave up; the code decides
    }
}

TEST_CASE("dsn provider: a Latin-1 notice gives UTF-8 diagnostics", "[dsn]") {
    DsnReport r = parsed("Return-Path: <>\nFrom: postmaster@ex.example\nSubject: Unzustellbar: x\n"
                         "Content-Type: text/plain; charset=iso-8859-1\n\n"
                         "Ihre Nachricht hat einige oder alle Empf\xe4nger nicht erreicht.\n\n"
                         "      gert@ex.example am 08.07.2024 14:10\n"
                         "            Das Konto ist nicht vorhanden (Empf\xe4nger).\n"
                         "            <mail.ex.example #5.1.1>\n");
    CHECK(r.format == "exchange");
    REQUIRE(r.recipients.size() == 1);
    CHECK(r.recipients[0].status == "5.1.1");
    CHECK(valid_utf8(r.recipients[0].diagnostic));
}
