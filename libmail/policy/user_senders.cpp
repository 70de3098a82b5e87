// The senders an SMTP AUTH user may use: see user_senders.hpp.
#include "libmail/policy/user_senders.hpp"

#include "libmail/mail/address.hpp"
#include "libmail/base/text.hpp"

#include <algorithm>

namespace mail {

namespace {

std::string shown(std::string_view s) { return scrub(s, 80); }

} // namespace

Result<std::string> parse_user_sender(std::string_view text) {
    auto bad = [&](std::string_view why) {
        return Error{ErrorKind::usage, "sender '" + shown(text) + "': " + std::string(why)};
    };
    if (!text.empty() && text.front() == '@') {
        std::string_view d = text.substr(1);
        if (!is_valid_domain(d) || d.front() == '[') return bad("not an address or @domain");
        return "@" + normalize_domain(d);
    }
    auto a = parse_addr_spec(text);
    if (!a || a->local.empty() || a->domain.empty()) return bad("not an address or @domain");
    if (!is_valid_domain(a->domain) || a->domain.front() == '[') return bad("not a domain after '@'");
    return normalize_address(*a);
}

std::vector<std::string> user_senders(const User& u) {
    if (!u.senders.empty()) return u.senders;
    // The login as the default only when it is a plain address: "@domain" or a literal is no login's own.
    if (u.name.empty() || u.name.front() == '@') return {};
    auto s = parse_user_sender(u.name);
    if (!s) return {};
    return {*s};
}

bool user_senders_default(const User& u) { return u.senders.empty(); }

bool may_send_as(const std::vector<std::string>& senders, std::string_view sender) {
    auto at = sender.rfind('@');
    if (sender.empty() || at == std::string_view::npos) return false;
    std::string domain = "@" + std::string(sender.substr(at + 1));
    return std::any_of(senders.begin(), senders.end(),
                       [&](const std::string& s) { return s == sender || s == domain; });
}

} // namespace mail
