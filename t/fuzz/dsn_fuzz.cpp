// Fuzz target: the non-delivery notice parser (every bounce is untrusted).
// Invariants: it never fails on input within the size limit; counts stay in
// their bounds; addresses, diagnostics, ids and host names are single lines
// without controls and within their lengths; statuses are RFC 3463 failure
// codes; a non-notice reports no recipients; parsing is deterministic.
#include "libmail/mail/dsn.hpp"
#include "libmail/base/limits.hpp"

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

namespace {

void require(bool ok) {
    if (!ok) std::abort();
}

bool clean(std::string_view s) {
    for (char c : s)
        if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) return false;
    return true;
}

bool digits(std::string_view s, std::size_t min, std::size_t max) {
    if (s.size() < min || s.size() > max) return false;
    for (char c : s)
        if (c < '0' || c > '9') return false;
    return true;
}

// class "." subject "." detail (RFC 3463 §2), class 4 or 5.
bool failure_status(std::string_view s) {
    if (s.size() < 5 || (s[0] != '4' && s[0] != '5') || s[1] != '.') return false;
    std::size_t dot = s.find('.', 2);
    if (dot == std::string_view::npos) return false;
    return digits(s.substr(2, dot - 2), 1, 3) && digits(s.substr(dot + 1), 1, 3);
}

bool known_format(std::string_view f, bool notice) {
    if (f.empty()) return !notice;
    for (std::string_view k : {"rfc3464", "exim", "qmail", "postfix-text", "sendmail-text", "exchange", "gmail", "yahoo",
                               "gmx", "zoho", "ses", "mailru", "domino", "groupwise", "mdaemon", "smtp32", "iplanet",
                               "pmdf", "courier", "simple", "generic"})
        if (f == k) return true;
    return false;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view in(reinterpret_cast<const char*>(data), size);
    auto r = mail::parse_dsn(in);
    require(r.ok());  // only a message over limits::message_size is an error
    const mail::DsnReport& d = *r;

    require(known_format(d.format, d.is_notice));
    require(d.recipients.size() <= mail::limits::dsn_recipients);
    if (!d.is_notice) require(d.recipients.empty());
    bool any_temp = false;
    for (const auto& rc : d.recipients) {
        require(rc.address.size() <= mail::limits::address_length);
        require(clean(rc.address));
        require(rc.diagnostic.size() <= mail::limits::dsn_diagnostic);
        require(clean(rc.diagnostic));
        require(rc.diagnostic.empty() || (rc.diagnostic.front() != ' ' && rc.diagnostic.back() != ' '));
        require(rc.status.empty() || failure_status(rc.status));
        any_temp = any_temp || !rc.permanent;
    }
    if (!d.recipients.empty()) require(d.permanent == !any_temp);
    require(d.reporting_mta.size() <= mail::limits::domain_length && clean(d.reporting_mta));
    require(d.original_sender.size() <= mail::limits::address_length && clean(d.original_sender));
    if (!d.original_message_id.empty()) {
        const std::string& id = d.original_message_id;
        require(id.size() >= 3 && id.front() == '<' && id.back() == '>' && id.size() <= 998);
        require(clean(id) && id.find(' ') == std::string::npos);
    }

    // Deterministic.
    auto again = mail::parse_dsn(in);
    require(again.ok() && again->recipients.size() == d.recipients.size() && again->format == d.format &&
            again->original_message_id == d.original_message_id);
    return 0;
}
