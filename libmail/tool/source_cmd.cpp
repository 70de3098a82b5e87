// msourced: see msourced(8).
#include "libmail/tool/source_cmd.hpp"

#include "libmail/mail/address.hpp"
#include "libmail/base/clock.hpp"
#include "libmail/base/duration.hpp"
#include "libmail/base/limits.hpp"
#include "libmail/io/net.hpp"
#include "libmail/io/serve.hpp"
#include "libmail/daemon/source.hpp"
#include "libmail/app/settings.hpp"

#include <openssl/ssl.h>

#include <condition_variable>
#include <csignal>
#include <iostream>
#include <thread>
#include <unistd.h>

namespace mail {

namespace {

std::string dirname_of(const std::string& path) {
    auto slash = path.rfind('/');
    if (slash == std::string::npos) return ".";
    return slash == 0 ? "/" : path.substr(0, slash);
}

Result<std::int64_t> duration_setting(const Context& ctx, const std::optional<std::string>& cli, std::string_view key,
                                      std::int64_t dflt, std::int64_t lo, std::int64_t hi) {
    auto d = ctx.settings().duration(cli, nullptr, key, dflt);
    if (!d) return d.error();
    if (*d < lo || *d > hi)
        return Error{cli ? ErrorKind::usage : ErrorKind::config,
                     std::string(key) + ": want " + std::to_string(lo) + " to " + std::to_string(hi) + " seconds"};
    return *d;
}

Result<SourcePolicy> policy_of(const Context& ctx, const SourceOptions& opt) {
    const Settings& st = ctx.settings();
    SourcePolicy p;
    auto host = resolve_hostname(ctx, opt);
    if (!host) return host.error();
    p.hostname = *host;
    std::vector<std::string> maps = opt.mx_map;
    if (maps.empty()) maps = st.config().get_all(ctx.program, "mx-map");
    for (const auto& m : maps)
        if (auto r = add_mx_map_entry(p.mx_map, m); !r) return Error{ErrorKind::usage, "--mx-map " + m + ": " + r.error().text};
    p.mx_port = st.get(opt.mx_port, nullptr, "mx-port", "25").value;
    auto tmo = resolve_seconds(ctx, opt.timeout, "timeout", 60);
    if (!tmo) return tmo.error();
    p.timeout = *tmo;
    p.resolver = &ctx.resolver();

    int targets = 0;
    if (auto d = st.find(opt.deliver, nullptr, "deliver")) {
        auto t = parse_delivery_target(d->value);
        if (!t) return setting_error(opt.deliver.has_value(), *d, t.error().text);
        p.deliver = *t;
        ++targets;
    }
    if (auto r = st.find(opt.relay, nullptr, "relay")) {
        auto hp = parse_host_port(r->value);
        if (!hp) return setting_error(opt.relay.has_value(), *r, hp.error().text);
        DeliveryTarget t;
        t.kind = DeliveryTarget::Kind::relay;
        t.relay = *hp;
        p.deliver = t;
        ++targets;
    }
    if (targets > 1) return Error{ErrorKind::usage, "give only one of --deliver and --relay"};

    p.hold_dir = st.get(opt.hold_dir, nullptr, "hold-dir", dirname_of(ctx.db_path()) + "/source").value;
    auto ht = duration_setting(ctx, opt.hold_time, "hold-time", 7 * 86400, 1, 365 * 86400);
    if (!ht) return ht.error();
    p.hold_time = *ht;
    auto pt = duration_setting(ctx, opt.partial_time, "partial-time", 5 * 86400, 1, 365 * 86400);
    if (!pt) return pt.error();
    p.partial_time = *pt;
    auto mg = resolve_number(ctx, opt.max_gets, "max-gets", 5, 1, 1000);
    if (!mg) return mg.error();
    p.max_gets = *mg;
    auto gl = resolve_number(ctx, opt.get_limit, "get-limit", 600, 1, 1000000);
    if (!gl) return gl.error();
    p.get_limit = *gl;
    auto fl = resolve_number(ctx, opt.fetch_limit, "fetch-limit", 120, 1, 1000000);
    if (!fl) return fl.error();
    p.fetch_limit = *fl;
    auto rw = duration_setting(ctx, opt.rate_window, "rate-window", 60, 1, 86400);
    if (!rw) return rw.error();
    p.rate_window = *rw;
    auto rt = duration_setting(ctx, opt.retry, "retry", 300, 1, 86400);
    if (!rt) return rt.error();
    p.retry = *rt;
    auto rm = duration_setting(ctx, opt.retry_max, "retry-max", 4 * 3600, 1, 7 * 86400);
    if (!rm) return rm.error();
    p.retry_max = *rm;
    Setting oe = st.get(opt.on_expiry, nullptr, "on-expiry", "drop");
    if (oe.value == "notify") p.expired_notify = true;
    else if (oe.value != "drop") return setting_error(opt.on_expiry.has_value(), oe, "on-expiry must be drop or notify");

    if (auto l = resolve_smtp_limits(ctx, opt, p.hostname, p.smtp, p.times); !l) return l.error();
    p.max_message_size = p.smtp.max_message_size;
    return p;
}

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

// The fetch thread of a daemon: a pass (and expiry) every interval, sooner after a SOURCE notice.
class Fetcher {
public:
    Fetcher(const SourcePolicy& p, Context& ctx, std::chrono::seconds interval, const std::atomic<bool>& stop)
        : p_(p), ctx_(ctx), interval_(interval), stop_(stop), t_([this] { run(); }) {}
    ~Fetcher() {
        {
            std::lock_guard<std::mutex> g(m_);
            done_ = true;
        }
        cv_.notify_all();
        t_.join();
    }
    void wake() {
        {
            std::lock_guard<std::mutex> g(m_);
            woken_ = true;
        }
        cv_.notify_all();
    }

private:
    void run() {
        for (;;) {
            {
                std::unique_lock<std::mutex> l(m_);
                // Woken: a short pause first, so notices given together are fetched in one connection.
                auto wait = interval_;
                if (next_due_ > 0) wait = std::min(wait, std::chrono::seconds(std::max<std::int64_t>(next_due_ - now(), 1)));
                cv_.wait_for(l, wait, [this] { return done_ || woken_ || stop_.load(); });
                if (done_ || stop_.load()) return;
                if (woken_) cv_.wait_for(l, std::chrono::milliseconds(200), [this] { return done_; });
                woken_ = false;
                if (done_) return;
            }
            auto store = ctx_.open_store(StoreUse::create);
            if (!store) {
                ctx_.logger().err("store", {{"error", store.error().text}});
                continue;
            }
            try {
                auto r = source_pass(p_, ctx_, **store);
                if (!r) ctx_.logger().err("pass", {{"error", r.error().text}});
                next_due_ = r ? r->next_due : 0;
                if (auto e = source_expire(p_, ctx_, **store); !e) ctx_.logger().err("expire", {{"error", e.error().text}});
            } catch (const std::exception& e) {
                ctx_.logger().err("pass", {{"error", e.what()}});
            }
        }
    }
    const SourcePolicy& p_;
    Context& ctx_;
    std::chrono::seconds interval_;
    const std::atomic<bool>& stop_;
    std::mutex m_;
    std::condition_variable cv_;
    bool done_ = false, woken_ = false;
    std::int64_t next_due_ = 0;  ///< from the last pass: wake then, if before the interval is up
    std::thread t_;  // last: starts once the rest is ready
};

} // namespace

bool source_inetd_mode(const SourceOptions& opt) {
    return opt.command.empty() && opt.listen.empty() && !sockets_passed();
}

int run_source(Context& ctx, const SourceOptions& opt, bool inetd, std::istream& in, std::ostream& out, std::ostream&) {
    auto fail = [&](const Error& e) { return daemon_failure(ctx, inetd, e); };
    auto pol = policy_of(ctx, opt);
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
    if (auto d = drop_privileges(user); !d) return report(ctx.program, d.error());
    auto lim = resolve_serve_limits(ctx, opt);
    if (!lim) return report(ctx.program, lim.error());
    auto fi = duration_setting(ctx, opt.fetch_interval, "fetch-interval", 60, 0, 86400);
    if (!fi) return report(ctx.program, fi.error());
    if (p.deliver && p.deliver->kind == DeliveryTarget::Kind::relay) p.relay_pool = std::make_shared<SmtpClientPool>();

    std::atomic<bool> stop{false}, hup{false};
    install_stop_signals(stop, hup);
    p.stop = &stop;
    std::unique_ptr<Fetcher> fetcher;
    if (*fi > 0) {
        fetcher = std::make_unique<Fetcher>(p, ctx, std::chrono::seconds(*fi), stop);
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
