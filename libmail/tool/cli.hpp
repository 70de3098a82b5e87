// What every program's main() shares on the command line: the common
// options (--config, --db, --log, --log-level, --version) and CLI11 parsing
// with sysexits codes. The resolved settings, store and logger are
// app/context.hpp.
#pragma once
#include "libmail/app/auth_setup.hpp"
#include "libmail/app/context.hpp"

#include <optional>
#include <string>

namespace CLI {
class App;
}

namespace mail {

/// Binds --config, --db, --log, --log-level and --version to app.
void add_common_options(CLI::App& app, CommonOptions& opt);

/// Binds --dns HOST:PORT[,HOST:PORT] to opt.dns and marks the program as one that looks up DNS
/// (make_context then resolves the setting; Context::resolver() asks the servers).
void add_dns_option(CLI::App& app, CommonOptions& opt);

/// Adds --NAME and --no-NAME to app (they exclude each other): target becomes true or false when one is given.
void add_switch(CLI::App& app, const std::string& name, std::optional<bool>& target, const std::string& yes_help,
                const std::string& no_help);

/// Binds the sender authentication options: --trusted-relay, --trusted-authserv-id, --trusted-arc-sealer, and
/// with client (the filters) --client-ip and --helo.
void add_auth_options(CLI::App& app, AuthOptions& opt, bool client);

/// Parses argv: -1 to go on; else the exit code (0 after --help or --version, 64 on a usage error).
int parse_cli(CLI::App& app, int argc, char** argv);

} // namespace mail
