// The online spend check of a stamp authority (`mstamp authority serve`) and
// its client (mverify --authority). The line protocol is in mstamp(1).
#pragma once
#include "libmail/error.hpp"
#include "libmail/store.hpp"

#include <cstdint>
#include <iosfwd>
#include <string>
#include <string_view>
#include <vector>

namespace mail {

/// Asks the authority at host:port (HOST:PORT or [IPv6]:PORT) to record r.
/// Unreachable, timed out, or a malformed answer: an Error of kind tempfail, within timeout_ms in all.
Result<SpendState> remote_spend(std::string_view authority, const SpendRecord& r, int timeout_ms);

/// Options of the spend-check server.
struct SpendServerOptions {
    std::vector<std::string> listen;  ///< HOST:PORT, [IPv6]:PORT
    int max_sessions = 64;
    int idle_timeout_ms = 30000;
    std::int64_t max_requests = 0;    ///< stop after this many requests (tests); 0 = forever
};

/// Serves spend checks against store until killed (or max_requests); errors binding are returned.
Result<void> serve_spend(Store& store, const SpendServerOptions& opt, std::ostream& log);

} // namespace mail
