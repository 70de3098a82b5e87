// mwhitelist's commands, behind the thin main() in cmd/mwhitelist.cpp.
#pragma once
#include "libmail/tool/cli.hpp"

#include <iosfwd>
#include <string>
#include <vector>

namespace mail {

/// mwhitelist's options, filled by CLI11.
struct WhitelistOptions {
    std::string command;  ///< add, remove, check, list, import, export, stats, domain-add, domain-remove, domain-list
    std::vector<std::string> args;
    std::vector<std::string> trusted_forwarders;  ///< check: domains whose SRS wrappers are taken off the sender
    std::string note, scope, sender, rcpt, file;
    std::string format = "lines";
    std::string auth = "auto";  ///< add: the authentication a hit needs (auto, spf, dkim, dmarc, none)
    bool recipient = false, from_message = false, json = false;
};

/// Runs one mwhitelist command; returns the exit code.
int run_whitelist(Context& ctx, const WhitelistOptions& opt, std::istream& in, std::ostream& out, std::ostream& err);

} // namespace mail
