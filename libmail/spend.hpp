// The online spend check of a stamp authority (`mstamp authority serve`) and
// its client (mverify --authority).
//
// Protocol: one TCP connection, lines ending in CRLF (LF accepted), at most
// 1024 octets. The client sends
//   SPEND <stamp-key> <message-key> <expires>
// where stamp-key is "book:<book id in hex>:<index>", message-key is the hex
// SHA-256 of the receiver's message identity (Message-ID and body hash), and
// expires is when the record may be dropped (Unix seconds). The server
// records the pair unless the stamp is already recorded, and answers
//   250 fresh    first time this stamp is seen: recorded
//   251 same     seen before on this same message: not a double spend
//   550 spent    seen before on another message: a double spend
//   500 <reason> a malformed request
// Several requests may follow on one connection; QUIT gets "221 bye" and
// the connection closes. An idle connection is closed after a timeout.
#pragma once
#include "libmail/error.hpp"
#include "libmail/store.hpp"

#include <cstdint>
#include <functional>
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
    /// Called with each bound address (HOST:PORT, the real port when 0 was asked for) once listening.
    std::function<void(const std::string&)> on_listen;
};

/// Serves spend checks against store until killed (or max_requests); errors binding are returned.
Result<void> serve_spend(Store& store, const SpendServerOptions& opt, std::ostream& log);

/// The answer line for a request line (no line end), recording through store; exposed for tests.
std::string spend_answer(Store& store, std::string_view request, std::int64_t now);

} // namespace mail
