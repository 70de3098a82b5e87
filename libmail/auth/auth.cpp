// STUB (issue 14 groundwork): the Results questions are real; the checks are replaced by the combined check.
#include "libmail/auth/auth.hpp"

#include "libmail/base/text.hpp"

namespace mail::auth {

bool Results::spf_pass(std::string_view domain) const {
    return spf_mailfrom.result == spf::SpfResult::pass && iequals(spf_mailfrom.domain, domain);
}
bool Results::dkim_pass(std::string_view domain) const {
    for (const auto& s : dkim)
        if (s.status == dkim::Status::pass && !s.testing && iequals(s.domain, domain)) return true;
    return false;
}
bool Results::dmarc_pass() const { return dmarc.status == dmarc::Status::pass || arc_trusted; }
bool Results::temporary() const {
    if (spf_mailfrom.result == spf::SpfResult::temperror || dmarc.status == dmarc::Status::temperror) return true;
    for (const auto& s : dkim)
        if (s.status == dkim::Status::temperror) return true;
    return false;
}
std::vector<std::string> Results::method_results() const { return {}; }

std::optional<Client> client_from_received(const std::vector<HeaderField>&, const std::vector<std::string>&) {
    return std::nullopt;
}
std::optional<Results> upstream_results(const std::vector<HeaderField>&, const Settings&) { return std::nullopt; }
Publishes publishes(dns::Resolver&, std::string_view) { return {}; }
spf::Outcome spf_at_mail(dns::Resolver&, const Client&, std::string_view, const Settings&) { return {}; }

struct Checker::Impl {};
Checker::Checker(dns::Resolver&, const Settings&, const std::vector<HeaderField>&) : impl_(std::make_unique<Impl>()) {}
Checker::~Checker() = default;
void Checker::body(std::string_view) {}
Results Checker::finish(const Client&, std::string_view mail_from, const std::optional<spf::Outcome>&) {
    Results r;
    r.mail_from = std::string(mail_from);
    return r;
}

} // namespace mail::auth
