// mmilter --policy behind cmd/mmilter.cpp (mmilter(8)): the Postfix policy
// service. Resolves its settings, then runs one session on stdin/stdout
// (Postfix spawn(8), inetd), or serves the sockets systemd passed and those
// of --listen (HOST:PORT or unix:PATH) with a bound on connections.
#pragma once
#include "libmail/app/context.hpp"

#include <optional>
#include <string>
#include <vector>

namespace CLI {
class App;
}

namespace mail {

/// The policy service's options, filled by CLI11; unset ones come from the config file ([mmilter]).
struct PolicyOptions {
    std::vector<std::string> listen;  ///< HOST:PORT or unix:PATH; none (and no sockets from systemd): stdin/stdout
    std::optional<std::string> hostname, user, max_sessions, idle_timeout, claim_at;
    std::optional<std::string> token_ttl, token_limit_network, token_limit_sender, spf;
    std::optional<bool> batv;
    std::vector<std::string> trusted_forwarders;
};

/// Binds the policy service's options to app.
void add_policy_options(CLI::App& app, PolicyOptions& o);

/// True when the service runs one session on stdin/stdout: no --listen and no sockets from systemd.
bool policy_stdin_mode(const PolicyOptions& opt);

/// Runs the policy service; returns the exit code: 0 when the client ended the session (or, listening, on
/// SIGTERM), 65 when it broke the protocol or a bound, the setting's error's code for a bad setting.
int run_policy(Context& ctx, const PolicyOptions& opt, bool stdin_mode);

} // namespace mail
