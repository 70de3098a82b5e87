// mtoken's commands, behind the thin main() in cmd/mtoken.cpp.
#pragma once
#include "libmail/tool/cli.hpp"

#include <iosfwd>
#include <string>
#include <vector>

namespace mail {

/// mtoken's options, filled by CLI11.
struct TokenOptions {
    std::string command;  ///< make, check, revoke, list, expire, rotate
    std::string address, sender, ttl, delimiter;
    std::vector<std::string> addresses;
    std::vector<std::string> trusted_forwarders;  ///< check: domains whose SRS wrappers are taken off the sender
    bool once = false, dated = false, consume = false;
};

/// Runs one mtoken command; returns the exit code.
int run_token(Context& ctx, const TokenOptions& opt, std::istream& in, std::ostream& out, std::ostream& err);

} // namespace mail
