// Fuzz target: SPF record parsing and macro expansion (the record and the
// sender come from the network). Invariants: never crashes or reads out of
// bounds (ASan); a parsed record's terms have known names (mechanisms) or
// modifier names, qualifiers among + - ~ ?, CIDR lengths in range; every
// domain-spec of a parsed record expands (parse_record checks macro syntax),
// to at most 8192 octets; errors are one line.
#include "libmail/auth/spf.hpp"

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace {

void check(bool ok) {
    if (!ok) __builtin_trap();
}

bool one_line(const std::string& s) { return s.find('\n') == std::string::npos && s.find('\r') == std::string::npos; }

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::string_view in(reinterpret_cast<const char*>(data), size);
    // First line: the record (with "v=spf1 " put in front when missing); the rest: the sender for %{s}.
    auto nl = in.find('\n');
    std::string record(in.substr(0, nl));
    std::string sender = nl == std::string_view::npos ? "user@example.com" : std::string(in.substr(nl + 1));
    if (!mail::spf::is_spf_record(record)) record = "v=spf1 " + record;

    mail::spf::MacroContext ctx;
    ctx.sender = sender;
    ctx.domain = "example.com";
    ctx.ip = (size % 2) ? "2001:db8::cb01" : "192.0.2.3";
    ctx.helo = "mail.example.org";
    ctx.receiver = "mx.example.net";
    ctx.timestamp = 1234567890;

    auto terms = mail::spf::parse_record(record);
    bool has_cr = record.find('\r') != std::string::npos;
    if (!terms) {
        check(has_cr || one_line(terms.error().text));
    } else {
        for (const auto& t : *terms) {
            if (t.kind == mail::spf::Term::Kind::mechanism) {
                check(t.qualifier == '+' || t.qualifier == '-' || t.qualifier == '~' || t.qualifier == '?');
                check(t.name == "all" || t.name == "include" || t.name == "a" || t.name == "mx" || t.name == "ptr" ||
                      t.name == "ip4" || t.name == "ip6" || t.name == "exists");
                check(t.cidr4 >= -1 && t.cidr4 <= 32);
                check(t.cidr6 >= -1 && t.cidr6 <= 128);
                if (t.name == "ip4" || t.name == "ip6" || t.domain_spec.empty()) continue;
            } else {
                check(!t.name.empty());
            }
            auto e = mail::spf::expand(t.domain_spec, ctx, false);
            check(e.ok() || e.error().text == "macro expansion too long");
        }
    }
    // The whole input as a macro-string, both ways.
    for (bool exp : {false, true}) {
        auto e = mail::spf::expand(in, ctx, exp);
        if (e) check(e->size() <= 8192 + 1024);
    }
    return 0;
}
