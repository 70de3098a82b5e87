// msmtp-proxy's job behind cmd/msmtp-proxy.cpp (msmtp-proxy(8)): resolve the
// settings, pick the way of running (inetd, socket activation, --listen),
// and serve; and the `user` commands that keep SMTP AUTH users in the store.
#pragma once
#include "libmail/app/auth_setup.hpp"
#include "libmail/tool/cli.hpp"
#include "libmail/daemon/daemon_cmd.hpp"
#include "libmail/daemon/source_setup.hpp"
#include "libmail/tool/admission_options.hpp"

#include <iosfwd>
#include <optional>
#include <string>
#include <vector>

namespace mail {

/// Runs the proxy (or a user command); returns the exit code. in/out/err are the program's streams (out and
/// err are never written in inetd mode, where they belong to the client).
int run_proxy(Context& ctx, const ProxyOptions& opt, bool inetd, std::istream& in, std::ostream& out,
              std::ostream& err);

/// True when the proxy will run one session on stdin/stdout: no --listen, no sockets from systemd, no command.
bool proxy_inetd_mode(const ProxyOptions& opt);

} // namespace mail
