// The admission core's sender authentication lookup (admission.hpp AuthLookup) as every front end uses it:
// the SPF outcome at MAIL and the full results at the end of the message, as the front end computed them
// with auth/ (auth::spf_at_mail, auth::Checker), and what a domain publishes asked of the resolver once per
// domain per message.
#pragma once
#include "libmail/auth/auth.hpp"
#include "libmail/policy/admission.hpp"

#include <functional>
#include <map>
#include <optional>
#include <string>

namespace mail {

/// An AuthLookup over a resolver, fed by its front end.
class FrontAuth : public AuthLookup {
public:
    /// Writes one log line for an event ("forged", "unauthenticated_hit").
    using Note = std::function<void(std::string_view event, std::string_view identity, std::string_view detail)>;
    /// Lookups through resolver (which must outlive this); events to note.
    FrontAuth(dns::Resolver& resolver, Note note) : resolver_(resolver), note_(std::move(note)) {}

    /// The SPF outcome at MAIL; nothing: not evaluated.
    void set_spf(std::optional<spf::Outcome> o) { spf_ = std::move(o); }
    /// The results once the message is read.
    void set_results(std::optional<auth::Results> r) { results_ = std::move(r); }
    /// Forgets everything (a new transaction).
    void reset();

    std::optional<spf::Outcome> spf_at_mail() override { return spf_; }
    const auth::Results* results() override { return results_ ? &*results_ : nullptr; }
    auth::Publishes publishes(std::string_view domain) override;
    void note(std::string_view event, std::string_view identity, std::string_view detail) override;

private:
    dns::Resolver& resolver_;
    Note note_;
    std::optional<spf::Outcome> spf_;
    std::optional<auth::Results> results_;
    std::map<std::string, auth::Publishes, std::less<>> published_;  ///< this message's answers
};

} // namespace mail
