#include "libmail/mail/banner.hpp"
#include "libmail/mail/message.hpp"

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

std::string boundary_of(const std::string& text) {
    auto p = text.find("boundary=\"");
    REQUIRE(p != std::string::npos);
    p += 10;
    return text.substr(p, text.find('"', p) - p);
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

TEST_CASE("banner: quoted-printable HTML and base64 parts are wrapped with their bytes intact") {
    for (const char* name : {"html-qp.eml", "base64.eml"}) {
        std::string in = fixture(name);
        std::string out = bannered(in);
        std::string b = boundary_of(out);
        CHECK(count(out, "--" + b + "\n") == 2);
        CHECK(count(out, "--" + b + "--\n") == 1);
        CHECK(count(out, "MIME-Version: 1.0") == 1);
        std::string body = in.substr(in.find("\n\n") + 2);
        // The first part: the original Content-* fields, an empty line, the original body unchanged.
        std::size_t part = out.find("--" + b + "\n") + b.size() + 3;
        std::size_t blank = out.find("\n\n", part);
        std::string part_header = out.substr(part, blank + 1 - part);
        CHECK(part_header.find("Content-Type: ") != std::string::npos);
        CHECK(part_header.find("Content-Transfer-Encoding: ") != std::string::npos);
        CHECK(out.compare(blank + 2, body.size(), body) == 0);
        CHECK(count(out, "Join us: postage for mail.") == 1);
        // The top-level header keeps no Content-Transfer-Encoding of the original.
        std::string top = out.substr(0, out.find("\n\n"));
        CHECK(top.find("Content-Transfer-Encoding") == std::string::npos);
    }
}

TEST_CASE("banner: multipart/mixed gets a new part before its closing delimiter, nested ones untouched") {
    std::string in = fixture("mixed.eml");
    std::string out = bannered(in);
    std::string expect_tail = "AAEC\n--outer b\nContent-Type: text/plain; charset=utf-8\n"
                              "Content-Transfer-Encoding: 7bit\nContent-Disposition: inline\n\n"
                              "Join us: postage for mail.\nhttps://example.org/join\n--outer b--\nepilogue\n";
    CHECK(out.size() > expect_tail.size());
    CHECK(out.substr(out.size() - expect_tail.size()) == expect_tail);
    CHECK(count(out, "--inner--") == 1);
    CHECK(out.substr(0, out.find("AAEC")) == in.substr(0, in.find("AAEC")));
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
