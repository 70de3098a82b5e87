// The SOURCE/GET extension's options and fetch thread: see source_setup.hpp and msourced(8).
#include "libmail/daemon/source_setup.hpp"

#include "libmail/app/settings.hpp"
#include "libmail/base/clock.hpp"
#include "libmail/base/duration.hpp"
#include "libmail/io/net.hpp"

#include <CLI/CLI.hpp>

#include <algorithm>

namespace mail {

namespace {

Result<std::int64_t> duration_setting(const Context& ctx, const std::optional<std::string>& cli, std::string_view key,
                                      std::int64_t dflt, std::int64_t lo, std::int64_t hi) {
    auto d = ctx.settings().duration(cli, nullptr, key, dflt);
    if (!d) return d.error();
    if (*d < lo || *d > hi)
        return Error{cli ? ErrorKind::usage : ErrorKind::config,
                     std::string(key) + ": want " + std::to_string(lo) + " to " + std::to_string(hi) + " seconds"};
    return *d;
}

} // namespace

void add_source_options(CLI::App& app, SourceSettings& opt, bool with_target) {
    app.add_option("--mx-map", opt.mx_map, "DOMAIN=HOST:PORT: where DOMAIN's mail goes, instead of its MX records (repeatable)");
    if (with_target) {
        app.add_option("--deliver", opt.deliver, "where received mail goes: maildir:PATH, pickup:PATH, lmtp:HOST:PORT, lmtp:unix:/PATH, pipe:/PROGRAM ARGS or sendmail[:/PATH]");
        app.add_option("--relay", opt.relay, "HOST:PORT of the MTA that takes received mail");
    }
    app.add_option("--fetch-interval", opt.fetch_interval, "time between fetch passes while serving, e.g. 60 or 5m (default 60s; 0: none)");
    app.add_option("--hold-dir", opt.hold_dir, "where held outgoing messages are kept (default: beside the store, source/)");
    app.add_option("--hold-time", opt.hold_time, "how long a held message is served to GET (default 7d)");
    app.add_option("--partial-time", opt.partial_time, "how long a partial message is fetched for (default 5d)");
    app.add_option("--max-gets", opt.max_gets, "GETs served per id (default 5)");
    app.add_option("--get-limit", opt.get_limit, "GET and SOURCE commands per client address per window (default 600)");
    app.add_option("--fetch-limit", opt.fetch_limit, "GETs sent per sender domain per window (default 120)");
    app.add_option("--rate-window", opt.rate_window, "the window of --get-limit and --fetch-limit (default 60s)");
    app.add_option("--retry", opt.retry, "first wait after a failed notice or fetch, doubled each time (default 5m)");
    app.add_option("--retry-max", opt.retry_max, "longest wait between tries (default 4h)");
    app.add_option("--on-expiry", opt.on_expiry, "a partial message never fetched: drop (default) or notify (a notice marked unverified)");
    app.add_option("--timeout", opt.timeout, "DNS, connecting and each reply of a peer (default 60s)");
    app.add_option("--mx-port", opt.mx_port, "the port of hosts found in DNS (default 25)");
}

Result<SourcePolicy> resolve_source_policy(const Context& ctx, const SmtpDaemonOptions& daemon, const SourceSettings& opt) {
    const Settings& st = ctx.settings();
    SourcePolicy p;
    auto host = resolve_hostname(ctx, daemon);
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

    p.hold_dir = st.get(opt.hold_dir, nullptr, "hold-dir", st.data_dir(ctx.db_path()) + "/source").value;
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

    if (auto l = resolve_smtp_limits(ctx, daemon, p.hostname, p.smtp, p.times); !l) return l.error();
    p.max_message_size = p.smtp.max_message_size;
    return p;
}

Result<std::int64_t> resolve_fetch_interval(const Context& ctx, const SourceSettings& o) {
    return duration_setting(ctx, o.fetch_interval, "fetch-interval", 60, 0, 86400);
}

SourceFetcher::SourceFetcher(const SourcePolicy& p, Context& ctx, std::chrono::seconds interval,
                             const std::atomic<bool>& stop)
    : p_(p), ctx_(ctx), interval_(interval), stop_(stop), t_([this] { run(); }) {}

SourceFetcher::~SourceFetcher() {
    {
        std::lock_guard<std::mutex> g(m_);
        done_ = true;
    }
    cv_.notify_all();
    t_.join();
}

void SourceFetcher::wake() {
    {
        std::lock_guard<std::mutex> g(m_);
        woken_ = true;
    }
    cv_.notify_all();
}

void SourceFetcher::run() {
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

} // namespace mail
