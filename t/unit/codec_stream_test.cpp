#include "libmail/base/codec.hpp"
#include "libmail/base/codec_stream.hpp"

#include <catch2/catch.hpp>

#include <random>
#include <sstream>

using namespace mail;

namespace {
// Feeds s to put in pieces of 1, 2, 3, ... octets.
template <class F>
void in_pieces(std::string_view s, F put) {
    std::size_t i = 0, n = 1;
    while (i < s.size()) {
        put(s.substr(i, n));
        i += n;
        n = n % 7 + 1;
    }
}

std::string random_bytes(std::size_t n, unsigned seed) {
    std::mt19937 g(seed);
    std::string s;
    for (std::size_t i = 0; i < n; ++i) s += static_cast<char>(g() % 256);
    return s;
}
} // namespace

TEST_CASE("codec_stream: base64 in pieces decodes as the whole does, and encodes back in 76-column lines") {
    for (std::size_t n : {0u, 1u, 2u, 3u, 56u, 57u, 58u, 1000u}) {
        std::string bytes = random_bytes(n, static_cast<unsigned>(n));
        std::string enc;
        Base64Encoder e([&](std::string_view s) { enc += s; }, "\r\n");
        in_pieces(bytes, [&](std::string_view s) { e.put(s); });
        e.finish();
        std::istringstream lines(enc);
        for (std::string line; std::getline(lines, line);) CHECK(line.size() <= 77);
        CHECK(base64_decode_lenient(enc) == bytes);
        std::string dec;
        Base64Decoder d([&](std::string_view s) { dec += s; });
        in_pieces(enc, [&](std::string_view s) { d.put(s); });
        d.finish();
        CHECK(dec == bytes);
    }
    std::string dec;
    Base64Decoder d([&](std::string_view s) { dec += s; });
    d.put("SGVsbG8=IGdhcmJhZ2U=");  // the first '=' ends it, as base64_decode_lenient says
    d.finish();
    CHECK(dec == "Hello");
}

TEST_CASE("codec_stream: quoted-printable round-trips any bytes with short lines and hard breaks kept") {
    for (unsigned seed = 1; seed < 20; ++seed) {
        std::string bytes = random_bytes(500, seed);
        std::string enc;
        QpEncoder e([&](std::string_view s) { enc += s; }, "\n");
        in_pieces(bytes, [&](std::string_view s) { e.put(s); });
        e.finish();
        std::istringstream lines(enc);
        for (std::string line; std::getline(lines, line);) {
            CHECK(line.size() <= 76);
            if (!line.empty()) CHECK((line.back() != ' ' && line.back() != '\t'));
        }
        // Bare LFs are hard breaks (line ends of the text), so compare with CRLFs made LF.
        std::string want;
        for (std::size_t i = 0; i < bytes.size(); ++i)
            if (!(bytes[i] == '\r' && i + 1 < bytes.size() && bytes[i + 1] == '\n')) want += bytes[i];
        CHECK(qp_decode(enc) == want);
    }
    std::string enc;
    QpEncoder e([&](std::string_view s) { enc += s; }, "\r\n");
    e.put("caf\xc3\xa9 = x \r\nend ");
    e.finish();
    CHECK(enc == "caf=C3=A9 =3D x=20\r\nend=20");
}
