// Challenge/response, the pure parts: the suppression rules, the template, the challenge message.
#include "libmail/policy/challenge.hpp"
#include "libmail/mail/message.hpp"

#include <catch2/catch.hpp>

#include <sstream>

using namespace mail;

namespace {
std::string suppressed(const std::string& header, const std::string& sender = "ann@x.example") {
    std::istringstream in(header + "\nbody\n");
    MessageReader msg(in);
    REQUIRE(msg.read_header());
    return challenge_suppressed(msg, sender);
}
} // namespace

TEST_CASE("challenge: the suppression rules one by one") {
    CHECK(suppressed("Subject: hi\n") == "");
    CHECK(suppressed("Subject: hi\n", "") == "null sender");
    CHECK(suppressed("Subject: hi\n", "MAILER-DAEMON@x.example") == "sender is MAILER-DAEMON");
    CHECK(suppressed("Subject: hi\n", "Postmaster@x.example") == "sender is postmaster");
    CHECK(suppressed("Auto-Submitted: auto-replied\n") == "Auto-Submitted: auto-replied");
    CHECK(suppressed("Auto-Submitted: auto-generated; owner-email=x\n") == "Auto-Submitted: auto-generated");
    CHECK(suppressed("Auto-Submitted: No\n") == "");
    CHECK(suppressed("List-Id: <l.x.example>\n") == "mailing list (List-Id)");
    CHECK(suppressed("list-unsubscribe: <mailto:x>\n") == "mailing list (list-unsubscribe)");
    CHECK(suppressed("Precedence: bulk\n") == "Precedence: bulk");
    CHECK(suppressed("Precedence: List\n") == "Precedence: list");
    CHECK(suppressed("Precedence: junk\n") == "Precedence: junk");
    CHECK(suppressed("Precedence: first-class\n") == "");
    CHECK(suppressed("X-Mailstamp-Challenge: 0123456789abcdef\n") == "one of our own challenges");
}

TEST_CASE("challenge: templates replace known variables only") {
    std::map<std::string, std::string> v{{"a", "1"}, {"b", "two"}};
    CHECK(render_template("${a} and ${b}", v) == "1 and two");
    CHECK(render_template("${c} stays, $$ is a dollar, $ too", v) == "${c} stays, $ is a dollar, $ too");
    CHECK(render_template("${a", v) == "${a");
    CHECK(render_template("", v) == "");
}

TEST_CASE("challenge: the message quotes the header, never the body, and names its held message") {
    ChallengeInfo ci;
    ci.id = "0123456789abcdef";
    ci.sender = "ann@x.example";
    ci.recipient = "bob@ours.example";
    ci.confirm_address = "bob+aaaa@ours.example";
    ci.subject = "hello\r\nBcc: evil@x";
    ci.message_id = "<m1@x.example>";
    ci.headers = "From: ann@x.example\nSubject: hello\n\nthe body\n";
    ci.received = 1700000000;
    ci.hold_seconds = 14 * 86400;
    ci.hostname = "mx.ours.example";
    std::string m = compose_challenge(ci, "to ${recipient}, held ${hold_time}, via ${confirm_address}\n${headers}", 1700000100);
    CHECK(m.find("From: <bob+aaaa@ours.example>\n") != std::string::npos);
    CHECK(m.find("To: <ann@x.example>\n") != std::string::npos);
    CHECK(m.find("Auto-Submitted: auto-replied\n") != std::string::npos);
    CHECK(m.find("Precedence: bulk\n") != std::string::npos);
    CHECK(m.find("Message-ID: <challenge.0123456789abcdef@mx.ours.example>\n") != std::string::npos);
    CHECK(m.find("In-Reply-To: <m1@x.example>\n") != std::string::npos);
    CHECK(m.find("\nBcc:") == std::string::npos);  // the subject cannot add a field
    CHECK(m.find("to bob@ours.example, held 14 days, via bob+aaaa@ours.example\n") != std::string::npos);
    CHECK(m.find("    Subject: hello\n") != std::string::npos);
    CHECK(m.find("the body") == std::string::npos);
    CHECK(challenge_id_of("<challenge.0123456789abcdef@mx.ours.example>") == "0123456789abcdef");
    CHECK(challenge_id_of("<CHALLENGE.0123456789ABCDEF@x>") == "0123456789abcdef");
    CHECK(challenge_id_of("<challenge.0123@x>") == "");
    CHECK(challenge_id_of("<m1@x>") == "");
    CHECK(human_duration(86400) == "1 day");
    CHECK(human_duration(7200) == "2 hours");
    CHECK(human_duration(61) == "61 seconds");
}

namespace {
std::string digest_of(const std::string& sender, std::vector<std::string> rcpts, std::vector<std::string> pieces) {
    DeliveryDigest d(sender, std::move(rcpts));
    for (const auto& p : pieces) d.update(p);
    return d.finish();
}
} // namespace

TEST_CASE("challenge: the delivery digest knows the same delivery, and only that") {
    const std::string m = "From: a@x.example\nSubject: invoice\n\nbody one\n";
    std::string k = digest_of("a@x.example", {"bob@ours.example"}, {m});
    CHECK(k.size() == 7 + 64);
    CHECK(k.rfind("sha256:", 0) == 0);
    // Fed in any pieces, the same octets give the same key.
    CHECK(digest_of("a@x.example", {"bob@ours.example"}, {m.substr(0, 5), "", m.substr(5)}) == k);
    // Look-alikes: one octet of the body, of the header; the same size and no Message-ID all the same.
    CHECK(digest_of("a@x.example", {"bob@ours.example"}, {"From: a@x.example\nSubject: invoice\n\nbody two\n"}) != k);
    CHECK(digest_of("a@x.example", {"bob@ours.example"}, {"From: a@x.example\nSubject: invoicf\n\nbody one\n"}) != k);
    // The envelope: another sender, another recipient, one more recipient.
    CHECK(digest_of("b@x.example", {"bob@ours.example"}, {m}) != k);
    CHECK(digest_of("a@x.example", {"carol@ours.example"}, {m}) != k);
    CHECK(digest_of("a@x.example", {"bob@ours.example", "carol@ours.example"}, {m}) != k);
    CHECK(digest_of("", {"bob@ours.example"}, {m}) != k);
    // The recipients' order is not the delivery's.
    CHECK(digest_of("a@x.example", {"carol@ours.example", "bob@ours.example"}, {m}) ==
          digest_of("a@x.example", {"bob@ours.example", "carol@ours.example"}, {m}));
    // Where the envelope ends and the message begins is never ambiguous.
    CHECK(digest_of("a@x.example", {"b"}, {"c"}) != digest_of("a@x.example", {"bc"}, {""}));
    CHECK(digest_of("a", {}, {"b"}) != digest_of("ab", {}, {""}));
}
