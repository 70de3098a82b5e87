#include "libmail/mail/message.hpp"

#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <streambuf>

using namespace mail;

namespace {
std::string slurp(const std::filesystem::path& p) {
    std::ifstream f(p, std::ios::binary);
    std::stringstream ss;
    ss << f.rdbuf();
    return ss.str();
}

// Reads text, applies edit, writes everything back.
template <class Edit>
std::string rewrite(const std::string& text, Edit edit) {
    std::istringstream in(text);
    MessageReader r(in);
    auto h = r.read_header();
    REQUIRE(h.ok());
    edit(r);
    std::ostringstream out;
    REQUIRE(r.write_header(out).ok());
    REQUIRE(r.copy_body(out).ok());
    return out.str();
}
std::string same(const std::string& text) {
    return rewrite(text, [](MessageReader&) {});
}

Error header_error(const std::string& text, std::size_t max = limits::message_size) {
    std::istringstream in(text);
    MessageReader r(in, max);
    auto h = r.read_header();
    REQUIRE_FALSE(h.ok());
    return h.error();
}

// An endless-looking body generated on the fly: never held anywhere.
class GenBuf : public std::streambuf {
public:
    GenBuf(std::string head, std::size_t body) : head_(std::move(head)), left_(body) {
        setg(head_.data(), head_.data(), head_.data() + head_.size());
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
    std::string head_;
    std::size_t left_;
    char chunk_[8192];
};

class CountBuf : public std::streambuf {
public:
    std::size_t count = 0;

protected:
    std::streamsize xsputn(const char*, std::streamsize n) override {
        count += static_cast<std::size_t>(n);
        return n;
    }
    int_type overflow(int_type c) override {
        if (c != traits_type::eof()) ++count;
        return c;
    }
};
} // namespace

TEST_CASE("message: every fixture round-trips byte for byte") {
    int files = 0;
    for (const auto& e : std::filesystem::directory_iterator(MAILSTAMP_FIXTURES "/message")) {
        std::string text = slurp(e.path());
        INFO(e.path().filename().string());
        CHECK(same(text) == text);
        ++files;
    }
    CHECK(files >= 10);
}

TEST_CASE("message: fields keep exact bytes and give unfolded values") {
    std::string text = slurp(MAILSTAMP_FIXTURES "/message/folded.eml");
    std::istringstream in(text);
    MessageReader r(in);
    REQUIRE(r.read_header().ok());
    CHECK(r.eol() == "\r\n");
    CHECK(r.separator() == "\r\n");
    REQUIRE(r.fields().size() == 3);
    CHECK(r.fields()[1].raw == "To: b@example.org,\r\n  c@example.org,\r\n\td@example.org\r\n");
    CHECK(*r.get("to") == "b@example.org,  c@example.org,\td@example.org");
    CHECK(*r.get("SUBJECT") == "a folded  subject line");
    CHECK_FALSE(r.get("Cc").has_value());
}

TEST_CASE("message: odd spacing and obsolete field syntax") {
    std::string text = slurp(MAILSTAMP_FIXTURES "/message/odd-spacing.eml");
    std::istringstream in(text);
    MessageReader r(in);
    REQUIRE(r.read_header().ok());
    CHECK(*r.get("Subject") == "no space");
    CHECK(*r.get("x-odd") == "spacing");
    CHECK(r.fields()[2].name() == "X-Odd");
}

TEST_CASE("message: get_all and remove are case-insensitive") {
    std::string text = "Received: one\nreceived: two\nX-Mailstamp-Class: forged\nSubject: s\n\nb\n";
    std::istringstream in(text);
    MessageReader r(in);
    REQUIRE(r.read_header().ok());
    CHECK(r.get_all("RECEIVED") == std::vector<std::string>{"one", "two"});
    CHECK(rewrite(text, [](MessageReader& m) { CHECK(m.remove("x-mailstamp-class") == 1); }) ==
          "Received: one\nreceived: two\nSubject: s\n\nb\n");
}

TEST_CASE("message: prepend uses the message's own line ending and goes after the mbox line") {
    CHECK(rewrite("A: 1\r\n\r\nb\r\n", [](MessageReader& m) { m.prepend("X-Test", "v"); }) ==
          "X-Test: v\r\nA: 1\r\n\r\nb\r\n");
    CHECK(rewrite("A: 1\n\nb\n", [](MessageReader& m) { m.prepend("X-Test", "evil\r\nInjected: yes"); }) ==
          "X-Test: evil??Injected: yes\nA: 1\n\nb\n");
    std::string mbox = slurp(MAILSTAMP_FIXTURES "/message/mbox.eml");
    std::string out = rewrite(mbox, [](MessageReader& m) { m.prepend("X-Test", "v"); });
    CHECK(out.rfind("From sender@example.org Mon Jan  1 00:00:00 2026\nX-Test: v\nFrom: sender@example.org\n", 0) == 0);
    // procmail's From line ends in LF even when the message uses CRLF: the fields decide.
    CHECK(rewrite("From x@y Mon Jan  1 00:00:00 2026\nA: 1\r\n\r\nb\r\n", [](MessageReader& m) {
              CHECK(m.eol() == "\r\n");
              m.prepend("X-Test", "v");
              m.tag_subject("[B]");
          }) == "From x@y Mon Jan  1 00:00:00 2026\nX-Test: v\r\nA: 1\r\nSubject: [B]\r\n\r\nb\r\n");
}

TEST_CASE("message: subject tags keep encoded words and folding whole") {
    auto tag = [](const std::string& text) { return rewrite(text, [](MessageReader& m) { m.tag_subject("[B]"); }); };
    CHECK(tag("Subject: hello\n\nb\n") == "Subject: [B] hello\n\nb\n");
    CHECK(tag("Subject: =?UTF-8?B?SGVsbG8=?=\n\nb\n") == "Subject: [B] =?UTF-8?B?SGVsbG8=?=\n\nb\n");
    CHECK(tag("Subject: first\r\n  second\r\n\r\nb\r\n") == "Subject: [B] first\r\n  second\r\n\r\nb\r\n");
    CHECK(tag("Subject:\n\nb\n") == "Subject: [B]\n\nb\n");
    CHECK(tag("Subject:tight\n\nb\n") == "Subject: [B] tight\n\nb\n");
    CHECK(tag("From: a@b.org\r\n\r\nb\r\n") == "From: a@b.org\r\nSubject: [B]\r\n\r\nb\r\n");
    CHECK(tag("Subject: [B] already\n\nb\n") == "Subject: [B] already\n\nb\n");
    CHECK(tag("Subject: [B]x not a tag\n\nb\n") == "Subject: [B] [B]x not a tag\n\nb\n");
}

TEST_CASE("message: no body and a malformed header line") {
    std::string nb = slurp(MAILSTAMP_FIXTURES "/message/no-body.eml");
    std::istringstream in(nb);
    MessageReader r(in);
    REQUIRE(r.read_header().ok());
    CHECK(r.separator().empty());
    CHECK(r.fields().size() == 2);

    std::string bad = slurp(MAILSTAMP_FIXTURES "/message/malformed.eml");
    std::istringstream in2(bad);
    MessageReader r2(in2);
    REQUIRE(r2.read_header().ok());
    CHECK(r2.fields().size() == 2);
    CHECK(r2.separator().empty());
    std::ostringstream body;
    REQUIRE(r2.copy_body(body).ok());
    CHECK(body.str() == "this is not a header line\nnor this\n");
}

TEST_CASE("message: every limit is a data error") {
    CHECK(header_error("").kind == ErrorKind::data);
    CHECK(header_error("Subject: " + std::string(limits::line_length + 10, 'x') + "\n\n").kind == ErrorKind::data);
    std::string fold = "Subject: x\n";
    while (fold.size() <= limits::header_field_size) fold += " " + std::string(1000, 'y') + "\n";
    CHECK(header_error(fold + "\n").text.find("Subject") != std::string::npos);
    std::string many;
    for (std::size_t i = 0; i <= limits::header_fields; ++i) many += "X: 1\n";
    CHECK(header_error(many + "\n").kind == ErrorKind::data);
    std::string big;
    while (big.size() <= limits::header_size) big += "X-Big: " + std::string(1000, 'z') + "\n";
    CHECK(header_error(big + "\n").text.find("header section") != std::string::npos);
    CHECK(header_error("Subject: hello\n\nbody\n", 10).text.find("larger than 10") != std::string::npos);

    std::string text = "Subject: s\n\n" + std::string(1000, 'b');
    std::istringstream in(text);
    MessageReader r(in, 500);
    REQUIRE(r.read_header().ok());
    std::ostringstream out;
    auto c = r.copy_body(out);
    REQUIRE_FALSE(c.ok());
    CHECK(c.error().kind == ErrorKind::data);
}

TEST_CASE("message: a 50 MB body streams through without being held") {
    const std::size_t body = 50u * 1024 * 1024;
    std::string head = "From: a@example.org\nSubject: big\n\n";
    GenBuf gen(head, body);
    std::istream in(&gen);
    MessageReader r(in, body + head.size());
    REQUIRE(r.read_header().ok());
    CountBuf count;
    std::ostream out(&count);
    REQUIRE(r.copy_body(out).ok());
    CHECK(count.count == body);
    CHECK(r.octets_read() == body + head.size());
}

TEST_CASE("message: read_body in small chunks across the first body line") {
    std::string text = "A: 1\nnot a header\nrest of body\n";
    std::istringstream in(text);
    MessageReader r(in);
    REQUIRE(r.read_header().ok());
    std::string got;
    char buf[3];
    for (;;) {
        auto n = r.read_body(buf, sizeof buf);
        REQUIRE(n.ok());
        if (*n == 0) break;
        got.append(buf, *n);
    }
    CHECK(got == "not a header\nrest of body\n");
}

namespace {
std::string tagged(const std::string& text, std::string_view tag = "[B]") {
    return rewrite(text, [&](MessageReader& m) { m.tag_subject(tag); });
}
std::string body_in_chunks(MessageReader& r, std::size_t chunk) {
    std::string got;
    std::vector<char> buf(chunk);
    for (;;) {
        auto n = r.read_body(buf.data(), buf.size());
        REQUIRE(n.ok());
        if (*n == 0) break;
        REQUIRE(*n <= chunk);
        got.append(buf.data(), *n);
    }
    return got;
}
} // namespace

TEST_CASE("message: fixtures read as documented") {
    auto open = [](const char* name, std::string& text) {
        text = slurp(std::string(MAILSTAMP_FIXTURES "/message/") + name);
        REQUIRE_FALSE(text.empty());
    };
    std::string text;

    open("crlf.eml", text);
    {
        std::istringstream in(text);
        MessageReader r(in);
        REQUIRE(r.read_header().ok());
        CHECK(r.eol() == "\r\n");
        CHECK(r.separator() == "\r\n");
        CHECK(*r.get("subject") == "crlf");
        std::ostringstream body;
        REQUIRE(r.copy_body(body).ok());
        CHECK(body.str() == "body line\r\n");
    }
    open("lf.eml", text);
    {
        std::istringstream in(text);
        MessageReader r(in);
        REQUIRE(r.read_header().ok());
        CHECK(r.eol() == "\n");
        CHECK(r.separator() == "\n");
        CHECK(r.mbox_from().empty());
        CHECK(r.fields().size() == 3);
    }
    open("mixed.eml", text);
    {
        std::istringstream in(text);
        MessageReader r(in);
        REQUIRE(r.read_header().ok());
        CHECK(r.eol() == "\r\n");
        CHECK(r.separator() == "\n");
        CHECK(r.fields()[1].raw == "To: b@example.org\n");
        CHECK(*r.get("Subject") == "mixed");
    }
    open("eightbit.eml", text);
    {
        std::istringstream in(text);
        MessageReader r(in);
        REQUIRE(r.read_header().ok());
        CHECK(*r.get("Subject") == "8bit \xe2\x82\xac");
        std::ostringstream body;
        REQUIRE(r.copy_body(body).ok());
        CHECK(body.str() == std::string("bin\0ary \xff\xfe body\n", 16));
    }
    open("no-eol.eml", text);
    {
        std::istringstream in(text);
        MessageReader r(in);
        REQUIRE(r.read_header().ok());
        CHECK(r.separator().empty());
        REQUIRE(r.fields().size() == 2);
        CHECK(r.fields()[1].raw == "Subject: no final newline");
        CHECK(*r.get("Subject") == "no final newline");
        char c;
        auto n = r.read_body(&c, 1);
        REQUIRE(n.ok());
        CHECK(*n == 0);
    }
    open("mbox.eml", text);
    {
        std::istringstream in(text);
        MessageReader r(in);
        REQUIRE(r.read_header().ok());
        CHECK(r.mbox_from() == "From sender@example.org Mon Jan  1 00:00:00 2026\n");
        CHECK(r.fields().size() == 2);
        CHECK(*r.get("from") == "sender@example.org");
    }
    open("fold-first-empty.eml", text);
    {
        std::istringstream in(text);
        MessageReader r(in);
        REQUIRE(r.read_header().ok());
        CHECK(*r.get("Subject") == "=?UTF-8?Q?caf=C3=A9?=");
        CHECK(*r.get("X-Empty") == "");
        CHECK(r.fields()[0].name() == "Subject");
    }
    open("encoded-subject.eml", text);
    CHECK(tagged(text) == "From: a@example.org\nSubject: [B] =?UTF-8?B?SGVsbG8gd29ybGQ=?=\n\nhello\n");
}

TEST_CASE("message: edits on fixtures change only what they mean to") {
    std::string text = slurp(MAILSTAMP_FIXTURES "/message/folded.eml");
    std::string out = rewrite(text, [](MessageReader& m) {
        CHECK(m.remove("TO") == 1);
        CHECK(m.remove("Cc") == 0);
        m.prepend("X-Mailstamp", "ok");
        m.tag_subject("[B]");
    });
    CHECK(out == "X-Mailstamp: ok\r\nFrom: a@example.org\r\nSubject: [B] a folded\r\n  subject line\r\n\r\nbody\r\n");

    // Folded with an empty first line: the tag goes on the first line, the fold stays.
    text = slurp(MAILSTAMP_FIXTURES "/message/fold-first-empty.eml");
    out = tagged(text);
    CHECK(out.rfind("Subject: [B] \r\n =?UTF-8?Q?caf=C3=A9?=\r\nFrom: a@example.org\r\n", 0) == 0);
    std::istringstream in(out);
    MessageReader r(in);
    REQUIRE(r.read_header().ok());
    CHECK(r.get("Subject")->rfind("[B] ", 0) == 0);
    CHECK(tagged(out) == out);

    // mbox, CRLF: prepend goes after the From line with CRLF, tag added at the end.
    out = rewrite("From x@y Mon Jan  1 00:00:00 2026\r\nFrom: x@y\r\n\r\nb\r\n", [](MessageReader& m) {
        m.prepend("X-A", "1");
        m.tag_subject("[B]");
    });
    CHECK(out == "From x@y Mon Jan  1 00:00:00 2026\r\nX-A: 1\r\nFrom: x@y\r\nSubject: [B]\r\n\r\nb\r\n");
}

TEST_CASE("message: subject tag edge cases") {
    CHECK(tagged("Subject:   \n\nb\n") == "Subject:   [B]\n\nb\n");
    CHECK(tagged("Subject: [B]\n\nb\n") == "Subject: [B]\n\nb\n");
    CHECK(tagged("Subject:\t[B]\tx\n\nb\n") == "Subject:\t[B]\tx\n\nb\n");
    CHECK(tagged("subject: lower\n\nb\n") == "subject: [B] lower\n\nb\n");
    CHECK(tagged("Subject : obs\n\nb\n") == "Subject : [B] obs\n\nb\n");
    // Only the first Subject is tagged.
    CHECK(tagged("Subject: one\nSubject: two\n\nb\n") == "Subject: [B] one\nSubject: two\n\nb\n");
    // An empty tag is no edit at all.
    CHECK(tagged("Subject: x\n\nb\n", "") == "Subject: x\n\nb\n");
    CHECK(tagged("A: 1\n\nb\n", "") == "A: 1\n\nb\n");
}

TEST_CASE("message: an added field after a last line with no line end") {
    // Regression: the Subject used to run into the field before it.
    CHECK(tagged("From: a@b.org") == "From: a@b.org\nSubject: [B]\n");
    CHECK(tagged("From: a@b.org\r\nTo: c@d.org") == "From: a@b.org\r\nTo: c@d.org\r\nSubject: [B]\r\n");
    CHECK(tagged("From: a@b.org\r") == "From: a@b.org\r\nSubject: [B]\n");
    // Regression: a prepended field used to run into the mbox From line.
    CHECK(rewrite("From x@y Mon Jan  1 00:00:00 2026", [](MessageReader& m) { m.prepend("X-A", "1"); }) ==
          "From x@y Mon Jan  1 00:00:00 2026\nX-A: 1\n");
    // Unedited, nothing is added.
    CHECK(same("From: a@b.org") == "From: a@b.org");
    CHECK(same("From x@y Mon Jan  1 00:00:00 2026") == "From x@y Mon Jan  1 00:00:00 2026");
}

TEST_CASE("message: the first body line stays body after edits") {
    // Regression: an indented first line of a header-less message became a
    // fold of the prepended field.
    std::string text = " indented\nmore\n";
    CHECK(same(text) == text);
    std::string out = rewrite(text, [](MessageReader& m) { m.prepend("X-A", "1"); });
    CHECK(out == "X-A: 1\n\n indented\nmore\n");
    std::istringstream in(out);
    MessageReader r(in);
    REQUIRE(r.read_header().ok());
    CHECK(*r.get("X-A") == "1");
    std::ostringstream body;
    REQUIRE(r.copy_body(body).ok());
    CHECK(body.str() == text);

    CHECK(rewrite("From x@y Mon Jan  1 00:00:00 2026\r\n\tindented\r\n",
                  [](MessageReader& m) { m.tag_subject("[B]"); }) ==
          "From x@y Mon Jan  1 00:00:00 2026\r\nSubject: [B]\r\n\r\n\tindented\r\n");

    // Regression: with every field removed, a body line "From ..." became the mbox line.
    out = rewrite("X-A: 1\nFrom nobody\n", [](MessageReader& m) { CHECK(m.remove("x-a") == 1); });
    CHECK(out == "\nFrom nobody\n");
    std::istringstream in2(out);
    MessageReader r2(in2);
    REQUIRE(r2.read_header().ok());
    CHECK(r2.mbox_from().empty());
    CHECK(r2.fields().empty());

    // A non-indented malformed first line needs no separator.
    CHECK(rewrite("not a header\n", [](MessageReader& m) { m.prepend("X-A", "1"); }) == "X-A: 1\nnot a header\n");
}

TEST_CASE("message: added text never ends a header line") {
    CHECK(rewrite("A: 1\n\nb\n", [](MessageReader& m) { m.prepend("X-A\r\nBcc: evil", "v"); }) ==
          "X-A??Bcc: evil: v\nA: 1\n\nb\n");
    CHECK(tagged("Subject: s\n\nb\n", "[B]\r\nBcc: evil") == "Subject: [B]??Bcc: evil s\n\nb\n");
    CHECK(tagged("A: 1\n\nb\n", "[B]\nBcc: evil") == "A: 1\nSubject: [B]?Bcc: evil\n\nb\n");
    CHECK(rewrite("A: 1\n\nb\n", [](MessageReader& m) { m.prepend("X-A", "\r\n"); }) == "X-A: ??\nA: 1\n\nb\n");
    // Every other control too (text.hpp scrub): HTAB shows as a space, NUL, ESC and DEL as '?'.
    CHECK(rewrite("A: 1\n\nb\n", [](MessageReader& m) { m.prepend("X-A", std::string("a\tb\0\x1b\x7f", 6)); }) ==
          "X-A: a b???\nA: 1\n\nb\n");
}

TEST_CASE("message: limits are exact and every one is kind data") {
    const std::size_t L = limits::line_length;
    // A line of exactly line_length octets, line end included, is fine; one more is not.
    std::string head = "Subject: ";
    CHECK(same(head + std::string(L - head.size() - 1, 'x') + "\n\n").size() == L + 1);
    CHECK(header_error(head + std::string(L - head.size(), 'x') + "\n\n").kind == ErrorKind::data);
    CHECK(same(head + std::string(L - head.size() - 2, 'x') + "\r\n\r\n").size() == L + 2);
    CHECK(header_error(head + std::string(L - head.size() - 1, 'x') + "\r\n\r\n").kind == ErrorKind::data);
    // A long line with no line end at all.
    CHECK(header_error(std::string(L + 1, 'x')).kind == ErrorKind::data);
    // An mbox line counts too.
    CHECK(header_error("From " + std::string(L, 'x') + "\n").kind == ErrorKind::data);

    std::string fold = "Subject: x\n";
    while (fold.size() <= limits::header_field_size) fold += " " + std::string(1000, 'y') + "\n";
    CHECK(header_error(fold + "\n").kind == ErrorKind::data);

    std::string fields;
    for (std::size_t i = 0; i < limits::header_fields; ++i) fields += "X: 1\n";
    {
        std::istringstream in(fields + "\nb\n");
        MessageReader r(in);
        REQUIRE(r.read_header().ok());
        CHECK(r.fields().size() == limits::header_fields);
    }
    auto many = header_error(fields + "X: 1\n\n");
    CHECK(many.kind == ErrorKind::data);
    CHECK(many.text.find("header fields") != std::string::npos);

    std::string big;
    while (big.size() <= limits::header_size) big += "X-Big: " + std::string(1000, 'z') + "\n";
    CHECK(header_error(big + "\n").kind == ErrorKind::data);

    // max_message_size: exactly at it is fine, one octet over fails, in the header or the body.
    std::string text = "Subject: s\n\n" + std::string(100, 'b');
    {
        std::istringstream in(text);
        MessageReader r(in, text.size());
        REQUIRE(r.read_header().ok());
        std::ostringstream out;
        REQUIRE(r.copy_body(out).ok());
        CHECK(out.str() == std::string(100, 'b'));
        CHECK(r.octets_read() == text.size());
    }
    {
        std::istringstream in(text);
        MessageReader r(in, text.size() - 1);
        REQUIRE(r.read_header().ok());
        std::ostringstream out;
        auto c = r.copy_body(out);
        REQUIRE_FALSE(c.ok());
        CHECK(c.error().kind == ErrorKind::data);
    }
    {
        std::istringstream in(text);
        MessageReader r(in, text.size() - 1);
        REQUIRE(r.read_header().ok());
        char buf[16];
        Result<std::size_t> n = std::size_t{0};
        do n = r.read_body(buf, sizeof buf);
        while (n.ok() && *n > 0);
        REQUIRE_FALSE(n.ok());
        CHECK(n.error().kind == ErrorKind::data);
    }
    CHECK(header_error("Subject: s\n\nb\n", 5).kind == ErrorKind::data);
    CHECK(header_error("", 0).kind == ErrorKind::data);
    CHECK(header_error("").text.find("empty") != std::string::npos);
    // Every error text is one line that names the limit.
    CHECK(header_error("").text == "empty message");
    CHECK(header_error(big + "\n").text == "header section larger than 1048576 octets");
    CHECK(many.text == "more than 10000 header fields");
    CHECK(header_error(head + std::string(L, 'x') + "\n").text == "header line longer than 65536 octets");
    CHECK(header_error(fold + "\n").text == "header field Subject longer than 65536 octets");
}

TEST_CASE("message: read_body works in chunks of every small size") {
    std::string text = "A: 1\nnot a header\nrest of body\nand more\n";
    for (std::size_t chunk = 1; chunk <= 20; ++chunk) {
        INFO("chunk " << chunk);
        std::istringstream in(text);
        MessageReader r(in);
        REQUIRE(r.read_header().ok());
        CHECK(r.octets_read() == std::string("A: 1\nnot a header\n").size());
        CHECK(body_in_chunks(r, chunk) == "not a header\nrest of body\nand more\n");
        CHECK(r.octets_read() == text.size());
    }
    // read_body first, then copy_body for the rest: nothing lost or doubled.
    std::istringstream in(text);
    MessageReader r(in);
    REQUIRE(r.read_header().ok());
    char buf[5];
    auto n = r.read_body(buf, sizeof buf);
    REQUIRE(n.ok());
    std::string got(buf, *n);
    std::ostringstream rest;
    REQUIRE(r.copy_body(rest).ok());
    CHECK(got + rest.str() == "not a header\nrest of body\nand more\n");
    // At the end it stays at the end.
    auto again = r.read_body(buf, sizeof buf);
    REQUIRE(again.ok());
    CHECK(*again == 0);
}

TEST_CASE("message: a 50 MB body behind a malformed first line streams in chunks") {
    const std::size_t body = 50u * 1024 * 1024;
    std::string head = "From: a@example.org\r\nnot a header line\r\n";
    GenBuf gen(head, body);
    std::istream in(&gen);
    MessageReader r(in, body + head.size());
    REQUIRE(r.read_header().ok());
    CHECK(r.octets_read() == head.size());
    // Across the pending line, in small chunks.
    std::string first;
    char small[4];
    while (first.size() < 40) {
        auto n = r.read_body(small, sizeof small);
        REQUIRE(n.ok());
        REQUIRE(*n > 0);
        first.append(small, *n);
    }
    CHECK(first.substr(0, 19) == "not a header line\r\n");
    CHECK(first.substr(19) == std::string(first.size() - 19, 'x'));
    CountBuf count;
    std::ostream out(&count);
    REQUIRE(r.copy_body(out).ok());
    CHECK(count.count + first.size() == body + 19);
    CHECK(r.octets_read() == body + head.size());
}
