// Token issuance limits and token postage: see token_issue.hpp.
#include "libmail/policy/token_issue.hpp"

#include "libmail/mail/message.hpp"
#include "libmail/io/net.hpp"

#include <arpa/inet.h>

#include <algorithm>
#include <cstring>

namespace mail {

std::string client_network(std::string_view peer) {
    std::string net = client_net(peer, 24);
    return net.empty() ? std::string(peer) : net;
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
