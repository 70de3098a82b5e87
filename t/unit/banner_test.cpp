#include "libmail/mail/banner.hpp"
#include "libmail/mail/message.hpp"
#include "libmail/mail/mime.hpp"

#include <catch2/catch.hpp>

#include <fstream>
#include <sstream>
#include <streambuf>

using namespace mail;

namespace {
const std::string banner = "Join us: postage for mail.\nhttps://example.org/join\n";

std::string fixture(const std::string& name) {
    std::ifstream f(std::string(MAILSTAMP_FIXTURES) + "/banner/" + name, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(f), {});
}

// The whole message after append_banner: edited header, new body.
std::string bannered(const std::string& text, std::string_view b = banner) {
    std::istringstream in(text);
    MessageReader msg(in);
    REQUIRE(msg.read_header().ok());
    std::ostringstream body, out;
    REQUIRE(append_banner(msg, b, body).ok());
    REQUIRE(msg.write_header(out).ok());
    return out.str() + body.str();
}

std::size_t count(const std::string& hay, std::string_view needle) {
    std::size_t n = 0;
    for (auto p = hay.find(needle); p != std::string::npos; p = hay.find(needle, p + 1)) ++n;
    return n;
}
} // namespace

TEST_CASE("banner: plain text gets the banner appended in its own line ending") {
    std::string in = fixture("plain-crlf.eml");
    std::string out = bannered(in);
    CHECK(out == in + "\r\nJoin us: postage for mail.\r\nhttps://example.org/join\r\n");
    std::string noeol = fixture("plain-noeol.eml");
    CHECK(bannered(noeol) == noeol + "\n\nJoin us: postage for mail.\nhttps://example.org/join\n");
}

TEST_CASE("banner: a non-ASCII banner on a us-ascii part wraps the message instead") {
    std::string in = fixture("plain-crlf.eml");
    std::string out = bannered(in, "Caf\xc3\xa9 mailstamp\n");
    CHECK(out.find("Content-Type: multipart/mixed; boundary=\"=_mailstamp_") != std::string::npos);
    CHECK(out.find("Content-Transfer-Encoding: 8bit\r\n") != std::string::npos);
    CHECK(out.find("\r\nHello there\r\n") != std::string::npos);
}

namespace {
// The body of a whole message (after its header).
std::string body_of(const std::string& msg) {
    auto p = msg.find("\r\n\r\n");
    auto q = msg.find("\n\n");
    if (p != std::string::npos && (q == std::string::npos || p < q)) return msg.substr(p + 4);
    return msg.substr(q + 2);
}

// The decoded bodies of the leaf parts of a whole message, by content type, in order.
std::vector<std::pair<std::string, std::string>> leaves(const std::string& msg) {
    MimeHeader top = parse_mime_header(msg);
    std::vector<std::pair<std::string, std::string>> out;
    walk_mime(top, [&](const MimePart& p) {
        if (p.type.type == "multipart") return;
        out.emplace_back(p.type.type + "/" + p.type.subtype, decode_body(p.body, p.header));
    });
    return out;
}
} // namespace

TEST_CASE("banner: quoted-printable HTML gets the HTML banner in place, re-encoded") {
    std::string in = fixture("html-qp.eml");
    std::string out = bannered(in);
    CHECK(out.substr(0, out.find("\n\n")) == in.substr(0, in.find("\n\n")));  // header unchanged
    auto l = leaves(out);
    REQUIRE(l.size() == 1);
    CHECK(l[0].first == "text/html");
    CHECK(l[0].second.rfind("<p>caf\xc3\xa9</p>\n<div class=\"mailstamp-banner\"", 0) == 0);
    CHECK(l[0].second.find("Join us: postage for mail.\n<br><a href=\"https://example.org/join\">"
                           "https://example.org/join</a>\n</div>") != std::string::npos);
    for (char c : body_of(out)) CHECK(static_cast<unsigned char>(c) < 0x80);
}

TEST_CASE("banner: quoted-printable text keeps an escape or a soft break at the end of a line or of the part") {
    std::string in = "Content-Type: multipart/alternative; boundary=a\r\n\r\n--a\r\n"
                     "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n"
                     "one =3D\r\ntwo=\r\n three =\r\n--a--\r\n";
    auto l = leaves(bannered(in));
    REQUIRE(l.size() == 1);
    CHECK(l[0].second == "one =\r\ntwo three \r\n\r\nJoin us: postage for mail.\r\nhttps://example.org/join");
}

TEST_CASE("banner: a base64 text part is decoded, given the banner and encoded again") {
    std::string in = fixture("base64.eml");
    std::string out = bannered(in);
    CHECK(out.substr(0, out.find("\n\n")) == in.substr(0, in.find("\n\n")));
    auto l = leaves(out);
    REQUIRE(l.size() == 1);
    CHECK(l[0].second == "Hello world\n\nJoin us: postage for mail.\nhttps://example.org/join\n");
}

TEST_CASE("banner: multipart/mixed around an alternative: both alternatives get their own form, the attachment "
          "is untouched, no part is added") {
    std::string in = fixture("mixed-alt-encoded.eml");
    std::string out = bannered(in);
    CHECK(count(out, "Content-Type: ") == count(in, "Content-Type: "));
    auto before = leaves(in), after = leaves(out);
    REQUIRE(after.size() == 3);
    CHECK(after[0].first == "text/plain");
    CHECK(after[0].second == before[0].second + "\r\n\r\nJoin us: postage for mail.\r\nhttps://example.org/join");
    CHECK(after[1].first == "text/html");
    std::string html = after[1].second;
    auto div = html.find("<div class=\"mailstamp-banner\"");
    REQUIRE(div != std::string::npos);
    CHECK(html.substr(0, div) == before[1].second.substr(0, before[1].second.find("</body>")));
    CHECK(html.substr(html.find("</div>")) == "</div>\r\n</body></html>\r\n");
    CHECK(after[2] == before[2]);
    // the attachment's bytes as written
    std::string att = in.substr(in.find("Content-Type: application/pdf"));
    CHECK(out.find(att) != std::string::npos);
    // every encoded line short
    std::istringstream lines(out);
    for (std::string line; std::getline(lines, line);) CHECK(line.size() <= 78);
}

TEST_CASE("banner: HTML gets it before the last </body>, any case; a non-ASCII banner as character references") {
    std::string in = fixture("html-two-body.eml");
    std::string out = bannered(in, "Caf\xc3\xa9 & <friends>\n");
    std::string body = body_of(out);
    CHECK(body.find("<!-- quoted: </BODY> -->\n<p>two</p>\n<div") != std::string::npos);
    CHECK(body.find("Caf&#xE9; &amp; &lt;friends&gt;\n</div>\n</BODY>\n</html>\n") != std::string::npos);
    CHECK(count(out, "mailstamp-banner") == 1);
    std::string noend = "Content-Type: text/html\n\n<p>hi</p>\n";
    CHECK(body_of(bannered(noend)).rfind("<p>hi</p>\n<div", 0) == 0);
}

TEST_CASE("banner: an alternative whose HTML is in UTF-16 is left alone; the text alternative still gets it") {
    std::string in = fixture("alt-utf16.eml");
    std::string out = bannered(in);
    CHECK(out.find("plain words\n\nJoin us: postage for mail.\nhttps://example.org/join\n--a\n") !=
          std::string::npos);
    CHECK(out.find("//48AHAAPgA=\n--a--\n") != std::string::npos);
    CHECK(count(out, "Join us") == 1);
}

TEST_CASE("banner: multipart/mixed gets a new part before its closing delimiter when its first part is text") {
    std::string in = "Content-Type: multipart/mixed; boundary=\"outer b\"\n\npreamble\n--outer b\n"
                     "Content-Type: text/plain\n\nhi\n--outer b\nContent-Type: application/octet-stream\n"
                     "Content-Transfer-Encoding: base64\n\nAAEC\n--outer b--\nepilogue\n";
    std::string out = bannered(in);
    std::string expect_tail = "AAEC\n--outer b\nContent-Type: text/plain; charset=utf-8\n"
                              "Content-Transfer-Encoding: 7bit\nContent-Disposition: inline\n\n"
                              "Join us: postage for mail.\nhttps://example.org/join\n--outer b--\nepilogue\n";
    CHECK(out.size() > expect_tail.size());
    CHECK(out.substr(out.size() - expect_tail.size()) == expect_tail);
    CHECK(out.substr(0, out.find("AAEC")) == in.substr(0, in.find("AAEC")));
}

TEST_CASE("banner: multipart/mixed whose first part is an alternative: the banner goes inside it") {
    std::string in = fixture("mixed.eml");
    std::string out = bannered(in);
    CHECK(out == in.substr(0, in.find("hi\n--inner--")) +
                     "hi\n\nJoin us: postage for mail.\nhttps://example.org/join\n" +
                     in.substr(in.find("\n--inner--") + 1));
}

TEST_CASE("banner: multipart/mixed that never closes passes through unchanged") {
    std::string in = fixture("mixed-open.eml");
    CHECK(bannered(in) == in);
    std::string last = "Content-Type: multipart/mixed; boundary=b\n\n--b\n\nx\n--b--";
    CHECK(bannered(last).find("Join us") != std::string::npos);
}

namespace {
class Counting : public std::streambuf {
public:
    std::size_t n = 0;

protected:
    std::streamsize xsputn(const char*, std::streamsize k) override {
        n += static_cast<std::size_t>(k);
        return k;
    }
    int_type overflow(int_type c) override {
        ++n;
        return traits_type::not_eof(c);
    }
};

// A stream of a header and then size octets of body lines, produced on demand.
class BigMessage : public std::streambuf {
public:
    BigMessage(std::string header, std::size_t size) : header_(std::move(header)), left_(size) {
        setg(header_.data(), header_.data(), header_.data() + header_.size());
    }

protected:
    int_type underflow() override {
        if (left_ == 0) return traits_type::eof();
        std::size_t n = std::min(left_, sizeof chunk_);
        for (std::size_t i = 0; i < n; ++i) chunk_[i] = (i % 64 == 63) ? '\n' : 'x';
        left_ -= n;
        setg(chunk_, chunk_, chunk_ + n);
        return traits_type::to_int_type(chunk_[0]);
    }

private:
    std::string header_;
    std::size_t left_;
    char chunk_[8192];
};
} // namespace

TEST_CASE("banner: a 20 MB multipart body streams through") {
    BigMessage src("Content-Type: multipart/mixed; boundary=q\n\n--q\n\n", 20u << 20);
    std::istream in(&src);
    MessageReader msg(in);
    REQUIRE(msg.read_header().ok());
    Counting c;
    std::ostream out(&c);
    REQUIRE(append_banner(msg, banner, out).ok());
    CHECK(c.n == (20u << 20) + 5);  // never closed: nothing added, nothing lost
}

TEST_CASE("banner: a 20 MB HTML part streams through, the </body> candidate given up past its bound") {
    BigMessage src("Content-Type: text/html; charset=utf-8\nContent-Transfer-Encoding: 8bit\n\n</body>\n",
                   20u << 20);
    std::istream in(&src);
    MessageReader msg(in);
    REQUIRE(msg.read_header().ok());
    Counting c;
    std::ostream out(&c);
    REQUIRE(append_banner(msg, banner, out).ok());
    CHECK(c.n > (20u << 20) + 8);
}

TEST_CASE("banner: a transfer encoding with a bare CR in it is no encoding we know: the body is kept as written") {
    // Found by the banner fuzz target (t/fixtures/banner/fuzz-garbled-cte.eml): "bas<CR>e64" read as base64
    // made the body be decoded and encoded again, dropping its non-base64 octets.
    const std::string body = "SGVsbG8gd.0 not: really base64\n";
    std::string out = bannered("From: a@b.example\nContent-Type: text/plain\nContent-Transfer-Encoding: bas\re64\n\n" + body);
    CHECK(out.find(body) != std::string::npos);
    CHECK(count(out, "Join us: postage for mail.") == 1);
    // The same body under a real base64 field is read as base64 (and re-encoded with the banner).
    out = bannered("From: a@b.example\nContent-Type: text/plain\nContent-Transfer-Encoding: base64\n\n" + body);
    CHECK(out.find(body) == std::string::npos);
}
