// mmilter --policy: see policy_cmd.hpp and mmilter(8).
#include "libmail/tool/policy_cmd.hpp"

#include "libmail/tool/admission_options.hpp"

#include "libmail/app/auth_setup.hpp"
#include "libmail/app/settings.hpp"
#include "libmail/base/clock.hpp"
#include "libmail/base/limits.hpp"
#include "libmail/base/log.hpp"
#include "libmail/daemon/daemon_cmd.hpp"
#include "libmail/daemon/hit_batch.hpp"
#include "libmail/daemon/policy_service.hpp"
#include "libmail/io/net.hpp"
#include "libmail/io/serve.hpp"
#include "libmail/io/smtp_io.hpp"
#include "libmail/mail/address.hpp"
#include "libmail/store/store.hpp"
#include "libmail/tool/cli.hpp"

#include <CLI/CLI.hpp>

#include <csignal>

namespace mail {

namespace {

Result<PolicyConfig> config_of(const Context& ctx, const PolicyOptions& opt) {
    const Settings& st = ctx.settings();
    PolicyConfig c;
    c.gate.relay_control = false;  // Postfix decides relaying; recipients outside our domains are DUNNO
    c.gate.refuse_unknown = true;
    auto delim = resolve_delimiter(ctx);
    if (!delim) return delim.error();
    c.gate.delimiter = *delim;
    auto ttl = st.duration(opt.token_ttl, nullptr, "token-ttl", 10 * 86400);
    if (!ttl) return ttl.error();
    if (*ttl <= 0) return Error{ErrorKind::config, "token-ttl must be positive"};
    c.gate.token_ttl = *ttl;
    auto lnet = resolve_number(ctx, opt.token_limit_network, "token-limit-network", limits::token_issue_network, 0,
                               1000000000);
    if (!lnet) return lnet.error();
    c.gate.token_limit_network = *lnet;
    auto lsnd = resolve_number(ctx, opt.token_limit_sender, "token-limit-sender", limits::token_issue_sender, 0,
                               1000000000);
    if (!lsnd) return lsnd.error();
    c.gate.token_limit_sender = *lsnd;
    auto batv = resolve_switch(ctx, opt.batv, "batv", false);
    if (!batv) return batv.error();
    c.gate.batv = *batv;
    auto fwd = resolve_trusted_forwarders(ctx, opt.trusted_forwarders);
    if (!fwd) return fwd.error();
    c.trusted_forwarders = std::move(*fwd);

    Setting claim = st.get(opt.claim_at, nullptr, "claim-at", "end-of-message");
    if (claim.value == "rcpt") c.claim_at_rcpt = true;
    else if (claim.value != "end-of-message")
        return setting_error(opt.claim_at.has_value(), claim, "claim-at must be end-of-message or rcpt");
    auto idle = resolve_seconds(ctx, opt.idle_timeout, "idle-timeout", limits::policy_idle);
    if (!idle) return idle.error();
    c.limits.idle = *idle;

    std::string host = st.get(opt.hostname, nullptr, "hostname", host_name()).value;
    if (!is_valid_domain(host))
        return Error{opt.hostname ? ErrorKind::usage : ErrorKind::config, "hostname '" + host + "' is not a host name"};
    auto spf = resolve_bool(st.get(opt.spf, nullptr, "spf", "yes"), opt.spf.has_value());
    if (!spf) return spf.error();
    c.spf = *spf;
    auto as = resolve_auth_settings(ctx, AuthOptions{}, host);
    if (!as) return as.error();
    c.auth_settings = std::move(*as);
    auto resolver = process_resolver(ctx, true);
    if (!resolver) return resolver.error();
    c.resolver = *resolver;
    return c;
}

// One connection: its own store connection (none: every decision is a 451), the session to its end.
void connection(Context& ctx, StorePool& pool, const PolicyConfig& cfg, Conn& conn, const std::string& peer,
                const std::atomic<bool>* stop, Result<void>& outcome) {
    auto store = pool.take();
    if (!store) ctx.logger().err("store", {{"client", peer}, {"error", store.error().text}});
    ctx.logger().debug("connect", {{"client", peer}});
    {
        PolicySession session(cfg, ctx, store ? store->get() : nullptr, peer);
        outcome = run_policy_session(conn, session, cfg.limits, stop);
    }
    if (!outcome) {
        bool broken = outcome.error().kind == ErrorKind::data;
        ctx.logger().log(broken ? Level::warning : Level::info, broken ? "protocol" : "disconnect",
                         {{"client", peer}, {"error", outcome.error().text}});
    } else {
        ctx.logger().debug("disconnect", {{"client", peer}});
    }
    if (cfg.hits && store) cfg.hits->flush(**store, now());
    if (store) pool.give(std::move(*store));
}

} // namespace

void add_policy_options(CLI::App& app, PolicyOptions& o) {
    app.add_option("--listen", o.listen,
                   "HOST:PORT or unix:PATH to serve (repeatable); none: one session on stdin/stdout (spawn(8))");
    app.add_option("--hostname", o.hostname, "this host's name, for SPF (default: the system's)");
    app.add_option("--user", o.user, "switch to this user after binding");
    app.add_option("--max-sessions", o.max_sessions, "concurrent connections when listening (default 100)");
    app.add_option("--idle-timeout", o.idle_timeout, "close a connection idle this long (default 10m)");
    app.add_option("--claim-at", o.claim_at,
                   "when a one-time token is used up: end-of-message (default; needs smtpd_end_of_data_restrictions) "
                   "or rcpt");
    app.add_option("--spf", o.spf, "yes (default): SPF of the sender for whitelist hits; no: none");
    add_token_options(app, o.token_ttl, o.token_limit_network, o.token_limit_sender);
    add_switch(app, "batv", o.batv, "refuse bounces to addresses we did not sign (BATV)", "no BATV (the default)");
    app.add_option("--trusted-forwarder", o.trusted_forwarders,
                   "a forwarder whose SRS addresses count as the senders they wrap (repeatable)");
}

bool policy_stdin_mode(const PolicyOptions& opt) { return opt.listen.empty() && !sockets_passed(); }

int run_policy(Context& ctx, const PolicyOptions& opt, bool stdin_mode) {
    auto fail = [&](const Error& e) {
        // On stdin/stdout the client is Postfix: the reason goes to the log, and to stderr unless that is the
        // client's socket too.
        if (stdin_mode && ctx.logger().target() != LogTarget::stderr_stream) ctx.logger().err("config", {{"error", e.text}});
        if (!stdin_mode || !stderr_is_peer()) return report(ctx.program, e);
        return exit_code(e.kind);
    };
    auto cfg = config_of(ctx, opt);
    if (!cfg) return fail(cfg.error());
    cfg->hits = std::make_shared<HitBatch>();
    std::string user = ctx.settings().get(opt.user, nullptr, "user", "").value;

    store_multithread_init();  // each connection's thread has a store object of its own
    StorePool pool(ctx, StoreUse::create);

    if (stdin_mode) {
        if (auto d = drop_privileges(user); !d) return fail(d.error());
        std::signal(SIGPIPE, SIG_IGN);
        std::string peer = peer_address(0);
        if (peer == "?") peer = "stdin";
        Result<void> outcome;
        {
            HitFlusher flusher(cfg->hits, pool);
            Conn conn(0, 1, false);
            connection(ctx, pool, *cfg, conn, peer, nullptr, outcome);
            flusher.stop();
        }
        if (outcome || outcome.error().kind != ErrorKind::data) return ex_ok;  // the client ended it, or went idle
        if (!stderr_is_peer()) (void)report(ctx.program, "policy", outcome.error());
        return exit_code(outcome.error().kind);
    }

    auto sockets = daemon_sockets(opt.listen, "");
    if (!sockets) return report(ctx.program, sockets.error());
    if (auto d = drop_privileges(user, unix_socket_paths(opt.listen)); !d) return report(ctx.program, d.error());
    auto max = resolve_number(ctx, opt.max_sessions, "max-sessions", limits::smtp_sessions, 1, 100000);
    if (!max) return report(ctx.program, max.error());
    // Every connection comes from the MTA's own processes: no bound per client address.
    ServeLimits lim{static_cast<std::size_t>(*max), 0};

    std::atomic<bool> stop{false}, hup{false};
    install_stop_signals(stop, hup);
    for (const auto& s : *sockets)
        ctx.logger().notice("listen", {{"address", s.listening ? local_address(s.fd) : "connected"}, {"role", "policy"}});
    HitFlusher flusher(cfg->hits, pool);  // started after dropping privileges: it opens store connections
    serve(
        *sockets, lim,
        [&](int rfd, int wfd, const std::string& peer, const ServeSocket&) {
            Conn conn(rfd, wfd, true);
            Result<void> outcome;
            connection(ctx, pool, *cfg, conn, peer, &stop, outcome);
            if (hup.exchange(false)) ctx.logger().reopen();
        },
        [&](const ServeSocket&, Busy, const std::string& peer) -> std::string {
            ctx.logger().warning("busy", {{"client", peer}, {"sessions", static_cast<long>(active_sessions())},
                                          {"limit", static_cast<long>(lim.sessions)}});
            // Postfix reads this as the answer to the request it sends, then reconnects for the next.
            return "action=451 4.3.2 too many connections to the policy service, try again later\n\n";
        },
        stop);
    flusher.stop();
    ctx.logger().notice("stop", {{"sessions", static_cast<long>(active_sessions())}});
    return ex_ok;
}

} // namespace mail
