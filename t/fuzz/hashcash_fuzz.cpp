// Fuzz target: hashcash stamps as found in incoming X-Hashcash headers.
// Invariant: a stamp that checks ok parses and is worth what it claims.
#include "libmail/policy/hashcash.hpp"

#include <cstddef>
#include <cstdint>
#include <string>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::string in(reinterpret_cast<const char*>(data), size);
    auto s = mail::parse_hashcash(in);
    (void)mail::parse_hashcash_date(in);
    std::string resource = s ? s->resource : "x@y.org";
    if (mail::check_hashcash(in, resource, 0, 1795392000) == mail::HashcashCheck::ok) {
        if (!s || mail::hashcash_value(s->text) < s->bits) __builtin_trap();
    }
    return 0;
}
