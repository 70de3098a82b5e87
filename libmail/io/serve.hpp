// How a network program runs (DESIGN §2): one session on stdin/stdout
// (inetd, tcpserver, systemd Accept=yes), sockets passed by systemd
// (LISTEN_FDS; listening or connected, told apart by SO_ACCEPTCONN), or
// its own listening sockets; with a bound on concurrent sessions, a thread
// per session, privileges dropped after binding, and a clean stop on
// SIGTERM. Shared by msmtp-proxy and msourced.
#pragma once
#include "libmail/io/net.hpp"
#include "libmail/base/error.hpp"

#include <atomic>
#include <cstddef>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace mail {

/// A socket handed to the program: by systemd, or bound by it.
struct ServeSocket {
    int fd = -1;
    std::string name;        ///< LISTEN_FDNAMES entry, or the --listen address, or a role ("submission")
    bool listening = true;   ///< false: an already connected socket (Accept=yes without StandardInput=socket)
};

/// The sockets systemd passed (LISTEN_PID must be this process); empty when none. Clears the variables.
std::vector<ServeSocket> activated_sockets();
/// True when systemd passed this process sockets (LISTEN_FDS with LISTEN_PID naming it).
bool sockets_passed();

/// One accepted (or passed) connection: read and write descriptors, the peer's address, the socket it came on.
/// The function owns the descriptors.
using SessionFn = std::function<void(int rfd, int wfd, const std::string& peer, const ServeSocket& via)>;

/// The bounds on concurrent sessions of serve().
struct ServeLimits {
    std::size_t sessions = 100;    ///< in all
    std::size_t per_client = 10;   ///< from one client address (client_key); 0: no bound
};

/// Which bound a refused connection hit.
enum class Busy { total, per_client };

/// What to do when a bound is reached: write the refusal to the new connection (then it is closed). peer is
/// the connection's address (HOST:PORT).
using BusyFn = std::function<std::string(const ServeSocket& via, Busy why, const std::string& peer)>;

/// Accepts on every listening socket and runs each connection in its own thread (connected sockets run at
/// once), at most limits.sessions at a time and limits.per_client from one client address; returns when
/// stop becomes true and the sessions have ended (or after grace seconds more).
void serve(const std::vector<ServeSocket>& sockets, const ServeLimits& limits, const SessionFn& session,
           const BusyFn& busy, const std::atomic<bool>& stop, int grace_seconds = 30);


/// Sessions running now in serve().
std::size_t active_sessions();

/// Switches to user (and its groups) when running as root; kind config for an unknown user, noperm on failure.
/// The Unix-domain sockets at socket_paths, made as root, are given to user and its group first, mode 0660,
/// so that the MTA's user, put in that group, can connect (as OpenDKIM's socket on Debian).
Result<void> drop_privileges(const std::string& user, const std::vector<std::string>& socket_paths = {});

/// The paths of the unix:PATH addresses among listen.
std::vector<std::string> unix_socket_paths(const std::vector<std::string>& listen);

/// Installs SIGTERM/SIGINT handlers that set stop, SIGHUP that sets hup, and ignores SIGPIPE.
void install_stop_signals(std::atomic<bool>& stop, std::atomic<bool>& hup);

} // namespace mail
