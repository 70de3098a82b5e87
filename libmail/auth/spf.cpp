// STUB (issue 14 groundwork): replaced by the SPF evaluator.
#include "libmail/auth/spf.hpp"

namespace mail::spf {

std::string_view to_string(SpfResult r) {
    switch (r) {
    case SpfResult::none: return "none";
    case SpfResult::neutral: return "neutral";
    case SpfResult::pass: return "pass";
    case SpfResult::fail: return "fail";
    case SpfResult::softfail: return "softfail";
    case SpfResult::temperror: return "temperror";
    case SpfResult::permerror: return "permerror";
    }
    return "none";
}
Outcome check_host(dns::Resolver&, const Query&, std::string_view domain, std::string_view) {
    Outcome o;
    o.domain = std::string(domain);
    return o;
}
Outcome check_mailfrom(dns::Resolver&, const Query&) { Outcome o; o.identity = "mailfrom"; return o; }
Outcome check_helo(dns::Resolver&, const Query&) { Outcome o; o.identity = "helo"; return o; }
Result<std::vector<Term>> parse_record(std::string_view) { return Error{ErrorKind::data, "not built yet"}; }
bool is_spf_record(std::string_view) { return false; }
Result<std::string> expand(std::string_view, const MacroContext&, bool) { return Error{ErrorKind::data, "not built yet"}; }

} // namespace mail::spf
