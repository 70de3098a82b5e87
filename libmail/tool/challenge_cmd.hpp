// mchallenge's job behind cmd/mchallenge.cpp (mchallenge(1)): the delivery
// agent that holds unknown mail and challenges its sender, the confirm and
// bounce loops, and the preview commands over the held queue.
#pragma once
#include "libmail/app/auth_setup.hpp"
#include "libmail/tool/cli.hpp"

#include <iosfwd>
#include <optional>
#include <string>
#include <vector>

namespace mail {

/// mchallenge's options, filled by CLI11; unset ones come from the config file.
struct ChallengeOptions {
    std::string command;  ///< "" (deliver a message), list, show, release, delete, whitelist, expire, bounce, digest
    std::optional<std::string> sender;
    std::vector<std::string> rcpts;
    bool trust_upstream = false;
    std::optional<std::string> deliver;        ///< a delivery target (parse_delivery_target)
    std::optional<std::string> relay;          ///< HOST:PORT for challenges
    std::optional<std::string> sendmail;       ///< a sendmail program for challenges
    std::optional<std::string> hold_dir, hold_time, quota, template_file, hostname, max_size;
    std::optional<bool> tag;
    std::vector<std::string> trusted_forwarders;  ///< domains whose SRS wrappers are taken off
    AuthOptions auth;                             ///< the client, trusted relays, authserv-ids, ARC sealers
    // list, show, release, delete, whitelist, expire
    std::vector<std::string> ids;
    bool json = false;
    std::optional<std::string> older, list_sender, after;
    bool all = false;
    // digest
    std::optional<std::string> digest_to, since;
};

/// Runs one command; returns the exit code. As a delivery agent (no command) nothing goes to out, and the
/// code is 0 once the message is delivered, held or handled, 75 when it is not.
int run_challenge(Context& ctx, const ChallengeOptions& opt, std::istream& in, std::ostream& out, std::ostream& err);

} // namespace mail
