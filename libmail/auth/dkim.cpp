// STUB (issue 14 groundwork): replaced by the DKIM and ARC verifier.
#include "libmail/auth/dkim.hpp"

namespace mail::dkim {

std::string_view to_string(Status s) {
    switch (s) {
    case Status::none: return "none";
    case Status::pass: return "pass";
    case Status::fail: return "fail";
    case Status::policy: return "policy";
    case Status::neutral: return "neutral";
    case Status::temperror: return "temperror";
    case Status::permerror: return "permerror";
    }
    return "none";
}
struct Verifier::Impl {};
Verifier::Verifier(const std::vector<HeaderField>&, const Options&) : impl_(std::make_unique<Impl>()) {}
Verifier::~Verifier() = default;
void Verifier::body(std::string_view) {}
void Verifier::end_body() {}
std::vector<SignatureResult> Verifier::verify(dns::Resolver&) { return {}; }
ArcResult Verifier::arc(dns::Resolver&) { return {}; }

} // namespace mail::dkim
