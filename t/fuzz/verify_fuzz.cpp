// Fuzz target: the border of mverify. Whatever verdict fields an incoming
// message carries, after strip_verdicts and add_verdict_fields exactly one
// X-Mailstamp-* field and exactly one Authentication-Results under our
// authserv-id remain, and both are ours (the first two fields). The envelope
// and From readers and the postage parser never crash. Violations trap.
#include "libmail/mail/message.hpp"
#include "libmail/policy/postage.hpp"
#include "libmail/policy/verify.hpp"

#include <cstddef>
#include <cstdint>
#include <sstream>
#include <string>

namespace {
void check(bool ok) {
    if (!ok) __builtin_trap();
}
} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string in(reinterpret_cast<const char*>(data), size);
    std::istringstream src(in);
    mail::MessageReader r(src);
    if (!r.read_header()) return 0;

    auto env = mail::envelope_of(r, std::nullopt, {}, {"ours.example"});
    if (env) (void)mail::from_addresses(r, {"fwd.example"});
    for (const auto& v : r.get_all("Mailstamp-Postage")) (void)mail::parse_postage(v);
    (void)mail::has_postage(r);

    const std::string id = "mx.ours.example";
    mail::strip_verdicts(r, id);
    mail::Verdict v;
    v.reason = in.substr(0, 30);  // untrusted text in the reason must not break the fields either
    mail::add_verdict_fields(r, v, id);

    std::ostringstream out;
    check(r.write_header(out).ok());
    std::istringstream back(out.str() + "\n");
    mail::MessageReader r2(back);
    if (!r2.read_header()) return 0;  // only when our additions pushed it past a limit
    std::size_t ours = 0, ar = 0;
    for (std::size_t i = 0; i < r2.fields().size(); ++i) {
        const auto& f = r2.fields()[i];
        std::string_view n = f.name();
        if (n.size() > 12 && mail::iequals(n.substr(0, 12), "X-Mailstamp-")) {
            ++ours;
            check(i == 0);
        }
        if (f.is("Authentication-Results")) {
            std::string val = f.value();
            if (mail::iequals(std::string_view(val).substr(0, id.size() + 1), id + ";")) {
                ++ar;
                check(i == 1);
            }
        }
    }
    check(ours == 1 && ar == 1);
    return 0;
}
