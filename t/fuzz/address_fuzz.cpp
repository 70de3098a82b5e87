// Fuzz target: address lists and SMTP paths (every header and envelope is
// untrusted), with invariants: each parsed address reparses to the same
// normal form, the normal form is a fixed point, tag stripping is
// idempotent, and the three parsers agree on what they all accept.
#include "libmail/mail/address.hpp"
#include "libmail/base/limits.hpp"

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace {

void require(bool ok) {
    if (!ok) __builtin_trap();
}

bool same(const mail::Address& a, const mail::Address& b) { return a.local == b.local && a.domain == b.domain; }

// An address that a parser returned.
void check(const mail::Address& a) {
    if (a.empty()) return;
    require(!a.local.empty() && !a.domain.empty());
    require(a.local.size() <= mail::limits::local_part_length);
    require(a.domain.size() <= mail::limits::domain_length);

    // addr_spec() is a faithful rendering: it reparses to the same parts.
    std::string spec = a.addr_spec();
    auto again = mail::parse_addr_spec(spec);
    require(again.ok());
    require(same(*again, a));
    auto as_path = mail::parse_path("<" + spec + ">");
    require(as_path.ok() && same(*as_path, a));

    // The normal form is an address, and a fixed point.
    std::string n = mail::normalize_address(a);
    auto norm = mail::parse_addr_spec(n);
    require(norm.ok());
    require(mail::normalize_address(*norm) == n);
    require(norm->addr_spec() == n);

    // Normalising the parts is idempotent on what the parser accepts.
    std::string d = mail::normalize_domain(a.domain);
    require(mail::normalize_domain(d) == d);
    require(mail::normalize_local(a.local) == mail::normalize_local(norm->local));
    if (mail::is_valid_domain(a.domain)) require(mail::is_valid_domain(d));

    // Tag stripping reaches a fixed point, and what it leaves is an address.
    mail::Address s = mail::strip_sender_tags(a);
    require(!s.local.empty() && !s.domain.empty());
    require(s.display == a.display);
    mail::Address s2 = mail::strip_sender_tags(s);
    require(same(s, s2));
    auto sn = mail::parse_addr_spec(mail::normalize_address(s));
    require(sn.ok());
    require(mail::normalize_address(*sn) == mail::normalize_address(s));
    // The same with the address's own domain (and so every SRS wrapper's) trusted as a forwarder.
    const std::vector<std::string> fwd{d, "fwd.example"};
    mail::Address t = mail::strip_sender_tags(a, fwd);
    require(!t.local.empty() && !t.domain.empty());
    require(t.local.size() <= a.local.size());
    require(same(t, mail::strip_sender_tags(t, fwd)));
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::string in(reinterpret_cast<const char*>(data), size);

    auto list = mail::parse_address_list(in);
    if (list) {
        require(list->size() <= mail::limits::addresses_per_field);
        std::string joined;
        for (const auto& a : *list) {
            require(!a.empty());
            require(a.display.find_first_of("\r\n") == std::string::npos);
            check(a);
            if (!joined.empty()) joined += ',';
            joined += a.addr_spec();
        }
        // The addr-specs, rejoined, are a list with the same members.
        auto re = mail::parse_address_list(joined);
        require(re.ok() && re->size() == list->size());
        for (std::size_t i = 0; i < re->size(); ++i) require(same((*re)[i], (*list)[i]));
    } else {
        require(list.error().kind == mail::ErrorKind::data);
        require(list.error().text.find_first_of("\r\n") == std::string::npos);
    }

    auto path = mail::parse_path(in);
    if (path) check(*path);
    else require(path.error().kind == mail::ErrorKind::data);

    auto spec = mail::parse_addr_spec(in);
    if (spec) {
        check(*spec);
        // A bare addr-spec is also a one-member list and a path.
        require(list.ok() && list->size() == 1 && same((*list)[0], *spec));
        require(path.ok() && same(*path, *spec));
    } else {
        require(spec.error().kind == mail::ErrorKind::data);
    }

    // The pure helpers take any bytes.
    std::string d = mail::normalize_domain(in);
    if (mail::is_valid_domain(in)) {
        require(mail::is_valid_domain(d));
        require(mail::normalize_domain(d) == d);
    }
    std::string l = mail::normalize_local(in);
    require(!l.empty());
    mail::Address raw;
    raw.local = in.substr(0, size / 2);
    raw.domain = in.substr(size / 2);
    (void)mail::normalize_address(raw);
    (void)raw.addr_spec();
    mail::Address st = mail::strip_sender_tags(raw);
    require(st.local.size() <= raw.local.size());
    return 0;
}
