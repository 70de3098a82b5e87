// The text notices of dsn_vendor.cpp: edge cases the fixtures in
// t/fixtures/dsn/wild do not show (bounds, sections, look-alikes).
#include "libmail/mail/dsn.hpp"

#include <catch2/catch.hpp>

#include <string>

using namespace mail;

namespace {

DsnReport parsed(const std::string& text) {
    auto r = parse_dsn(text);
    REQUIRE(r.ok());
    return *r;
}

// A notice from a mail system: the given header lines (after Return-Path <> unless person), then body.
std::string notice(const std::string& header, const std::string& body, bool person = false) {
    std::string m = person ? "From: Pat Person <pat@person.example>\n" : "Return-Path: <>\nFrom: postmaster@mx.example\n";
    m += "To: alice@sender.example\nDate: Tue, 1 Dec 2026 10:00:00 +0000\nMessage-ID: <t@mx.example>\n";
    return m + header + "\n" + body;
}

const std::string domino_body = "Your message\n\n  Subject: x\n\nwas not delivered to:\n\n  bob@notes.example\n\n"
                                "because:\n\n  User bob (bob@notes.example) not listed in Domino Directory\n";

} // namespace

TEST_CASE("dsn vendor: a person quoting a Domino notice is not a notice", "[dsn][dsn-vendor]") {
    DsnReport r = parsed(notice("Subject: Fwd: DELIVERY FAILURE: User bob not listed\n",
                                "Look what I got:\n\n" + domino_body, true));
    CHECK_FALSE(r.is_notice);
    CHECK(r.recipients.empty());
    // The same from the mail system is one; its own subject is enough without Return-Path <>.
    DsnReport d = parsed(notice("Subject: DELIVERY FAILURE: User bob not listed\n", domino_body));
    CHECK(d.is_notice);
    CHECK(d.format == "domino");
    REQUIRE(d.recipients.size() == 1);
    CHECK(d.recipients[0].address == "bob@notes.example");
    CHECK(d.recipients[0].diagnostic == "User bob (bob@notes.example) not listed in Domino Directory");
    DsnReport s = parsed("From: Router <router@notes.example>\nSubject: DELIVERY FAILURE: x\n\n" + domino_body);
    CHECK(s.is_notice);
    CHECK(s.format == "domino");
}

TEST_CASE("dsn vendor: a reply whose subject names a bounce is a person's mail", "[dsn][dsn-vendor]") {
    DsnReport r = parsed(notice("Subject: Re: Undeliverable: Quarterly numbers\n",
                                "Your message to <ned@simple.example> could not be delivered, says my server.\n",
                                true));
    CHECK_FALSE(r.is_notice);
}

TEST_CASE("dsn vendor: Domino's recipients stop at the bound", "[dsn][dsn-vendor]") {
    std::string body = "Your message\n\nwas not delivered to:\n\n";
    for (std::size_t i = 0; i < limits::dsn_recipients + 50; ++i)
        body += "  user" + std::to_string(i) + "@notes.example\n";
    body += "\nbecause:\n\n  Mail file is full\n";
    DsnReport r = parsed(notice("Subject: DELIVERY FAILURE: full\n", body));
    CHECK(r.is_notice);
    CHECK(r.recipients.size() == limits::dsn_recipients);
}

TEST_CASE("dsn vendor: MDaemon, a reply to DATA fails every recipient accepted, not the others", "[dsn][dsn-vendor]") {
    std::string body =
        "The attached message had PERMANENT fatal delivery errors!\n\n--- Session Transcript ---\n"
        " Tue 2026-12-01 12:00:01: --> RCPT To:<ann@remote.example>\n"
        " Tue 2026-12-01 12:00:01: <-- 250 2.1.5 Ok\n"
        " Tue 2026-12-01 12:00:01: --> RCPT To:<bea@remote.example>\n"
        " Tue 2026-12-01 12:00:01: <-- 450 4.2.0 Mailbox busy\n"
        " Tue 2026-12-01 12:00:01: --> RCPT To:<cai@remote.example>\n"
        " Tue 2026-12-01 12:00:01: <-- 250 2.1.5 Ok\n"
        " Tue 2026-12-01 12:00:01: --> DATA\n"
        " Tue 2026-12-01 12:00:02: <-- 554 5.7.1 Rejected by content filter\n"
        "--- End Transcript ---\n";
    DsnReport r = parsed(notice("Subject: Permanent Delivery Failure\nX-Mailer: MDaemon PRO v13\n", body));
    CHECK(r.format == "mdaemon");
    REQUIRE(r.recipients.size() == 3);
    CHECK(r.recipients[0].address == "bea@remote.example");
    CHECK(r.recipients[0].status == "4.2.0");
    CHECK(r.recipients[0].permanent);  // MDaemon gave up: the 450 was the last word
    CHECK(r.recipients[1].address == "ann@remote.example");
    CHECK(r.recipients[1].status == "5.7.1");
    CHECK(r.recipients[2].address == "cai@remote.example");
    CHECK(r.permanent);
}

TEST_CASE("dsn vendor: IMail's 'Delivery failed N attempts' is final, other lines go by their code",
          "[dsn][dsn-vendor]") {
    DsnReport r = parsed(notice("Subject: Undeliverable Mail\nX-Mailer: <SMTP32 v8.22>\n",
                                "Delivery failed 5 attempts: dan@slow.example\n"
                                "undeliverable to eve@remote.example\n\n"
                                "Body of message generated response:\n451 4.3.0 Try again later\n\n"
                                "Original message follows.\n\nTo: someone@else.example\nSubject: x\n"));
    CHECK(r.format == "smtp32");
    REQUIRE(r.recipients.size() == 2);
    CHECK(r.recipients[0].address == "dan@slow.example");
    CHECK(r.recipients[0].permanent);
    CHECK(r.recipients[1].address == "eve@remote.example");
    CHECK(r.recipients[1].status == "4.3.0");
    CHECK_FALSE(r.recipients[1].permanent);
    CHECK_FALSE(r.permanent);
}

TEST_CASE("dsn vendor: Courier's sections decide permanence for the paragraphs under them", "[dsn][dsn-vendor]") {
    std::string body = "This is a delivery status notification from mx.courier.example,\n"
                       "running the Courier mail server, version 0.68.2.\n\n"
                       "                           UNDELIVERABLE MAIL\n\n"
                       "<fin@remote.example>:\n    mx.remote.example [192.0.2.1]:\n"
                       ">>> RCPT TO:<fin@remote.example>\n<<< 450 4.2.1 Try later\n\n"
                       "                           DELAYS IN DELIVERING YOUR MESSAGE\n\n"
                       "<gil@slow.example>:\n    DNS lookup failed.\n";
    DsnReport r = parsed(notice("Subject: NOTICE: mail delivery status.\n", body));
    CHECK(r.format == "courier");
    CHECK(r.reporting_mta == "mx.courier.example");
    REQUIRE(r.recipients.size() == 2);
    CHECK(r.recipients[0].permanent);  // undeliverable: Courier gave up
    CHECK(r.recipients[0].diagnostic == "450 4.2.1 Try later");
    CHECK_FALSE(r.recipients[1].permanent);
    CHECK(r.recipients[1].diagnostic == "DNS lookup failed.");
}

TEST_CASE("dsn vendor: iPlanet reports the recipient address, not the original one", "[dsn][dsn-vendor]") {
    std::string body = "This report relates to a message you sent with the following header fields:\n\n"
                       "  Subject: x\n\nYour message cannot be delivered to the following recipients:\n\n"
                       "  Recipient address: hal@ims.example\n  Original address: h.smith@ims.example\n"
                       "  Reason: Over quota\n";
    DsnReport r = parsed(notice("Subject: Delivery Notification: Delivery has failed\n", body));
    CHECK(r.format == "iplanet");
    REQUIRE(r.recipients.size() == 1);
    CHECK(r.recipients[0].address == "hal@ims.example");
    CHECK(r.recipients[0].diagnostic == "Over quota");
}

TEST_CASE("dsn vendor: simple notices skip the notice's own and system addresses, need a mail system",
          "[dsn][dsn-vendor]") {
    std::string body = "Your message to <ivo@simple.example> could not be delivered: mailbox full.\n"
                       "Mail to <postmaster@simple.example> was not delivered either.\n"
                       "Your copy to <alice@sender.example> was rejected.\n";
    DsnReport r = parsed(notice("Subject: Returned mail\n", body));
    CHECK(r.format == "simple");
    REQUIRE(r.recipients.size() == 1);
    CHECK(r.recipients[0].address == "ivo@simple.example");
    DsnReport p = parsed(notice("Subject: about your mail\n", body, true));
    CHECK_FALSE(p.is_notice);
}

TEST_CASE("dsn vendor: a list announced without addresses after it gives no recipient", "[dsn][dsn-vendor]") {
    DsnReport r = parsed(notice("Subject: Undeliverable\n",
                                "Your message could not be delivered to the following recipients:\n\n"
                                "Please contact your administrator.\n"));
    CHECK(r.recipients.empty());
    CHECK(r.format != "simple");
}

TEST_CASE("dsn vendor: many look-alike lines stay within the text bound", "[dsn][dsn-vendor]") {
    std::string body;
    for (std::size_t i = 0; i < limits::dsn_text_lines + 100; ++i)
        body += i % 2 ? "because:\n" : "was not delivered to:\n";
    DsnReport r = parsed(notice("Subject: DELIVERY FAILURE: x\n", body));
    CHECK(r.recipients.empty());
    std::string mixed;
    for (std::size_t i = 0; i < 5000; ++i) mixed += "<a" + std::to_string(i) + "@x.example>:\n<<< 550 no\n\n";
    DsnReport m = parsed(notice("Subject: x\n", "running the Courier mail server\n" + mixed));
    CHECK(m.recipients.size() == limits::dsn_recipients);
}
