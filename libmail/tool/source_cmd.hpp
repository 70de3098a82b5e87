// msourced's job behind cmd/msourced.cpp (msourced(8)): resolve the settings,
// then serve SMTP (inetd, socket activation or --listen) with a fetch pass
// every --fetch-interval, or run one command: send, fetch, queue, expire.
#pragma once
#include "libmail/tool/cli.hpp"
#include "libmail/daemon/daemon_cmd.hpp"
#include "libmail/daemon/source_setup.hpp"

#include <iosfwd>
#include <optional>
#include <string>
#include <vector>

namespace mail {

/// msourced's options, filled by CLI11; unset ones come from the config file.
struct SourceOptions : SmtpDaemonOptions, SourceSettings {
    std::string command;  ///< "" (serve), send, fetch, queue, expire
    std::string from;
    std::vector<std::string> rcpts;
    bool json = false;
};

/// Runs msourced; returns the exit code. out and err are never written in inetd mode (they are the client's).
int run_source(Context& ctx, const SourceOptions& opt, bool inetd, std::istream& in, std::ostream& out, std::ostream& err);

/// True when msourced will run one session on stdin/stdout: no command, no --listen, no sockets from systemd.
bool source_inetd_mode(const SourceOptions& opt);

} // namespace mail
