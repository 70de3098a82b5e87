// What msourced and msmtp-proxy --source share to run the SOURCE/GET
// extension (msourced(8)): its options, how they resolve into a
// SourcePolicy, and the fetch thread that runs a pass every interval and
// sooner after a notice.
#pragma once
#include "libmail/daemon/daemon_cmd.hpp"
#include "libmail/daemon/source.hpp"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace CLI {
class App;
}

namespace mail {

/// The extension's options, filled by CLI11; unset ones come from the config file (the program's section).
struct SourceSettings {
    std::vector<std::string> mx_map;
    std::optional<std::string> deliver, relay, fetch_interval, hold_dir, hold_time, partial_time;
    std::optional<std::string> max_gets, get_limit, fetch_limit, rate_window, retry, retry_max, on_expiry, timeout, mx_port;
};

/// Binds the extension's options to app; with_target: --deliver and --relay too (msourced; the proxy hands
/// fetched mail to its own target, through the admission core).
void add_source_options(CLI::App& app, SourceSettings& o, bool with_target);

/// The settings resolved: the daemon options d give the host name and the session limits.
Result<SourcePolicy> resolve_source_policy(const Context& ctx, const SmtpDaemonOptions& daemon, const SourceSettings& o);

/// fetch-interval: the time between fetch passes while serving (default 60s; 0: no fetch thread).
Result<std::int64_t> resolve_fetch_interval(const Context& ctx, const SourceSettings& o);

/// The fetch thread of a daemon: a pass (and expiry) every interval, sooner after a SOURCE notice (wake) or
/// when a row left waiting is due. Starts at once; the destructor stops and joins it.
class SourceFetcher {
public:
    SourceFetcher(const SourcePolicy& p, Context& ctx, std::chrono::seconds interval, const std::atomic<bool>& stop);
    ~SourceFetcher();
    SourceFetcher(const SourceFetcher&) = delete;
    SourceFetcher& operator=(const SourceFetcher&) = delete;
    /// A notice was recorded: a pass soon.
    void wake();

private:
    void run();
    const SourcePolicy& p_;
    Context& ctx_;
    std::chrono::seconds interval_;
    const std::atomic<bool>& stop_;
    std::mutex m_;
    std::condition_variable cv_;
    bool done_ = false, woken_ = false;
    std::int64_t next_due_ = 0;  ///< from the last pass: wake then, if before the interval is up
    std::thread t_;              // last: starts once the rest is ready
};

} // namespace mail
