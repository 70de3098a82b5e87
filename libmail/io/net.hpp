// Small socket helpers shared by the network programs: HOST:PORT parsing,
// connecting and reading lines under a deadline, listening sockets.
#pragma once
#include "libmail/base/error.hpp"

#include <chrono>
#include <string>
#include <string_view>

namespace mail {

/// A host and port as written: HOST:PORT, or [IPv6]:PORT.
struct HostPort {
    std::string host;
    std::string port;
};

/// Parses HOST:PORT or [IPv6]:PORT; kind usage when malformed.
Result<HostPort> parse_host_port(std::string_view text);

using Deadline = std::chrono::steady_clock::time_point;

/// Connects to hp by TCP before the deadline; the socket (blocking, close-on-exec), or kind tempfail.
Result<int> connect_tcp(const HostPort& hp, Deadline deadline);
/// Connects to the Unix stream socket at path before the deadline; the socket (close-on-exec), or kind
/// tempfail (usage when the path does not fit in a socket address).
Result<int> connect_unix(const std::string& path, Deadline deadline);
/// Binds and listens on hp (port 0: any free port); the socket, or kind tempfail.
Result<int> listen_tcp(const HostPort& hp, int backlog = 64);
/// Binds and listens on the Unix-domain stream socket path (a socket already there is replaced, anything
/// else refused with kind config); the socket, or the error.
Result<int> listen_unix(const std::string& path, int backlog = 64);
/// The local address of a socket as HOST:PORT or [IPv6]:PORT (unix:PATH for a Unix-domain one).
std::string local_address(int fd);
/// The peer's address of a connected socket, the same way.
std::string peer_address(int fd);

/// The address of a peer written HOST:PORT or [IPv6]:PORT (peer_address), or a bare address, without the
/// port or brackets; an IPv4-mapped IPv6 address as its IPv4 address; "" when the peer is no IP address
/// ("local", "?", "stdin").
std::string client_ip(std::string_view peer);
/// The network a client counts under in every per-client limit: its IPv4 address masked to v4_prefix bits
/// ("192.0.2.0/24"; the bare address when v4_prefix is 32), or the /64 of its IPv6 address
/// ("2001:db8:1:2::/64": one site's hosts pick addresses in it at will); "" when no IP address.
std::string client_net(std::string_view peer, int v4_prefix);
/// What sessions, AUTH failures and GETs of a peer are counted under: client_net(peer, 32).
std::string client_key(std::string_view peer);

/// Writes all of data before the deadline; kind tempfail otherwise.
Result<void> write_all(int fd, std::string_view data, Deadline deadline);
/// Reads one line (without its CRLF or LF) of at most max octets before the deadline.
/// Kind tempfail on timeout, error or end of input; kind data for an overlong line.
/// buf keeps octets read past the line for the next call.
Result<std::string> read_line(int fd, std::string& buf, std::size_t max, Deadline deadline);

/// This host's name ("localhost" when it has none), for Message-IDs and authserv-ids.
std::string host_name();

} // namespace mail
