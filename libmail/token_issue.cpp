// Token issuance limits and token postage: see token_issue.hpp.
#include "libmail/token_issue.hpp"

#include "libmail/message.hpp"

#include <arpa/inet.h>

#include <algorithm>
#include <cstring>

namespace mail {

std::string client_network(std::string_view peer) {
    std::string ip(peer);
    if (!ip.empty() && ip.front() == '[') {
        auto close = ip.find(']');
        if (close == std::string::npos) return ip;
        ip = ip.substr(1, close - 1);
    } else if (std::count(ip.begin(), ip.end(), ':') == 1) {
        ip.resize(ip.find(':'));  // HOST:PORT
    }
    unsigned char a[16];
    char text[INET6_ADDRSTRLEN];
    if (::inet_pton(AF_INET, ip.c_str(), a) == 1) {
        a[3] = 0;
        ::inet_ntop(AF_INET, a, text, sizeof text);
        return std::string(text) + "/24";
    }
    if (::inet_pton(AF_INET6, ip.c_str(), a) == 1) {
        static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
        if (std::memcmp(a, mapped, sizeof mapped) == 0) {
            a[15] = 0;
            ::inet_ntop(AF_INET, a + 12, text, sizeof text);
            return std::string(text) + "/24";
        }
        std::memset(a + 8, 0, 8);
        ::inet_ntop(AF_INET6, a, text, sizeof text);
        return std::string(text) + "/64";
    }
    return std::string(peer);
}

HashcashCheck token_stamp(const MessageReader& msg, std::string_view resource, int bits, std::int64_t now) {
    HashcashCheck worst = HashcashCheck::malformed;
    for (const auto& f : msg.fields()) {
        if (!f.is("X-Hashcash") && !f.is("Hashcash")) continue;
        HashcashCheck c = check_hashcash(f.value(), resource, bits, now);
        if (c == HashcashCheck::ok) return c;
        // A stamp for this token that falls short says more than one for something else.
        if (worst == HashcashCheck::malformed || c != HashcashCheck::wrong_resource) worst = c;
    }
    return worst;
}

} // namespace mail
