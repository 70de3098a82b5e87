// What the SMTP daemons (msmtp-proxy, msourced) share on the way in: their
// common options (listening, limits, times, TLS, the user to become), how
// those are resolved, the sockets they serve, the inetd session, and how a
// failure is told when stdout is the client.
#pragma once
#include "libmail/app/context.hpp"
#include "libmail/io/serve.hpp"
#include "libmail/io/smtp_io.hpp"
#include "libmail/smtp/smtp_server.hpp"

#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace CLI {
class App;
}

namespace mail {

/// The options every SMTP daemon has, filled by CLI11; unset ones come from the config file.
struct SmtpDaemonOptions {
    std::vector<std::string> listen;  ///< ADDR:PORT; none (and no sockets from systemd): inetd mode
    std::optional<std::string> hostname, user, tls_cert, tls_key, max_sessions, max_per_client;
    std::optional<std::string> max_recipients, max_message_size, line_length, bare_newline;
    std::optional<std::string> command_timeout, session_time, min_data_rate, greet_delay;
};

/// Binds the common daemon options to app.
void add_smtp_daemon_options(CLI::App& app, SmtpDaemonOptions& o);

/// The host name (--hostname, config, else this host's), checked.
Result<std::string> resolve_hostname(const Context& ctx, const SmtpDaemonOptions& o);
/// Limits and times of the sessions into cfg (hostname included) and times.
Result<void> resolve_smtp_limits(const Context& ctx, const SmtpDaemonOptions& o, const std::string& hostname,
                                 SmtpServerConfig& cfg, SessionTimes& times);
/// The STARTTLS context from tls-cert and tls-key, or nullptr when neither is set.
Result<SSL_CTX*> resolve_server_tls(const Context& ctx, const SmtpDaemonOptions& o);
/// systemd's sockets, then one listening socket per address of listen (HOST:PORT, or unix:PATH for a Unix-domain
/// socket), named name.
Result<std::vector<ServeSocket>> daemon_sockets(const std::vector<std::string>& listen, const std::string& name);
/// The bounds on concurrent sessions: max-sessions (default 100) and max-per-client (default 10, 0: none).
Result<ServeLimits> resolve_serve_limits(const Context& ctx, const SmtpDaemonOptions& o);
/// What serve() answers when a bound is reached (a 421 naming hostname), with a warning in the log.
BusyFn busy_reply(Context& ctx, const std::string& hostname, const ServeLimits& limits);
/// The user to become after binding ("" = stay).
std::string resolve_user(const Context& ctx, const SmtpDaemonOptions& o);

/// Reports e and returns its exit code: on stderr, or in inetd mode (stdout is the client) as a 421 to
/// the client, a log line, and the diagnostic on stderr unless stderr is the client too (inetd_start_failure).
int daemon_failure(Context& ctx, bool inetd, const Error& e);

/// In inetd mode, before there is a Context (a bad config file): "program: reason" on stderr unless stderr is
/// the client's socket (stderr_is_peer()), and a 421 to the client on stdout; returns e's exit code.
int inetd_start_failure(std::string_view program, const Error& e);

/// A store connection for one session from pool; none when the store cannot be opened, after logging that
/// and telling the client 421 (it retries later).
std::unique_ptr<Store> session_store(Context& ctx, StorePool& pool, Conn& conn, const std::string& peer,
                                     const std::string& hostname);

/// One session's store connection: taken from pool for run (none: the client is told 421, as session_store,
/// and run is not called), given back to pool once run returns.
void with_session_store(Context& ctx, StorePool& pool, Conn& conn, const std::string& peer, const std::string& hostname,
                        const std::function<void(Store&)>& run);

/// cfg for one session: STARTTLS offered when tls is set.
SmtpServerConfig session_config(SmtpServerConfig cfg, SSL_CTX* tls);

/// Drives server over conn to the end of the session (run_smtp_session), logging connect and disconnect (with
/// the messages taken) at debug level.
void drive_session(Context& ctx, Conn& conn, const std::string& peer, SmtpServer& server, const SessionTimes& times,
                   SSL_CTX* tls, const std::atomic<bool>* stop);

/// What a daemon does with one connection: the Conn, the peer's address and the socket it came in on.
using ConnFn = std::function<void(Conn&, const std::string&, const ServeSocket&)>;

/// Serves sockets until stop (serve()): each connection handed to run as a Conn, the log reopened after one
/// that ends when a SIGHUP has set hup, a 421 naming hostname when a bound of limits is reached (busy_reply).
void serve_daemon(Context& ctx, const std::vector<ServeSocket>& sockets, const ServeLimits& limits,
                  const std::string& hostname, std::atomic<bool>& hup, const std::atomic<bool>& stop, const ConnFn& run);

/// Runs one session on stdin/stdout as user: the peer's address is passed to run; an exception ends the
/// session with a log line (nothing was answered 250 that is not delivered).
int inetd_session(Context& ctx, const std::string& user, const std::function<void(Conn&, const std::string&)>& run);

} // namespace mail
