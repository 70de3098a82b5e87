// What the SMTP daemons share: see daemon_cmd.hpp.
#include "libmail/daemon/daemon_cmd.hpp"

#include "libmail/mail/address.hpp"
#include "libmail/base/duration.hpp"
#include "libmail/base/limits.hpp"
#include "libmail/io/net.hpp"
#include "libmail/app/settings.hpp"

#include <CLI/CLI.hpp>
#include <openssl/ssl.h>

#include <csignal>
#include <unistd.h>

namespace mail {

void add_smtp_daemon_options(CLI::App& app, SmtpDaemonOptions& o) {
    app.add_option("--listen", o.listen, "ADDR:PORT or [IPv6]:PORT to listen on (repeatable); none: inetd mode");
    app.add_option("--hostname", o.hostname, "the name in the greeting and Received fields (default: the host name)");
    app.add_option("--tls-cert", o.tls_cert, "PEM certificate chain for STARTTLS");
    app.add_option("--tls-key", o.tls_key, "PEM private key for STARTTLS");
    app.add_option("--user", o.user, "switch to this user after binding");
    app.add_option("--max-sessions", o.max_sessions, "concurrent sessions (default 100)");
    app.add_option("--max-per-client", o.max_per_client,
                   "concurrent sessions from one address, an IPv6 /64 counting as one (default 10; 0: no limit)");
    app.add_option("--max-recipients", o.max_recipients, "recipients per message (default 100)");
    app.add_option("--max-message-size", o.max_message_size, "largest message, e.g. 32M (default 64M)");
    app.add_option("--line-length", o.line_length, "longest command line (default 2048)");
    app.add_option("--command-timeout", o.command_timeout, "wait this long for a command (default 5m)");
    app.add_option("--session-time", o.session_time, "longest session (default 1h)");
    app.add_option("--min-data-rate", o.min_data_rate, "octets a second a client must keep up in DATA (default 256)");
    app.add_option("--greet-delay", o.greet_delay, "pause before the greeting; clients talking meanwhile are refused");
    app.add_option("--bare-newline", o.bare_newline, "bare CR or LF in message data: reject (default) or normalise");
}

Result<std::string> resolve_hostname(const Context& ctx, const SmtpDaemonOptions& o) {
    std::string h = ctx.settings().get(o.hostname, nullptr, "hostname", host_name()).value;
    if (!is_valid_domain(h))
        return Error{o.hostname ? ErrorKind::usage : ErrorKind::config, "hostname '" + h + "' is not a host name"};
    return h;
}

Result<void> resolve_smtp_limits(const Context& ctx, const SmtpDaemonOptions& o, const std::string& hostname,
                                 SmtpServerConfig& cfg, SessionTimes& times) {
    const Settings& st = ctx.settings();
    cfg.hostname = hostname;
    auto rc = resolve_number(ctx, o.max_recipients, "max-recipients", limits::smtp_recipients, 1, limits::recipients);
    if (!rc) return rc.error();
    cfg.max_recipients = static_cast<std::size_t>(*rc);
    Setting size = st.get(o.max_message_size, nullptr, "max-message-size", std::to_string(limits::message_size));
    auto n = parse_size(size.value);
    if (!n || *n <= 0) return setting_error(o.max_message_size.has_value(), size, "max-message-size: want a size such as 32M");
    cfg.max_message_size = static_cast<std::size_t>(*n);
    auto ll = resolve_number(ctx, o.line_length, "line-length", limits::smtp_line_length, 512, 65536);
    if (!ll) return ll.error();
    cfg.line_length = static_cast<std::size_t>(*ll);
    Setting bn = st.get(o.bare_newline, nullptr, "bare-newline", "reject");
    if (bn.value == "reject") cfg.bare_newline = BareNewline::reject;
    else if (bn.value == "normalise" || bn.value == "normalize") cfg.bare_newline = BareNewline::normalise;
    else return setting_error(o.bare_newline.has_value(), bn, "bare-newline must be reject or normalise");

    auto ct = resolve_seconds(ctx, o.command_timeout, "command-timeout", limits::smtp_command_timeout);
    if (!ct) return ct.error();
    times.command_timeout = *ct;
    auto sl = resolve_seconds(ctx, o.session_time, "session-time", limits::smtp_session_time);
    if (!sl) return sl.error();
    times.session_time = *sl;
    auto gd = resolve_seconds(ctx, o.greet_delay, "greet-delay", 0, true);
    if (!gd) return gd.error();
    times.greet_delay = *gd;
    auto mr = resolve_number(ctx, o.min_data_rate, "min-data-rate", limits::smtp_min_data_rate, 0, 1 << 30);
    if (!mr) return mr.error();
    times.min_data_rate = static_cast<std::size_t>(*mr);
    return {};
}

Result<SSL_CTX*> resolve_server_tls(const Context& ctx, const SmtpDaemonOptions& o) {
    auto cert = ctx.settings().find(o.tls_cert, nullptr, "tls-cert");
    auto key = ctx.settings().find(o.tls_key, nullptr, "tls-key");
    if (!cert && !key) return static_cast<SSL_CTX*>(nullptr);
    if (!cert || !key) return Error{ErrorKind::usage, "--tls-cert and --tls-key go together"};
    OPENSSL_init_ssl(0, nullptr);
    return make_server_tls(cert->value, key->value);
}

Result<std::vector<ServeSocket>> daemon_sockets(const std::vector<std::string>& listen, const std::string& name) {
    std::vector<ServeSocket> socks = activated_sockets();
    for (const auto& l : listen) {
        if (l.rfind("unix:", 0) == 0) {
            auto fd = listen_unix(l.substr(5), 256);
            if (!fd) return Error{fd.error().kind, "--listen " + l + ": " + fd.error().text};
            socks.push_back(ServeSocket{*fd, name.empty() ? l : name, true});
            continue;
        }
        auto hp = parse_host_port(l);
        if (!hp) return Error{hp.error().kind, "--listen " + l + ": " + hp.error().text};
        auto fd = listen_tcp(*hp, 256);
        if (!fd) return Error{fd.error().kind, "--listen " + l + ": " + fd.error().text};
        socks.push_back(ServeSocket{*fd, name.empty() ? l : name, true});
    }
    return socks;
}

Result<ServeLimits> resolve_serve_limits(const Context& ctx, const SmtpDaemonOptions& o) {
    auto max = resolve_number(ctx, o.max_sessions, "max-sessions", limits::smtp_sessions, 1, 100000);
    if (!max) return max.error();
    auto per = resolve_number(ctx, o.max_per_client, "max-per-client", limits::smtp_sessions_per_client, 0, 100000);
    if (!per) return per.error();
    return ServeLimits{static_cast<std::size_t>(*max), static_cast<std::size_t>(*per)};
}

BusyFn busy_reply(Context& ctx, const std::string& hostname, const ServeLimits& limits) {
    return [&ctx, hostname, limits](const ServeSocket&, Busy why, const std::string& peer) -> std::string {
        if (why == Busy::per_client) {
            // ip= right after the event: a fixed place for fail2ban-style watchers (msmtp-proxy(8)).
            ctx.logger().warning("busy", {{"reason", "per-client"}, {"ip", client_ip(peer)},
                                          {"limit", static_cast<long>(limits.per_client)}});
            return "421 4.7.0 " + hostname + " too many sessions from your address, try again later\r\n";
        }
        ctx.logger().warning("busy", {{"reason", "total"}, {"ip", client_ip(peer)},
                                      {"sessions", static_cast<long>(active_sessions())},
                                      {"limit", static_cast<long>(limits.sessions)}});
        return "421 4.3.2 " + hostname + " too many connections, try again later\r\n";
    };
}

std::string resolve_user(const Context& ctx, const SmtpDaemonOptions& o) {
    return ctx.settings().get(o.user, nullptr, "user", "").value;
}

int daemon_failure(Context& ctx, bool inetd, const Error& e) {
    if (!inetd) return report(ctx.program, e);
    // The reason goes where someone reads it: the log, and stderr when that is not the client's socket (a
    // terminal, the journal); once, when the log is stderr itself.
    if (ctx.logger().target() != LogTarget::stderr_stream) ctx.logger().err("config", {{"error", e.text}});
    return inetd_start_failure(ctx.program, e);
}

int inetd_start_failure(std::string_view program, const Error& e) {
    if (!stderr_is_peer()) (void)report(program, e);
    std::string msg = "421 4.3.0 service not available (configuration)\r\n";
    (void)!::write(1, msg.data(), msg.size());
    return exit_code(e.kind);
}

std::unique_ptr<Store> session_store(Context& ctx, StorePool& pool, Conn& conn, const std::string& peer,
                                     const std::string& hostname) {
    auto store = pool.take();
    if (store) return std::move(*store);
    ctx.logger().err("store", {{"client", peer}, {"error", store.error().text}});
    (void)conn.write("421 4.3.0 " + hostname + " service temporarily unavailable\r\n",
                     std::chrono::steady_clock::now() + std::chrono::seconds(5));
    return nullptr;
}

void with_session_store(Context& ctx, StorePool& pool, Conn& conn, const std::string& peer, const std::string& hostname,
                        const std::function<void(Store&)>& run) {
    auto store = session_store(ctx, pool, conn, peer, hostname);
    if (!store) return;
    run(*store);
    pool.give(std::move(store));
}

SmtpServerConfig session_config(SmtpServerConfig cfg, SSL_CTX* tls) {
    cfg.tls_available = tls != nullptr;
    return cfg;
}

void drive_session(Context& ctx, Conn& conn, const std::string& peer, SmtpServer& server, const SessionTimes& times,
                   SSL_CTX* tls, const std::atomic<bool>* stop) {
    ctx.logger().debug("connect", {{"client", peer}});
    run_smtp_session(conn, server, times, tls, stop);
    ctx.logger().debug("disconnect", {{"client", peer}, {"messages", static_cast<long>(server.messages())}});
}

void serve_daemon(Context& ctx, const std::vector<ServeSocket>& sockets, const ServeLimits& limits,
                  const std::string& hostname, std::atomic<bool>& hup, const std::atomic<bool>& stop, const ConnFn& run) {
    serve(
        sockets, limits,
        [&](int rfd, int wfd, const std::string& peer, const ServeSocket& via) {
            Conn conn(rfd, wfd, true);
            run(conn, peer, via);
            if (hup.exchange(false)) ctx.logger().reopen();
        },
        busy_reply(ctx, hostname, limits), stop);
}

int inetd_session(Context& ctx, const std::string& user, const std::function<void(Conn&, const std::string&)>& run) {
    if (auto d = drop_privileges(user); !d) return daemon_failure(ctx, true, d.error());
    std::signal(SIGPIPE, SIG_IGN);
    std::string peer = peer_address(0);
    if (peer == "?") peer = "stdin";
    Conn conn(0, 1, false);
    try {
        run(conn, peer);
    } catch (const std::exception& e) {
        // The client saw no 250 for anything not delivered; it retries. stderr is its socket: log only.
        ctx.logger().err("session", {{"client", peer}, {"error", e.what()}});
    }
    return ex_ok;
}

} // namespace mail
