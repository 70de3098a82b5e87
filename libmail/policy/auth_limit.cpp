// AUTH limits: see auth_limit.hpp.
#include "libmail/policy/auth_limit.hpp"

#include "libmail/io/serve.hpp"

#include <algorithm>

namespace mail {

std::int64_t auth_delay(const AuthLimits& l, std::int64_t n) {
    if (n <= l.free || l.max_delay <= 0) return 0;
    std::int64_t d = 1;
    for (std::int64_t k = l.free + 1; k < n && d < l.max_delay; ++k) d *= 2;
    return std::min(d, l.max_delay);
}

bool auth_locked(const AuthLimits& l, std::int64_t n) { return l.failures > 0 && n >= l.failures; }

std::int64_t auth_window_end(const AuthLimits& l, std::int64_t now) {
    std::int64_t w = std::max<std::int64_t>(l.window, 1);
    return (now / w + 1) * w;  // the windows of Store::rate_count
}

std::string auth_key(std::string_view peer) {
    std::string k = client_key(peer);
    return k.empty() ? k : "auth:fail " + k;
}

} // namespace mail
