// Fuzz target: the DATA framing both ways (smtp_data.hpp). Input: one flags octet (bit 0: normalise bare
// newlines, bits 1-7: how the bytes are cut), then bytes. Invariants, any violation aborts:
//  - decoding the raw bytes ends exactly at the first CRLF.CRLF (the line end before the data counting)
//    or uses everything when there is none; cutting the input differently changes nothing;
//  - in normalise mode the content has CRLF line ends only; content never exceeds the size limit;
//  - encoding the bytes with write_message_stuffed and decoding that gives them back with every line end
//    made CRLF (and one added at the end when missing), using exactly the encoded length.
#include "libmail/smtp/smtp_data.hpp"

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

namespace {

void check(bool ok) {
    if (!ok) std::abort();
}

struct Decoded {
    std::size_t used = 0;
    std::string out;
    bool done = false, bare = false, too_big = false;
};

Decoded decode(std::string_view in, mail::BareNewline mode, std::size_t max, unsigned cut) {
    mail::DotDecoder d(mode, max);
    Decoded r;
    std::size_t pos = 0, step = 0;
    while (pos < in.size() && !d.done()) {
        std::size_t n = cut == 0 ? in.size() : 1 + (cut * 31 + step * 17) % (cut + 1);
        n = std::min(n, in.size() - pos);
        std::size_t u = d.feed(in.substr(pos, n), r.out);
        check(u <= n);
        if (!d.done()) check(u == n);
        pos += u;
        r.used += u;
        ++step;
    }
    r.done = d.done();
    r.bare = d.bare();
    r.too_big = d.too_big();
    check(r.out.size() <= max);
    return r;
}

bool crlf_only(const std::string& s) {
    for (std::size_t i = 0; i < s.size(); ++i) {
        if (s[i] == '\r' && (i + 1 >= s.size() || s[i + 1] != '\n')) return false;
        if (s[i] == '\n' && (i == 0 || s[i - 1] != '\r')) return false;
    }
    return true;
}

// The bytes with every CRLF, bare CR and bare LF made CRLF, and a CRLF added after a last unterminated line.
std::string canonical(std::string_view s) {
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
    if (!o.empty() && o.back() != '\n') o += "\r\n";
    return o;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size < 1) return 0;
    const auto mode = (data[0] & 1) ? mail::BareNewline::normalise : mail::BareNewline::reject;
    const unsigned cut = data[0] >> 1;
    std::string_view in(reinterpret_cast<const char*>(data) + 1, size - 1);

    // Raw bytes as a client might send them.
    Decoded a = decode(in, mode, 1 << 20, cut);
    Decoded b = decode(in, mode, 1 << 20, 0);
    check(a.used == b.used && a.out == b.out && a.done == b.done && a.bare == b.bare);
    std::string x = "\r\n" + std::string(in);
    std::size_t end = x.find("\r\n.\r\n");
    if (end == std::string::npos) check(!a.done && a.used == in.size());
    else check(a.done && a.used == end + 5 - 2);
    if (mode == mail::BareNewline::normalise) check(crlf_only(a.out));
    Decoded small = decode(in, mode, 16, cut);
    check(small.used == a.used);
    check(small.too_big == (a.out.size() > 16));

    // Round trip through the encoder.
    std::string wire;
    auto w = mail::write_message_stuffed(
        [&](const std::function<mail::Result<void>(std::string_view)>& write) -> mail::Result<void> {
            std::size_t pos = 0, step = 0;
            while (pos < in.size()) {
                std::size_t n = std::min<std::size_t>(1 + (cut + step * 7) % 23, in.size() - pos);
                if (auto r = write(in.substr(pos, n)); !r) return r;
                pos += n;
                ++step;
            }
            return {};
        },
        [&](std::string_view piece) -> mail::Result<void> {
            wire.append(piece);
            return {};
        });
    check(w.ok());
    Decoded c = decode(wire, mode, 1 << 22, cut);
    check(c.done && c.used == wire.size() && !c.bare);
    check(c.out == canonical(in));
    return 0;
}
