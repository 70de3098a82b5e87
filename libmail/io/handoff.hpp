// Handing the real client to the MTA behind the proxy (msmtp-proxy(8),
// --xclient and --relay-proxy-protocol), so that its own client checks,
// limits and logs see the client and not the proxy:
//  - Postfix's XCLIENT command (XCLIENT_README): after the downstream's EHLO
//    names it, ADDR, PORT, NAME, HELO, LOGIN and PROTO are sent (each value
//    xtext-encoded, each command line within SMTP's 512 octets), the server
//    answers 220 as to a new connection (250 in the older form, as smtp-sink
//    does), and the client greets again with the client's own HELO name;
//  - the binary PROXY protocol v2 header (HAProxy's proxy-protocol.txt),
//    written before anything else on a new downstream connection: TCP over
//    IPv4 or IPv6 with the client's address and port and the address and port
//    it connected to.
#pragma once
#include "libmail/base/error.hpp"
#include "libmail/io/dns.hpp"

#include <string>
#include <string_view>
#include <vector>

namespace mail {

class SmtpClient;

/// --xclient: never, when the downstream offers it (the default), or required.
enum class XclientMode { no, offered, required };
/// --relay-proxy-protocol: none (the default) or the v2 binary header.
enum class ProxyProtocol { none, v2 };

/// How the proxy hands the client on to its relay.
struct HandoffPolicy {
    XclientMode xclient = XclientMode::offered;
    ProxyProtocol proxy = ProxyProtocol::none;
};

/// The client as the proxy saw it.
struct RealClient {
    std::string peer;          ///< its address, HOST:PORT or [IPv6]:PORT (peer_address)
    std::string local;         ///< the address it connected to, the same way (local_address)
    std::string name;          ///< its forward-confirmed reverse name; "" when it has none
    bool name_temporary = false;  ///< the name lookup failed temporarily ([TEMPUNAVAIL])
    std::string helo;          ///< what it said in HELO/EHLO ("" when nothing)
    bool esmtp = false;        ///< it said EHLO
    std::string login;         ///< the user it authenticated as at the proxy; "" when none

    /// One string that differs when anything XCLIENT carries differs (a kept connection is handed over
    /// again only when it does).
    std::string key() const;
};

/// RFC 3461 xtext: octets outside "!".."~", and "+" and "=", as +XX (upper-case hex).
std::string xtext(std::string_view value);

/// The XCLIENT command lines for c (without CRLF), each at most 510 octets, with only the attributes the
/// server named after XCLIENT in its EHLO reply (offered, upper case; empty: all six). A value whose xtext
/// is over 255 octets (Postfix's limit for names) is sent as [UNAVAILABLE].
std::vector<std::string> xclient_lines(const RealClient& c, const std::vector<std::string>& offered);

/// The PROXY protocol v2 header for a TCP connection from source to dest (HOST:PORT or [IPv6]:PORT): family
/// TCP4 when both are IPv4, else TCP6 (an IPv4 address as IPv4-mapped); a LOCAL header (the receiver uses
/// the connection's own addresses) when either is no IP address ("local", "?", "stdin").
std::string proxy_v2_header(std::string_view source, std::string_view dest);

/// The forward-confirmed reverse name of the numeric address ip: the first of its PTR names (at most 10
/// tried) whose A or AAAA records include ip; "" when none. temporary is set when a lookup failed
/// temporarily and no name was confirmed.
std::string confirmed_name(dns::Resolver& resolver, std::string_view ip, bool& temporary);

/// Hands c to the server client is connected to: under XclientMode::offered only when its EHLO reply names
/// XCLIENT, under required always (a server that does not offer it is kind tempfail); then greets again as
/// the client (EHLO or HELO with c's HELO name, fallback_helo when it gave none). Nothing is sent when the
/// connection was handed this very client before. Any refusal is kind tempfail naming the reply.
Result<void> hand_off(SmtpClient& client, XclientMode mode, const RealClient& c, const std::string& fallback_helo);

} // namespace mail
