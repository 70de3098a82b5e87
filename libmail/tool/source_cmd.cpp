// msourced: see msourced(8).
#include "libmail/tool/source_cmd.hpp"

#include "libmail/mail/address.hpp"
#include "libmail/base/clock.hpp"
#include "libmail/base/duration.hpp"
#include "libmail/base/limits.hpp"
#include "libmail/io/net.hpp"
#include "libmail/io/serve.hpp"
#include "libmail/daemon/source.hpp"
#include "libmail/daemon/source_setup.hpp"
#include "libmail/app/settings.hpp"

#include <openssl/ssl.h>

#include <csignal>
#include <iostream>
#include <unistd.h>

namespace mail {

namespace {

void session(Conn& conn, const std::string& peer, const SourcePolicy& policy, Context& ctx, StorePool& pool,
             SSL_CTX* tls, const std::atomic<bool>* stop) {
    with_session_store(ctx, pool, conn, peer, policy.hostname, [&](Store& store) {
        SourceSession ss(policy, ctx, store, peer);
        SmtpServer server(session_config(policy.smtp, tls), ss);
        drive_session(ctx, conn, peer, server, policy.times, tls, stop);
    });
}

int print_pass(Context& ctx, const Result<SourcePass>& r) {
    if (!r) return report(ctx.program, r.error());
    ctx.logger().info("pass", {{"notified", static_cast<long>(r->notified)}, {"sent", static_cast<long>(r->sent)},
                               {"fetched", static_cast<long>(r->fetched)}, {"refused", static_cast<long>(r->refused)},
                               {"deferred", static_cast<long>(r->deferred)}});
    return ex_ok;
}

} // namespace

bool source_inetd_mode(const SourceOptions& opt) {
    return opt.command.empty() && opt.listen.empty() && !sockets_passed();
}

int run_source(Context& ctx, const SourceOptions& opt, bool inetd, std::istream& in, std::ostream& out, std::ostream&) {
    auto fail = [&](const Error& e) { return daemon_failure(ctx, inetd, e); };
    auto pol = resolve_source_policy(ctx, opt, opt);
    if (!pol) return fail(pol.error());
    SourcePolicy& p = *pol;

    if (!opt.command.empty()) {
        // Every command needs the store to exist: send (the pipe the MTA runs per message) holding mail in a store
        // a typo created would lose it; exit 75 and the MTA keeps it.
        auto store = ctx.open_store(StoreUse::existing);
        if (!store) return report(ctx.program, store.error());
        if (opt.command == "send") {
            auto r = source_send(p, ctx, **store, opt.from, opt.rcpts, in);
            if (!r) return report(ctx.program, r.error());
            return print_pass(ctx, r);
        }
        if (opt.command == "fetch") return print_pass(ctx, source_pass(p, ctx, **store));
        if (opt.command == "queue") {
            if (auto q = source_queue(**store, opt.json, out); !q) return report(ctx.program, q.error());
            return ex_ok;
        }
        if (opt.command == "expire") {
            auto e = source_expire(p, ctx, **store);
            if (!e) return report(ctx.program, e.error());
            ctx.logger().info("expired", {{"held", static_cast<long>(e->held)}, {"partial", static_cast<long>(e->partial)},
                                          {"notices", static_cast<long>(e->notices)}});
            return ex_ok;
        }
        return report(ctx.program, Error{ErrorKind::usage, "unknown command " + opt.command});
    }

    auto tlsr = resolve_server_tls(ctx, opt);
    if (!tlsr) return fail(tlsr.error());
    SSL_CTX* tls = *tlsr;
    store_multithread_init();
    StorePool pool(ctx, StoreUse::create);
    std::string user = resolve_user(ctx, opt);

    if (inetd) {
        int rc = inetd_session(ctx, user, [&](Conn& conn, const std::string& peer) {
            session(conn, peer, p, ctx, pool, tls, nullptr);
        });
        if (tls) SSL_CTX_free(tls);
        return rc;
    }

    auto socks = daemon_sockets(opt.listen, "");
    if (!socks) return report(ctx.program, socks.error());
    if (auto d = drop_privileges(user, unix_socket_paths(opt.listen)); !d) return report(ctx.program, d.error());
    auto lim = resolve_serve_limits(ctx, opt);
    if (!lim) return report(ctx.program, lim.error());
    auto fi = resolve_fetch_interval(ctx, opt);
    if (!fi) return report(ctx.program, fi.error());
    if (p.deliver && p.deliver->kind == DeliveryTarget::Kind::relay) p.relay_pool = std::make_shared<SmtpClientPool>();

    std::atomic<bool> stop{false}, hup{false};
    install_stop_signals(stop, hup);
    p.stop = &stop;
    std::unique_ptr<SourceFetcher> fetcher;
    if (*fi > 0) {
        fetcher = std::make_unique<SourceFetcher>(p, ctx, std::chrono::seconds(*fi), stop);
        p.wake = [f = fetcher.get()] { f->wake(); };
    }
    for (const auto& s : *socks)
        ctx.logger().notice("listen", {{"address", s.listening ? local_address(s.fd) : "connected"},
                                       {"fetch_interval", static_cast<long>(*fi)}});
    serve_daemon(ctx, *socks, *lim, p.hostname, hup, stop, [&](Conn& conn, const std::string& peer, const ServeSocket&) {
        session(conn, peer, p, ctx, pool, tls, &stop);
    });
    p.wake = nullptr;
    fetcher.reset();
    ctx.logger().notice("stop", {});
    if (tls) SSL_CTX_free(tls);
    return ex_ok;
}

} // namespace mail
