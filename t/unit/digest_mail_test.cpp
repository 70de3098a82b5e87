#include "libmail/mail/digest_mail.hpp"

#include "libmail/base/codec.hpp"

#include <catch2/catch.hpp>

using namespace mail;

namespace {

DigestMail sample() {
    DigestMail d;
    d.id = "0123456789abcdef";
    d.recipient = "bob@ours.example";
    d.from = "bob+aaaa@ours.example";
    d.all = "bob+all@ours.example";
    d.hostname = "mx.ours.example";
    d.date = 1800000000;
    d.expires = 1800000000 + 86400;
    DigestEntry e;
    e.id = "1111222233334444";
    e.sender = "ann@stranger.example";
    e.subject = "<script>alert(1)</script> & \"friends\"";
    e.received = 1799990000;
    e.size = 2048;
    e.category = "Unknown [B], challenged";
    e.why = "sender not known";
    e.release = "bob+rel@ours.example";
    e.whitelist = "bob+wl@ours.example";
    d.entries.push_back(e);
    return d;
}

// The decoded content of the part whose Content-Type starts with type.
std::string part(const std::string& m, const std::string& type) {
    auto at = m.find("Content-Type: " + type);
    REQUIRE(at != std::string::npos);
    auto body = m.find("\n\n", at) + 2;
    auto end = m.find("--=_mailstamp_digest_", body);
    std::string b64;
    for (char c : m.substr(body, end - body))
        if (c != '\n') b64 += c;
    auto t = base64_decode(b64);
    REQUIRE(t);
    return *t;
}

} // namespace

TEST_CASE("digest_mail: HTML metacharacters are escaped; mailto URIs are percent-encoded") {
    CHECK(html_escape("<a href=\"x\">&'</a>") == "&lt;a href=&quot;x&quot;&gt;&amp;&#39;&lt;/a&gt;");
    CHECK(mailto_uri("bob+x1@ours.example", "release 12") == "mailto:bob%2Bx1@ours.example?subject=release%2012");
    CHECK(mailto_uri("a\"b@x.example", "") == "mailto:a%22b@x.example");
}

TEST_CASE("digest_mail: RFC 2047 encoded words in a subject are decoded; others are left as written") {
    CHECK(decode_words("=?UTF-8?B?SMOpbGxv?=") == "H\xc3\xa9llo");
    CHECK(decode_words("=?iso-8859-1?q?caf=E9_au_lait?= now") == "caf\xc3\xa9 au lait now");
    CHECK(decode_words("a =?utf-8?q?x?= =?utf-8?q?y?= b") == "a xy b");  // the space between two words goes
    CHECK(decode_words("=?koi8-r?b?8MvJ?=") == "=?koi8-r?b?8MvJ?=");
    CHECK(decode_words("=?utf-8?x?abc?=") == "=?utf-8?x?abc?=");
    CHECK(decode_words("=?utf-8?b?!!!?=") == "=?utf-8?b?!!!?=");
    CHECK(decode_words("plain =? text ?= here") == "plain =? text ?= here");
    CHECK(decode_words("=?utf-8?q?a=0D=0Ab?=") == "a\r\nb");
    CHECK(digest_subject("=?utf-8?q?a=0D=0Ab?=") == "a??b");  // then made one line
    CHECK(digest_subject("=?utf-8?b?PHNjcmlwdD4=?=") == "<script>");
    CHECK(html_escape(digest_subject("=?utf-8?b?PHNjcmlwdD4=?=")) == "&lt;script&gt;");
}

TEST_CASE("digest_mail: subjects are cut to a bounded line, never empty") {
    CHECK(digest_subject("") == "(no subject)");
    CHECK(digest_subject("  hi  ") == "hi");
    CHECK(digest_subject("a\r\nb") == "a??b");
    std::string long_one(500, 'x');
    auto cut = digest_subject(long_one);
    CHECK(cut.size() <= digest_subject_max);
    CHECK(cut.substr(cut.size() - 3) == "...");
    // not through a UTF-8 sequence
    std::string u;
    for (int i = 0; i < 60; ++i) u += "\xc3\xa9";
    auto cu = digest_subject(u);
    CHECK(cu.size() <= digest_subject_max);
    CHECK((static_cast<unsigned char>(cu[cu.size() - 4]) & 0xc0) != 0xc0);
}

TEST_CASE("digest_mail: the message is multipart/alternative, auto-generated, never bulk, text and safe HTML") {
    DigestMail d = sample();
    std::string m = compose_digest(d);
    CHECK(m.find("\nAuto-Submitted: auto-generated\n") != std::string::npos);
    CHECK(m.find("Precedence") == std::string::npos);
    CHECK(m.find("From: \"Held mail\" <bob+aaaa@ours.example>\n") == 0);
    CHECK(m.find("\nTo: <bob@ours.example>\n") != std::string::npos);
    CHECK(m.find("Content-Type: multipart/alternative; boundary=\"=_mailstamp_digest_0123456789abcdef\"") !=
          std::string::npos);
    CHECK(m.find("\n--=_mailstamp_digest_0123456789abcdef--\n") != std::string::npos);
    for (std::size_t a = 0, b; a < m.size(); a = b + 1) {
        b = m.find('\n', a);
        if (b == std::string::npos) b = m.size();
        CHECK(b - a <= 998);
    }
    std::string text = part(m, "text/plain");
    CHECK(text.find("From:      ann@stranger.example") != std::string::npos);
    CHECK(text.find("Release:   <bob+rel@ours.example>") != std::string::npos);
    CHECK(text.find("Whitelist: <bob+wl@ours.example>") != std::string::npos);
    CHECK(text.find("<bob+all@ours.example>") != std::string::npos);
    std::string html = part(m, "text/html");
    CHECK(html.find("<script>") == std::string::npos);
    CHECK(html.find("&lt;script&gt;alert(1)&lt;/script&gt; &amp; &quot;friends&quot;") != std::string::npos);
    CHECK(html.find("href=\"mailto:bob%2Brel@ours.example?subject=release%201111222233334444\"") != std::string::npos);
    CHECK(html.find("href=\"mailto:bob%2Bwl@ours.example") != std::string::npos);
    CHECK(html.find("href=\"mailto:bob%2Ball@ours.example") != std::string::npos);
    // No images, scripts, styles or links to anywhere but mailto:.
    for (const char* bad : {"<img", "<script", "<link", "<iframe", "<object", "<style", "http:", "https:", "src="})
        CHECK(html.find(bad) == std::string::npos);
}

TEST_CASE("digest_mail: a notice (null sender) has no whitelist address, and says so") {
    DigestMail d = sample();
    d.entries[0].sender = "";
    d.entries[0].whitelist = "";
    std::string text = digest_text(d);
    CHECK(text.find("<> (a notice)") != std::string::npos);
    CHECK(text.find("Whitelist:") == std::string::npos);
    CHECK(digest_html(d).find("whitelist the sender") == std::string::npos);
}
