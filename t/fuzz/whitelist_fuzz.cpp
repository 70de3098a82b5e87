// Fuzz target: whitelist entry syntax, scopes and CSV records (import files
// are untrusted input), with invariants: a parsed entry's text parses back to
// the same entry; csv_field output splits back to the field.
#include "libmail/policy/whitelist.hpp"

#include <cstddef>
#include <cstdint>
#include <string>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::string in(reinterpret_cast<const char*>(data), size);
    auto e = mail::parse_wl_entry(in);
    if (e) {
        std::string text = mail::wl_entry_text(*e);
        auto again = mail::parse_wl_entry(text);
        if (!again || again->kind != e->kind || again->value != e->value) __builtin_trap();
    }
    if (auto r = mail::parse_wl_recipient(in); r) {
        auto again = mail::parse_wl_recipient(r->value);
        if (!again || again->value != r->value) __builtin_trap();
    }
    (void)mail::parse_wl_scope(in);
    if (auto fields = mail::csv_split(in)) {
        std::string line;
        for (std::size_t i = 0; i < fields->size(); ++i) {
            if (i) line += ',';
            line += mail::csv_field((*fields)[i]);
        }
        auto back = mail::csv_split(line);
        if (!back || *back != *fields) __builtin_trap();
    }
    (void)mail::json_string(in);
    return 0;
}
