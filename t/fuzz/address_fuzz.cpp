// Fuzz target: address lists and SMTP paths (every header and envelope is
// untrusted), with invariants: each parsed address reparses to the same
// normal form, and normalisation and tag stripping are idempotent.
#include "libmail/address.hpp"

#include <cstddef>
#include <cstdint>
#include <string>

namespace {
void check(const mail::Address& a) {
    if (a.empty()) return;
    std::string n = mail::normalize_address(a);
    auto again = mail::parse_addr_spec(a.addr_spec());
    if (!again || mail::normalize_address(*again) != n) __builtin_trap();
    mail::Address s = mail::strip_sender_tags(a);
    mail::Address s2 = mail::strip_sender_tags(s);
    if (mail::normalize_address(s) != mail::normalize_address(s2)) __builtin_trap();
    if (mail::normalize_domain(mail::normalize_domain(a.domain)) != mail::normalize_domain(a.domain)) __builtin_trap();
}
} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::string in(reinterpret_cast<const char*>(data), size);
    if (auto list = mail::parse_address_list(in))
        for (const auto& a : *list) check(a);
    if (auto p = mail::parse_path(in)) check(*p);
    if (auto a = mail::parse_addr_spec(in)) check(*a);
    (void)mail::is_valid_domain(in);
    (void)mail::normalize_local(in);
    return 0;
}
