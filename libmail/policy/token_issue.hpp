// The price of a token address handed out in a 550 (msmtp-proxy(8), the
// issue "Nothing lost, nothing raced", attack 9): how many a client network
// and a sender may collect a day is counted under the network a client
// belongs to, and with --unknown token-postage the resend to such a token
// must carry a hashcash stamp minted for the token address itself, so every
// scripted resend costs work and a stamp cannot serve two tokens.
#pragma once
#include "libmail/policy/hashcash.hpp"

#include <cstdint>
#include <string>
#include <string_view>

namespace mail {

class MessageReader;

/// The network a client counts under: the /24 of an IPv4 address (IPv4-mapped IPv6 included) or the /64 of
/// an IPv6 one, as "192.0.2.0/24" or "2001:db8::/64". peer is "HOST:PORT", "[IPv6]:PORT" or a bare address;
/// anything else ("local", "?") comes back as it is.
std::string client_network(std::string_view peer);

/// Looks at every X-Hashcash (and Hashcash) field of msg for a stamp minted for resource (the token
/// address) worth at least bits and in date at now: ok when one is; else the most telling failure
/// (malformed when there is no stamp at all).
HashcashCheck token_stamp(const MessageReader& msg, std::string_view resource, int bits, std::int64_t now);

} // namespace mail
