// Fuzz target: the SMTP command parser. Any line parses or fails with a
// reply text starting with a 5xx code; a parsed MAIL or RCPT path never
// contains CR or LF, and parameter keys are upper case. Violations trap.
#include "libmail/smtp/smtp_command.hpp"

#include <cstddef>
#include <cstdint>
#include <string>

namespace {
void check(bool ok) {
    if (!ok) __builtin_trap();
}
} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string in(reinterpret_cast<const char*>(data), size);
    auto r = mail::parse_smtp_command(in);
    if (!r) {
        check(r.error().text.size() > 4 && r.error().text[0] == '5');
        return 0;
    }
    check(r->path.find_first_of("\r\n") == std::string::npos);
    for (const auto& [k, v] : r->params) {
        check(!k.empty());
        for (char c : k) check(!(c >= 'a' && c <= 'z'));
        (void)v;
    }
    return 0;
}
