// mmilter's job behind cmd/mmilter.cpp (mmilter(8)): its options, the
// admission settings resolved as msmtp-proxy's, and the libmilter glue that
// hands each MTA connection to a MilterSession (daemon/milter_session.hpp)
// and carries out its replies and edits through smfi_*.
#pragma once
#include "libmail/tool/admission_options.hpp"

#include <string>

namespace CLI {
class App;
}

namespace mail {

/// mmilter's options: msmtp-proxy's admission ones (ProxyOptions) and where to listen.
struct MilterOptions : ProxyOptions {
    std::optional<std::string> milter_timeout;  ///< seconds libmilter waits for the MTA
};

/// Binds mmilter's options to app.
void add_milter_options(CLI::App& app, MilterOptions& opt);

/// libmilter's connection string for a --listen value: HOST:PORT -> inet:PORT@HOST, [V6]:PORT -> inet6:PORT@V6,
/// unix:PATH (or local:PATH) as it is; an Error (usage) otherwise.
Result<std::string> milter_socket(const std::string& listen);

/// Runs the milter on --listen's socket or the one systemd passed, until SIGTERM or SIGHUP (libmilter stops on
/// either); SIGUSR1 reopens the log. The exit code.
int run_milter(Context& ctx, const MilterOptions& opt);

} // namespace mail
