// DotDecoder (finding <CRLF>.<CRLF>, un-stuffing, bare CR/LF, the size limit) and
// write_message_stuffed, and the round trip between them. write_stuffed and
// stuffed_terminator on their own are tested in smtp_client_test.cpp.
#include "libmail/smtp/smtp_data.hpp"

#include <catch2/catch.hpp>

#include <random>
#include <string>
#include <vector>

using namespace mail;

namespace {

constexpr std::size_t unlimited = std::size_t(1) << 40;

struct Decoded {
    std::string out;
    std::size_t used = 0;
    bool done = false, bare = false, too_big = false;
    std::size_t size = 0;
};

Decoded finish(const DotDecoder& d, std::string out, std::size_t used) {
    Decoded r;
    r.out = std::move(out);
    r.used = used;
    r.done = d.done();
    r.bare = d.bare();
    r.too_big = d.too_big();
    r.size = d.size();
    return r;
}

// Decodes bytes in one feed.
Decoded decode(std::string_view bytes, BareNewline mode = BareNewline::normalise, std::size_t max = unlimited) {
    DotDecoder d(mode, max);
    std::string out;
    std::size_t used = d.feed(bytes, out);
    return finish(d, std::move(out), used);
}

// Decodes bytes fed in the pieces cut at the given offsets (ascending); used is the sum over the feeds.
Decoded decode_cut(std::string_view bytes, const std::vector<std::size_t>& cuts,
                   BareNewline mode = BareNewline::normalise, std::size_t max = unlimited) {
    DotDecoder d(mode, max);
    std::string out;
    std::size_t used = 0, from = 0;
    std::vector<std::size_t> ends = cuts;
    ends.push_back(bytes.size());
    for (std::size_t e : ends) {
        used += d.feed(bytes.substr(from, e - from), out);
        from = e;
    }
    return finish(d, std::move(out), used);
}

// Every line end (CRLF, bare CR, bare LF) made CRLF; a final CRLF when s is not empty and does not end
// with CR or LF. What write_stuffed + stuffed_terminator frame, as a decoder gives it back.
std::string normalised(std::string_view s) {
    std::string o;
    for (std::size_t i = 0; i < s.size(); ++i) {
        if (s[i] == '\r') {
            o += "\r\n";
            if (i + 1 < s.size() && s[i + 1] == '\n') ++i;
        } else if (s[i] == '\n') {
            o += "\r\n";
        } else {
            o += s[i];
        }
    }
    if (!s.empty() && s.back() != '\r' && s.back() != '\n') o += "\r\n";
    return o;
}

// Runs write_message_stuffed over pieces (one write call each); the writes it made.
std::vector<std::string> encode(const std::vector<std::string>& pieces) {
    std::vector<std::string> writes;
    MessageSource src = [&](const std::function<Result<void>(std::string_view)>& write) -> Result<void> {
        for (const auto& p : pieces)
            if (auto w = write(p); !w) return w;
        return {};
    };
    auto r = write_message_stuffed(src, [&](std::string_view piece) -> Result<void> {
        writes.emplace_back(piece);
        return {};
    });
    REQUIRE(r.ok());
    return writes;
}

std::string joined(const std::vector<std::string>& v) {
    std::string s;
    for (const auto& x : v) s += x;
    return s;
}

std::string visible(std::string_view s) {
    std::string o;
    for (char c : s) {
        if (c == '\r') o += "\\r";
        else if (c == '\n') o += "\\n";
        else if (static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) >= 0x7f) o += "\\x" + std::to_string(static_cast<unsigned char>(c));
        else o += c;
    }
    return o;
}

} // namespace

// ---- decoding ----

TEST_CASE("DotDecoder: dot-stuffed lines lose their leading dot, other dots stay", "[smtp_data]") {
    const std::string wire = "..a\r\n.b\r\nc.d.\r\n...\r\n.\r\n";
    for (auto mode : {BareNewline::reject, BareNewline::normalise}) {
        auto r = decode(wire, mode);
        CHECK(r.done);
        CHECK(r.used == wire.size());
        CHECK(r.out == ".a\r\nb\r\nc.d.\r\n..\r\n");
        CHECK_FALSE(r.bare);
        CHECK_FALSE(r.too_big);
        CHECK(r.size == r.out.size());
    }
}

TEST_CASE("DotDecoder: a lone \".\" line ends the data; \"..\" is a line holding \".\"", "[smtp_data]") {
    SECTION("the empty message: the line end before the data counts") {
        auto r = decode(".\r\n");
        CHECK(r.done);
        CHECK(r.used == 3);
        CHECK(r.out.empty());
        CHECK(r.size == 0);
    }
    SECTION("\"..\" decodes to \".\" and does not end the data") {
        auto r = decode("a\r\n..\r\nb\r\n");
        CHECK_FALSE(r.done);
        CHECK(r.used == 10);
        CHECK(r.out == "a\r\n.\r\nb\r\n");
    }
    SECTION("a dot line after content ends it") {
        auto r = decode("Subject: x\r\n\r\nbody\r\n.\r\n");
        CHECK(r.done);
        CHECK(r.out == "Subject: x\r\n\r\nbody\r\n");
    }
    SECTION("a dot not at a line start, or followed by something, is content") {
        auto r = decode("x.\r\n. \r\n.x\r\n");
        CHECK_FALSE(r.done);
        CHECK(r.out == "x.\r\n \r\nx\r\n");
    }
}

TEST_CASE("DotDecoder: the terminator split across two feeds at every position", "[smtp_data]") {
    const std::string message = "Hi\r\n..dot\r\nend\r\n.\r\n";
    const std::string wire = message + "MAIL FROM:<>\r\n";
    const auto whole = decode(wire);
    REQUIRE(whole.done);
    REQUIRE(whole.used == message.size());
    REQUIRE(whole.out == "Hi\r\n.dot\r\nend\r\n");
    for (std::size_t i = 0; i <= wire.size(); ++i) {
        INFO("cut at " << i);
        auto r = decode_cut(wire, {i});
        CHECK(r.done);
        CHECK(r.used == message.size());
        CHECK(r.out == whole.out);
    }
}

TEST_CASE("DotDecoder: any three-way split and one byte at a time decode the same", "[smtp_data]") {
    const std::string message = "a\r\n.\r\r\n..\r\n.\nb\r\n.\r\n";
    for (auto mode : {BareNewline::reject, BareNewline::normalise}) {
        const auto whole = decode(message, mode);
        REQUIRE(whole.done);
        REQUIRE(whole.used == message.size());
        for (std::size_t i = 0; i <= message.size(); ++i)
            for (std::size_t j = i; j <= message.size(); ++j) {
                INFO("cuts at " << i << " and " << j);
                auto r = decode_cut(message, {i, j}, mode);
                CHECK(r.done);
                CHECK(r.used == message.size());
                CHECK(r.out == whole.out);
                CHECK(r.bare == whole.bare);
            }
        std::vector<std::size_t> every;
        for (std::size_t i = 1; i < message.size(); ++i) every.push_back(i);
        auto r = decode_cut(message, every, mode);
        CHECK(r.out == whole.out);
        CHECK(r.used == message.size());
        CHECK(r.done);
    }
}

TEST_CASE("DotDecoder: bytes after the terminator are not consumed; later feeds take nothing", "[smtp_data]") {
    DotDecoder d(BareNewline::reject, unlimited);
    std::string out;
    const std::string first = "one\r\n.\r\nQUIT\r\n";
    CHECK(d.feed(first, out) == 8);
    CHECK(d.done());
    CHECK(out == "one\r\n");
    CHECK(d.feed("more\r\n.\r\n", out) == 0);
    CHECK(d.feed("", out) == 0);
    CHECK(out == "one\r\n");
    CHECK(d.size() == 5);
}

TEST_CASE("DotDecoder: a feed without the end uses all of it", "[smtp_data]") {
    DotDecoder d(BareNewline::reject, unlimited);
    std::string out;
    CHECK(d.feed("abc\r\n.", out) == 6);
    CHECK_FALSE(d.done());
    CHECK(d.feed("\r", out) == 1);
    CHECK_FALSE(d.done());
    CHECK(d.feed("\nrest", out) == 1);
    CHECK(d.done());
    CHECK(out == "abc\r\n");
}

TEST_CASE("DotDecoder: bare LF, bare CR and \".\\r\"+other, in both modes", "[smtp_data]") {
    struct Case {
        std::string wire;       // without the terminator
        std::string normalise;  // content in normalise mode
        std::string reject;     // content in reject mode: the bare octet is dropped
    };
    const std::vector<Case> cases{
        {"a\nb\r\n", "a\r\nb\r\n", "ab\r\n"},
        {"a\rb\r\n", "a\r\nb\r\n", "ab\r\n"},
        {"a\r\r\n", "a\r\n\r\n", "a\r\n"},
        {"\nx\r\n", "\r\nx\r\n", "x\r\n"},
        {".\rx\r\n", "\r\nx\r\n", "x\r\n"},         // the dot is a stuffing dot; the CR is bare
        {".\r\r\n", "\r\n\r\n", "\r\n"},
        {".\nx\r\n", "\r\nx\r\n", "x\r\n"},         // dot then bare LF
        {"a\n\n\r\n", "a\r\n\r\n\r\n", "a\r\n"},
        {"a\r\n\r.\r\n", "a\r\n\r\n.\r\n", "a\r\n.\r\n"},  // bare CR, then a "." mid-line
    };
    for (const auto& c : cases) {
        INFO("wire " << visible(c.wire));
        const std::string wire = c.wire + ".\r\n";
        auto n = decode(wire, BareNewline::normalise);
        CHECK(n.done);
        CHECK(n.used == wire.size());
        CHECK(n.bare);
        CHECK(visible(n.out) == visible(c.normalise));
        CHECK(n.size == n.out.size());
        auto r = decode(wire, BareNewline::reject);
        CHECK(r.done);
        CHECK(r.used == wire.size());
        CHECK(r.bare);
        CHECK(visible(r.out) == visible(c.reject));
        CHECK(r.size == r.out.size());
    }
}

TEST_CASE("DotDecoder: a bare CR or LF is never a line end for framing (no smuggled terminator)", "[smtp_data]") {
    for (std::string fake : {"\n.\n", "\n.\r\n", "\r.\r\n", "\r\n.\n", "\r\n.\r\r\n", "\r\n.\r.\r\n", "\r\r\n.\n"}) {
        for (auto mode : {BareNewline::reject, BareNewline::normalise}) {
            INFO("fake terminator " << visible(fake));
            const std::string wire = "a" + fake + "MAIL FROM:<evil@x.example>\r\n";
            auto r = decode(wire, mode);
            CHECK_FALSE(r.done);
            CHECK(r.used == wire.size());
            CHECK(r.bare);
            CHECK(r.out.find("MAIL FROM:<evil@x.example>\r\n") != std::string::npos);
            // The real end still ends it.
            auto e = decode(wire + ".\r\n", mode);
            CHECK(e.done);
            CHECK(e.used == wire.size() + 3);
        }
    }
}

TEST_CASE("DotDecoder: CRLF only content sets no bare flag", "[smtp_data]") {
    auto r = decode("a\r\nb\r\n\r\n.\r\n", BareNewline::reject);
    CHECK(r.done);
    CHECK_FALSE(r.bare);
    CHECK(r.out == "a\r\nb\r\n\r\n");
}

TEST_CASE("DotDecoder: the size limit", "[smtp_data]") {
    SECTION("exactly max_size octets is not too big") {
        auto r = decode("12345678\r\n.\r\n", BareNewline::reject, 10);
        CHECK(r.done);
        CHECK_FALSE(r.too_big);
        CHECK(r.out == "12345678\r\n");
        CHECK(r.size == 10);
    }
    SECTION("one more is too big; the end is still found and size() counts everything") {
        const std::string wire = "123456789\r\nabcdefghij\r\nxyz\r\n.\r\nNOOP\r\n";
        auto r = decode(wire, BareNewline::reject, 10);
        CHECK(r.done);
        CHECK(r.too_big);
        CHECK(r.used == wire.size() - 6);
        CHECK(r.size == 11 + 12 + 5);
        CHECK(r.out.size() <= 10);
        CHECK(std::string("123456789\r\n").rfind(r.out, 0) == 0);  // what came out is a prefix of the content
    }
    SECTION("past the limit in small feeds, nothing more is appended") {
        DotDecoder d(BareNewline::normalise, 5);
        std::string out;
        for (char c : std::string("abcdefghijklmnop\nqr\r\n.\r\n")) d.feed(std::string_view(&c, 1), out);
        CHECK(d.done());
        CHECK(d.too_big());
        CHECK(out == "abcde");
        CHECK(d.size() == 16 + 2 + 2 + 2);  // the bare LF counts as the CRLF it would be
    }
    SECTION("a limit of 0: any content is too big, the empty message is not") {
        CHECK(decode(".\r\n", BareNewline::reject, 0).too_big == false);
        auto r = decode("\r\n.\r\n", BareNewline::reject, 0);
        CHECK(r.too_big);
        CHECK(r.out.empty());
        CHECK(r.size == 2);
    }
}

// ---- write_message_stuffed ----

TEST_CASE("write_message_stuffed: stuffs, makes line ends CRLF and terminates", "[smtp_data]") {
    CHECK(joined(encode({})) == ".\r\n");
    CHECK(joined(encode({""})) == ".\r\n");
    CHECK(joined(encode({"a"})) == "a\r\n.\r\n");
    CHECK(joined(encode({"a\r\n"})) == "a\r\n.\r\n");
    CHECK(joined(encode({".x\n.\r\n"})) == "..x\r\n..\r\n.\r\n");
    CHECK(joined(encode({"a\r"})) == "a\r\n.\r\n");
    CHECK(joined(encode({"a\r", "\n.b"})) == "a\r\n..b\r\n.\r\n");  // a CRLF split across writes is one line end
    CHECK(joined(encode({"a\r", ".b"})) == "a\r\n..b\r\n.\r\n");
    CHECK(joined(encode({"a", ".b"})) == "a.b\r\n.\r\n");             // no line start between pieces
}

TEST_CASE("write_message_stuffed: large messages go out in pieces of about 64 KiB", "[smtp_data]") {
    std::string line(99, 'x');
    line += "\r\n";
    std::vector<std::string> pieces;
    for (int i = 0; i < 3000; ++i) pieces.push_back(line);  // 303,000 octets in 3000 writes
    auto writes = encode(pieces);
    REQUIRE(writes.size() >= 2);
    CHECK(writes.size() <= 303000 / 65536 + 2);
    for (std::size_t i = 0; i + 1 < writes.size(); ++i) CHECK(writes[i].size() >= 65536);
    CHECK(joined(writes) == joined(pieces) + ".\r\n");
}

TEST_CASE("write_message_stuffed: errors of the source and of write are returned", "[smtp_data]") {
    SECTION("the source fails: its error, and no terminator is written") {
        std::string sent;
        MessageSource src = [](const std::function<Result<void>(std::string_view)>& write) -> Result<void> {
            if (auto w = write("part\r\n"); !w) return w;
            return Error{ErrorKind::tempfail, "disk on fire"};
        };
        auto r = write_message_stuffed(src, [&](std::string_view p) -> Result<void> {
            sent.append(p);
            return {};
        });
        REQUIRE_FALSE(r.ok());
        CHECK(r.error().kind == ErrorKind::tempfail);
        CHECK(r.error().text == "disk on fire");
        CHECK(sent.find(".\r\n") == std::string::npos);
    }
    SECTION("write fails: its error") {
        MessageSource src = [](const std::function<Result<void>(std::string_view)>& write) -> Result<void> {
            return write("x\r\n");
        };
        auto r = write_message_stuffed(src, [](std::string_view) -> Result<void> {
            return Error{ErrorKind::tempfail, "connection lost"};
        });
        REQUIRE_FALSE(r.ok());
        CHECK(r.error().text == "connection lost");
    }
}

// ---- the round trip ----

TEST_CASE("write_message_stuffed then DotDecoder gives the message back with CRLF line ends", "[smtp_data]") {
    std::mt19937 rng(20240611);
    // Mostly the octets framing is about, some of everything else.
    const std::string special = "\r\n.\r\n..\r\r\n\n";
    auto random_byte = [&]() -> char {
        std::uniform_int_distribution<int> pick(0, 9);
        int k = pick(rng);
        if (k < 5) return special[std::uniform_int_distribution<std::size_t>(0, special.size() - 1)(rng)];
        if (k < 8) return static_cast<char>('a' + std::uniform_int_distribution<int>(0, 25)(rng));
        return static_cast<char>(std::uniform_int_distribution<int>(0, 255)(rng));
    };
    for (int n = 0; n < 2000; ++n) {
        std::size_t len = n < 1990 ? std::uniform_int_distribution<std::size_t>(0, 120)(rng)
                                   : std::uniform_int_distribution<std::size_t>(60000, 200000)(rng);
        std::string s;
        for (std::size_t i = 0; i < len; ++i) s += random_byte();
        // The source hands s over in random pieces (a CR and its LF may land in different writes).
        std::vector<std::string> pieces;
        for (std::size_t at = 0; at < s.size();) {
            std::size_t k = std::uniform_int_distribution<std::size_t>(0, 9)(rng);
            if (len > 1000) k *= 5000;
            k = std::min(k, s.size() - at);
            pieces.push_back(s.substr(at, k));
            at += k;
        }
        const std::string wire = joined(encode(pieces));
        INFO("message " << n << ": " << (len <= 120 ? visible(s) : std::to_string(len) + " octets"));
        const std::string want = normalised(s);
        // Followed by the next command, fed in random slices: everything up to the terminator is used.
        const std::string stream = wire + "QUIT\r\n";
        std::vector<std::size_t> cuts;
        for (std::size_t at = 0;;) {
            at += std::uniform_int_distribution<std::size_t>(1, len > 1000 ? 70000 : 12)(rng);
            if (at >= stream.size()) break;
            cuts.push_back(at);
        }
        for (auto mode : {BareNewline::normalise, BareNewline::reject}) {
            auto r = decode_cut(stream, cuts, mode);
            REQUIRE(r.done);
            CHECK(r.used == wire.size());
            CHECK_FALSE(r.bare);  // the encoder never sends a bare CR or LF
            CHECK_FALSE(r.too_big);
            CHECK(r.size == want.size());
            if (r.out != want) FAIL_CHECK("decoded " << visible(r.out) << " want " << visible(want));
        }
    }
}
