// Unit tests for the MIME reader (mail/mime.hpp) and the lenient decoders of base/codec.hpp.
#include "libmail/mail/mime.hpp"
#include "libmail/base/codec.hpp"

#include <catch2/catch.hpp>

#include <string>
#include <vector>

using namespace mail;

namespace {
// Every part walk_mime() visits, as "depth type/subtype".
std::vector<std::string> visits(std::string_view message, const MimeBounds& bounds = {}) {
    std::vector<std::string> out;
    MimeHeader top = parse_mime_header(message);
    walk_mime(
        top,
        [&](const MimePart& p) { out.push_back(std::to_string(p.depth) + " " + p.type.type + "/" + p.type.subtype); },
        bounds);
    return out;
}

// A multipart/mixed body around part, nested levels deep.
std::string nested(int levels, const std::string& part) {
    if (levels == 0) return part;
    std::string b = "b" + std::to_string(levels);
    return "Content-Type: multipart/mixed; boundary=" + b + "\n\n--" + b + "\n" + nested(levels - 1, part) + "\n--" +
           b + "--\n";
}
} // namespace

TEST_CASE("mime: a header section, folded, up to the blank line", "[mime]") {
    MimeHeader h = parse_mime_header("Subject: one\r\n two\r\nX-Y : z\r\n\r\nbody\r\n");
    REQUIRE(h.fields.size() == 2);
    CHECK(h.value("subject") == "one two");
    CHECK(h.value("x-y") == "z");  // obsolete white space before the colon
    CHECK(h.get("to") == nullptr);
    CHECK(h.rest == "body\r\n");
    // A line that is not a field ends the header and is left for the body.
    MimeHeader g = parse_mime_header("A: 1\nnot a field\nB: 2\n");
    CHECK(g.fields.size() == 1);
    CHECK(g.rest == "not a field\nB: 2\n");
}

TEST_CASE("mime: the field count is bounded; folds of skipped fields go too", "[mime]") {
    MimeHeader h = parse_mime_header("A: 1\nB: 2\n more\nC: 3\n\n", 1);
    REQUIRE(h.fields.size() == 1);
    CHECK(h.value("a") == "1");
    CHECK(h.rest.empty());
}

TEST_CASE("mime: Content-Type with parameters, quoted strings and comments", "[mime]") {
    ContentType ct = parse_content_type("Multipart/Mixed; Boundary=\"a b;c\\\"d\"; charset=UTF-8");
    CHECK(ct.is("multipart", "mixed"));
    CHECK(ct.param("boundary") == "a b;c\"d");  // value case kept, quoted pair undone
    CHECK(ct.param("charset") == "UTF-8");
    CHECK(ct.param("missing").empty());

    ContentType c = parse_content_type(" (a comment) text (x) / plain (y (nested)) ; charset (z) = \"utf-8\" (w)");
    CHECK(c.is("text", "plain"));
    CHECK(c.param("charset") == "utf-8");

    // Junk before a parameter is skipped to the next ';'.
    ContentType j = parse_content_type("text/html junk; a=1 garbage; b=2");
    CHECK(j.is("text", "html"));
    CHECK(j.param("a") == "1");
    CHECK(j.param("b") == "2");
}

TEST_CASE("mime: a comment cut off after a backslash ends the value (fuzz crash)", "[mime]") {
    ContentType ct = parse_content_type("multipart/mixed;\n boundary=(comment\\");
    CHECK(ct.is("multipart", "mixed"));
    CHECK(ct.param("boundary").empty());
    ContentType t = parse_content_type("text/plain (\\");
    CHECK(t.is("text", "plain"));
}

TEST_CASE("mime: a missing or unreadable Content-Type is text/plain", "[mime]") {
    CHECK(parse_content_type("").is("text", "plain"));
    CHECK(parse_content_type("garbage").is("text", "plain"));
    CHECK(parse_content_type("text/").is("text", "plain"));
    CHECK(parse_content_type("/plain").is("text", "plain"));
    CHECK(parse_content_type("garbage; charset=x").params.empty());
    // read_content_type() says so instead of guessing.
    CHECK_FALSE(read_content_type("").has_value());
    CHECK_FALSE(read_content_type("garbage").has_value());
    CHECK_FALSE(read_content_type("(only a comment)").has_value());
    auto ok = read_content_type("(c) text/html");
    REQUIRE(ok.has_value());
    CHECK(ok->is("text", "html"));
}

TEST_CASE("mime: Content-Type parameters are bounded", "[mime]") {
    std::string v = "text/plain";
    for (std::size_t i = 0; i < limits::mime_params + 5; ++i) v += "; p" + std::to_string(i) + "=" + std::to_string(i);
    CHECK(parse_content_type(v).params.size() == limits::mime_params);
}

TEST_CASE("mime: lenient base64 reads broken lines and stops at padding", "[mime][codec]") {
    CHECK(base64_decode_lenient("SGVs\r\nbG8s\n IHdv\tcmxk\r\n") == "Hello, world");
    CHECK(base64_decode_lenient("SGk=\r\nignored") == "Hi");
    CHECK(base64_decode_lenient("SGk") == "Hi");  // padding optional
    CHECK(base64_decode_lenient("S*G!k") == "Hi");  // octets outside the alphabet skipped
    CHECK(base64_decode_lenient("") == "");
    CHECK_FALSE(base64_decode("SGVs\r\nbG8=").has_value());  // the strict one refuses what mail has
}

TEST_CASE("mime: quoted-printable soft line breaks and escapes", "[mime][codec]") {
    CHECK(qp_decode("caf=C3=A9 long =\r\nline=\nend") == "caf\xc3\xa9 long lineend");
    CHECK(qp_decode("blanks before= \t\r\nthe line end") == "blanks beforethe line end");
    CHECK(qp_decode("=3d=3D") == "==");
    CHECK(qp_decode("a = b =ZZ =4") == "a = b =ZZ =4");  // a stray '=' is kept
    CHECK(qp_decode("trailing=") == "trailing=");
    CHECK(hex_value('f') == 15);
    CHECK(hex_value('F') == 15);
    CHECK(hex_value('g') == -1);
}

TEST_CASE("mime: decode_body follows Content-Transfer-Encoding", "[mime]") {
    CHECK(decode_body("SGk=", parse_mime_header("Content-Transfer-Encoding: Base64 \n\n")) == "Hi");
    CHECK(decode_body("a=3Db", parse_mime_header("Content-Transfer-Encoding: quoted-printable\n\n")) == "a=b");
    CHECK(decode_body("a=3Db", parse_mime_header("Content-Transfer-Encoding: 8bit\n\n")) == "a=3Db");
    CHECK(decode_body("SGk=", parse_mime_header("\n")) == "SGk=");
}

TEST_CASE("mime: delimiter lines", "[mime]") {
    CHECK(delimiter_of("--xyz", "xyz") == Delimiter::part);
    CHECK(delimiter_of("--xyz \t\r", "xyz") == Delimiter::part);
    CHECK(delimiter_of("--xyz--\r\n", "xyz") == Delimiter::close);
    CHECK(delimiter_of("--xyz---", "xyz") == Delimiter::none);
    CHECK(delimiter_of("--xyzw", "xyz") == Delimiter::none);
    CHECK(delimiter_of("-xyz", "xyz") == Delimiter::none);
    CHECK(delimiter_of(" --xyz", "xyz") == Delimiter::none);
}

TEST_CASE("mime: split_multipart skips preamble and epilogue", "[mime]") {
    auto parts = split_multipart("preamble\r\n--b\r\nA: 1\r\n\r\none\r\n--b\r\n\r\ntwo\r\n--b--\r\nepilogue\r\n", "b");
    REQUIRE(parts.size() == 2);
    CHECK(parts[0] == "A: 1\r\n\r\none");
    CHECK(parts[1] == "\r\ntwo");
    CHECK(split_multipart("no delimiter at all\n", "b").empty());
    CHECK(split_multipart("--b\none\n--b\ntwo\n--b\nthree\n", "b", 2).size() == 2);
}

TEST_CASE("mime: a missing final boundary runs the last part to the end", "[mime]") {
    auto parts = split_multipart("--b\nfirst\n--b\nsecond, cut off\n", "b");
    REQUIRE(parts.size() == 2);
    CHECK(parts[0] == "first");
    CHECK(parts[1] == "second, cut off\n");
    CHECK(visits("Content-Type: multipart/mixed; boundary=b\n\n--b\nContent-Type: text/html\n\n<p>cut") ==
          std::vector<std::string>{"0 multipart/mixed", "1 text/html"});
}

TEST_CASE("mime: the walk visits multiparts before their parts, depth first", "[mime]") {
    std::string msg = "Content-Type: multipart/mixed; boundary=outer\n\n"
                      "--outer\nContent-Type: multipart/alternative; boundary=inner\n\n"
                      "--inner\nContent-Type: text/plain\n\nplain\n--inner\nContent-Type: text/html\n\nhtml\n--inner--\n"
                      "--outer\nContent-Type: message/rfc822\n\nContent-Type: text/plain\n\nnot entered\n"
                      "--outer--\n";
    CHECK(visits(msg) == std::vector<std::string>{"0 multipart/mixed", "1 multipart/alternative", "2 text/plain",
                                                  "2 text/html", "1 message/rfc822"});
    std::string body;
    MimeHeader top = parse_mime_header(msg);
    walk_mime(top, [&](const MimePart& p) {
        if (p.type.is("text", "html")) body = std::string(p.body);
    });
    CHECK(body == "html");
}

TEST_CASE("mime: the walk's depth, part and boundary bounds", "[mime]") {
    std::string leaf = "Content-Type: text/plain\n\ndeep\n";
    auto all = visits(nested(3, leaf));
    CHECK(all.size() == 4);
    CHECK(all.back() == "3 text/plain");
    MimeBounds shallow;
    shallow.depth = 3;  // depth 3 is not reached: the multipart at depth 2 is not entered
    CHECK(visits(nested(3, leaf), shallow) ==
          std::vector<std::string>{"0 multipart/mixed", "1 multipart/mixed", "2 multipart/mixed"});
    CHECK(visits(nested(static_cast<int>(limits::mime_depth) + 2, leaf)).size() == limits::mime_depth);

    std::string many = "Content-Type: multipart/mixed; boundary=b\n\n";
    for (int i = 0; i < 10; ++i) many += "--b\n\npart\n";
    MimeBounds few;
    few.parts = 4;  // the multipart itself and three parts
    CHECK(visits(many, few).size() == 4);
    CHECK(visits(many).size() == 11);

    std::string long_boundary(limits::mime_boundary_read + 1, 'x');
    CHECK(visits("Content-Type: multipart/mixed; boundary=" + long_boundary + "\n\n--" + long_boundary +
                 "\n\nx\n")
              .size() == 1);
    CHECK(visits("Content-Type: multipart/mixed\n\n--\n\nx\n").size() == 1);  // no boundary
}
