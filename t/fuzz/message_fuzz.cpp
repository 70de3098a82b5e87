// Fuzz target: the message reader. Invariants:
//  (a) with no edit, what is written is exactly what was read;
//  (b) after remove/prepend/tag_subject the output reads back as the same
//      message with exactly those edits: same mbox line, the added field
//      first, the other fields in order, a tagged Subject, the same body.
// Edits must never fail or crash. Any violation traps.
#include "libmail/mail/message.hpp"

#include <cstddef>
#include <cstdint>
#include <sstream>
#include <streambuf>
#include <string>
#include <vector>

namespace {

// Discards what is written, counting it.
class NullBuf : public std::streambuf {
public:
    std::size_t count = 0;

protected:
    std::streamsize xsputn(const char*, std::streamsize n) override {
        count += static_cast<std::size_t>(n);
        return n;
    }
    int_type overflow(int_type c) override {
        if (c != traits_type::eof()) ++count;
        return traits_type::not_eof(c);
    }
};

void check(bool ok) {
    if (!ok) __builtin_trap();
}

// The whole body, read in awkward small chunks.
std::string body_of(mail::MessageReader& r) {
    std::string body;
    char buf[7];
    for (std::size_t step = 1;; step = step % sizeof buf + 1) {
        auto n = r.read_body(buf, step);
        check(n.ok());
        if (*n == 0) break;
        body.append(buf, *n);
    }
    return body;
}

std::string sanitized(std::string_view v) {
    std::string s;
    // As mail::scrub() (base/text.hpp) documents it: HTAB becomes a space, every other control and DEL '?'.
    for (char c : v) {
        auto u = static_cast<unsigned char>(c);
        s.push_back(c == '\t' ? ' ' : u < 0x20 || u == 0x7f ? '?' : c);
    }
    std::size_t b = 0, e = s.size();
    while (b < e && (s[b] == ' ' || s[b] == '\t')) ++b;
    while (e > b && (s[e - 1] == ' ' || s[e - 1] == '\t')) --e;
    return s.substr(b, e - b);
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string in(reinterpret_cast<const char*>(data), size);
    // A small message-size limit for some inputs, so the limit paths run too.
    const std::size_t max = size > 0 && data[0] % 4 == 0 ? size / 2 + 1 : 1 << 20;

    // (a) Round trip, also through a discarding stream.
    {
        std::istringstream src(in);
        mail::MessageReader r(src, max);
        auto h = r.read_header();
        if (!h) {
            check(h.error().kind == mail::ErrorKind::data);
        } else {
            std::ostringstream out;
            check(r.write_header(out).ok());
            auto c = r.copy_body(out);
            if (c) {
                check(out.str() == in);
                check(r.octets_read() == in.size());
            } else {
                check(c.error().kind == mail::ErrorKind::data && in.size() > max);
            }
        }
    }

    // (b) Edits, written to a discarding stream and read back.
    std::istringstream src(in);
    mail::MessageReader r(src);
    if (!r.read_header()) return 0;
    const std::string mbox = r.mbox_from();
    std::vector<std::string> names;
    bool has_subject = false;
    for (const auto& f : r.fields()) {
        if (f.is("X-Mailstamp-Class")) continue;
        names.emplace_back(f.name());
        has_subject = has_subject || f.is("Subject");
    }
    if (!has_subject) names.emplace_back("Subject");
    (void)r.get("Subject");
    (void)r.get_all("Received");
    const std::string value = in.substr(0, 40);
    r.remove("X-Mailstamp-Class");
    r.prepend("X-Mailstamp-Class", value);
    r.tag_subject("[B]");

    NullBuf null;
    std::ostream sink(&null);
    check(r.write_header(sink).ok());
    std::ostringstream edited;
    check(r.write_header(edited).ok());
    check(null.count == edited.str().size());
    const std::string body = body_of(r);
    edited << body;

    // Read back, unless the edits legitimately pushed it over a limit.
    if (names.size() + 1 > mail::limits::header_fields || in.size() + 64 > mail::limits::line_length) return 0;
    std::istringstream back(edited.str());
    mail::MessageReader r2(back);
    check(r2.read_header().ok());
    check(r2.mbox_from().substr(0, mbox.size()) == mbox);
    check(r2.fields().size() == names.size() + 1);
    check(r2.fields()[0].is("X-Mailstamp-Class"));
    check(r2.fields()[0].value() == sanitized(value));
    for (std::size_t i = 0; i < names.size(); ++i) check(r2.fields()[i + 1].name() == names[i]);
    auto subject = r2.get("Subject");
    check(subject.has_value() && subject->rfind("[B]", 0) == 0);
    check(subject->size() == 3 || (*subject)[3] == ' ' || (*subject)[3] == '\t');
    check(body_of(r2) == body);
    return 0;
}
