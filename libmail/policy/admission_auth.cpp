// The admission core's sender authentication lookup: see admission_auth.hpp.
#include "libmail/policy/admission_auth.hpp"

namespace mail {

void FrontAuth::reset() {
    spf_.reset();
    results_.reset();
    published_.clear();
}

auth::Publishes FrontAuth::publishes(std::string_view domain) {
    if (auto p = published_.find(domain); p != published_.end()) return p->second;
    auth::Publishes p = auth::publishes(resolver_, domain);
    // A temporary answer is not kept: the next question asks again. At most a handful of domains per message.
    if (!p.temporary && published_.size() < 16) published_.emplace(std::string(domain), p);
    return p;
}

void FrontAuth::note(std::string_view event, std::string_view identity, std::string_view detail) {
    if (note_) note_(event, identity, detail);
}

} // namespace mail
