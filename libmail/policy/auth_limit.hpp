// How failed SMTP AUTH attempts from one client address are slowed down and
// then refused (msmtp-proxy(8), "AUTH limits"). Failures are counted per
// client key (an IPv4 address, an IPv6 /64: serve.hpp) in fixed windows of
// `window` seconds, in the store (rate_count under "auth:fail "), so every
// process sharing the store counts together: the sessions of one daemon,
// inetd's process per session, the incoming and the submission listener.
// The first `free` failures of a window are answered at once, each later
// one after 1, 2, 4... seconds (at most max_delay); once `failures` have
// been counted, AUTH from that address is refused with 454 until the window
// ends, a good password too, and no password is hashed for it.
#pragma once
#include "libmail/base/limits.hpp"

#include <cstdint>
#include <string>
#include <string_view>

namespace mail {

/// The settings of the AUTH limits.
struct AuthLimits {
    std::int64_t failures = limits::auth_failures;    ///< failures in a window that lock the address out; 0: no limit
    std::int64_t window = limits::auth_window;        ///< seconds; counting window and so the longest lockout
    std::int64_t free = limits::auth_free_failures;   ///< failures in a window answered without delay
    std::int64_t max_delay = limits::auth_max_delay;  ///< the longest delay, seconds
};

/// Seconds to hold back the answer to the n-th failure of a window: 0 up to free, then 1, 2, 4... up to max_delay.
std::int64_t auth_delay(const AuthLimits& l, std::int64_t n);
/// True when n failures in a window lock the address out (never when l.failures is 0).
bool auth_locked(const AuthLimits& l, std::int64_t n);
/// When the window holding now ends (a lockout begun at now lasts until then).
std::int64_t auth_window_end(const AuthLimits& l, std::int64_t now);
/// The store key the failures of peer (HOST:PORT) are counted under: "auth:fail " and its client_key; "" when
/// peer is no IP address (stdin of a test, a Unix socket): such sessions are not counted.
std::string auth_key(std::string_view peer);

} // namespace mail
