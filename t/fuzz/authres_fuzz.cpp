// Fuzz target: the parsers of auth/ that read what senders write: RFC 8601
// Authentication-Results values (upstream and ARC sealed results), Received
// fields (the client from Received), DMARC records. None may crash or read
// past its input; every method result we write must parse back as one resinfo.
#include "libmail/auth/auth.hpp"
#include "libmail/auth/dmarc.hpp"

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
    auto ar = mail::auth::parse_authentication_results(in);
    (void)mail::dmarc::parse_record(in);
    std::vector<mail::HeaderField> fields{mail::HeaderField{"Received: " + in + "\n"},
                                          mail::HeaderField{"Authentication-Results: " + in + "\n"}};
    (void)mail::auth::client_from_received(fields, {"10.0.0.0/8"});
    mail::auth::Settings st;
    st.trusted_authserv_ids = {ar ? ar->authserv_id : std::string("x")};
    if (auto r = mail::auth::upstream_results(fields, st)) {
        // What we would write from those results parses back, one resinfo per line.
        for (const auto& line : r->method_results()) {
            auto back = mail::auth::parse_authentication_results("id; " + line);
            check(back && back->results.size() == 1);
        }
    }
    return 0;
}
