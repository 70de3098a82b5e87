// STUB (issue 14 groundwork): replaced by DMARC.
#include "libmail/auth/dmarc.hpp"

namespace mail::dmarc {

std::string organizational_domain(std::string_view domain) { return std::string(domain); }
Result<Record> parse_record(std::string_view) { return Error{ErrorKind::data, "not built yet"}; }
std::string_view to_string(Status s) {
    switch (s) {
    case Status::none: return "none";
    case Status::pass: return "pass";
    case Status::fail: return "fail";
    case Status::temperror: return "temperror";
    case Status::permerror: return "permerror";
    }
    return "none";
}
Outcome check(dns::Resolver&, std::string_view from_domain, const spf::Outcome&, const std::vector<dkim::SignatureResult>&) {
    Outcome o;
    o.from_domain = std::string(from_domain);
    return o;
}
bool aligned(std::string_view a, std::string_view b, bool) { return a == b; }

} // namespace mail::dmarc
