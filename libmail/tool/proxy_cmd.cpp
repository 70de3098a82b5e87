// msmtp-proxy: see msmtp-proxy(8).
#include "libmail/tool/proxy_cmd.hpp"

#include "libmail/mail/address.hpp"
#include "libmail/base/clock.hpp"
#include "libmail/base/duration.hpp"
#include "libmail/base/limits.hpp"
#include "libmail/io/net.hpp"
#include "libmail/policy/password.hpp"
#include "libmail/daemon/proxy.hpp"
#include "libmail/daemon/source_setup.hpp"
#include "libmail/io/serve.hpp"
#include "libmail/policy/user_senders.hpp"
#include "libmail/app/settings.hpp"
#include "libmail/policy/whitelist.hpp"

#include <openssl/ssl.h>

#include <algorithm>
#include <charconv>
#include <csignal>
#include <fstream>
#include <iostream>
#include <mutex>
#include <unistd.h>

namespace mail {

namespace {

Result<ProxyPolicy> policy_of(const Context& ctx, const ProxyOptions& opt) {
    const Settings& st = ctx.settings();
    auto pr = admission_policy_of(ctx, opt, false);
    if (!pr) return pr.error();
    ProxyPolicy p = std::move(*pr);

    int targets = 0;
    if (auto r = st.find(opt.relay, nullptr, "relay")) {
        auto hp = parse_host_port(r->value);
        if (!hp) return setting_error(opt.relay.has_value(), *r, hp.error().text);
        p.incoming.kind = DeliveryTarget::Kind::relay;
        p.incoming.relay = *hp;
        ++targets;
    }
    if (auto m = st.find(opt.maildir, nullptr, "maildir")) {
        p.incoming.kind = DeliveryTarget::Kind::maildir;
        p.incoming.dir = m->value;
        ++targets;
    }
    if (auto m = st.find(opt.pickup, nullptr, "pickup")) {
        p.incoming.kind = DeliveryTarget::Kind::pickup;
        p.incoming.dir = m->value;
        ++targets;
    }
    if (auto d = st.find(opt.deliver, nullptr, "deliver")) {
        auto t = parse_delivery_target(d->value);
        if (!t) return setting_error(opt.deliver.has_value(), *d, t.error().text);
        p.incoming = *t;
        ++targets;
    }
    if (targets != 1)
        return Error{ErrorKind::usage, targets ? "give only one of --relay, --maildir, --pickup and --deliver"
                                               : "where does mail go? give --relay HOST:PORT, --maildir DIR, --pickup DIR or --deliver TARGET"};
    // The recruitment banner on outgoing mail: read once here, so a bad file stops the start, not a message.
    auto banner = resolve_banner(ctx, opt.banner);
    if (!banner) return banner.error();
    p.banner = std::move(*banner);
    if (auto s = st.find(opt.smarthost, nullptr, "smarthost")) {
        auto hp = parse_host_port(s->value);
        if (!hp) return setting_error(opt.smarthost.has_value(), *s, hp.error().text);
        p.smarthost = *hp;
    }

    // The real client handed to the relay (handoff.hpp).
    Setting xc = st.get(opt.xclient, nullptr, "xclient", "auto");
    if (xc.value == "auto") p.handoff.xclient = XclientMode::offered;
    else if (xc.value == "yes") p.handoff.xclient = XclientMode::required;
    else if (xc.value == "no") p.handoff.xclient = XclientMode::no;
    else return setting_error(opt.xclient.has_value(), xc, "xclient must be auto, yes or no");
    Setting pp = st.get(opt.relay_proxy_protocol, nullptr, "relay-proxy-protocol", "none");
    if (pp.value == "none") p.handoff.proxy = ProxyProtocol::none;
    else if (pp.value == "v2") p.handoff.proxy = ProxyProtocol::v2;
    else return setting_error(opt.relay_proxy_protocol.has_value(), pp, "relay-proxy-protocol must be none or v2");

    auto rt = resolve_seconds(ctx, opt.relay_timeout, "relay-timeout", limits::smtp_relay_timeout);
    if (!rt) return rt.error();
    p.relay_timeout = *rt;

    Setting vr = st.get(opt.verify_recipients, nullptr, "verify-recipients", "none");
    if (vr.value == "probe") {
        auto c = recipient_probe(p.incoming, p.hostname, p.relay_timeout);
        if (!c) return setting_error(opt.verify_recipients.has_value(), vr, c.error().text);
        p.verify_recipients = std::move(*c);
    } else if (vr.value.rfind("map:", 0) == 0 && vr.value.size() > 4) {
        auto c = recipient_map(vr.value.substr(4));
        if (!c) return setting_error(opt.verify_recipients.has_value(), vr, c.error().text);
        p.verify_recipients = std::move(*c);
    } else if (vr.value != "none") {
        return setting_error(opt.verify_recipients.has_value(), vr, "want probe, map:FILE or none");
    }

    auto af = resolve_number(ctx, opt.auth_failures, "auth-failures", limits::auth_failures, 0, 1000000);
    if (!af) return af.error();
    p.auth.failures = *af;
    auto aw = resolve_seconds(ctx, opt.auth_window, "auth-window", limits::auth_window);
    if (!aw) return aw.error();
    p.auth.window = std::max<std::int64_t>(1, aw->count() / 1000);

    if (auto l = resolve_smtp_limits(ctx, opt, p.hostname, p.smtp, p.times); !l) return l.error();
    return p;
}

// One session over conn.
void session(Conn& conn, const std::string& peer, const ProxyPolicy& policy, Context& ctx, StorePool& pool,
             SSL_CTX* tls, const std::atomic<bool>* stop) {
    with_session_store(ctx, pool, conn, peer, policy.hostname, [&](Store& store) {
        {
            ProxySession ps(policy, ctx, store, peer);
            ps.set_local_address(local_address(conn.read_fd()));
            SmtpServerConfig cfg = session_config(policy.smtp, tls);
            cfg.auth_available = cfg.tls_available;  // AUTH only under TLS
            cfg.require_auth = policy.submission;
            SmtpServer server(cfg, ps);
            ps.attach(&server);
            drive_session(ctx, conn, peer, server, policy.times, tls, stop);
        }
        if (policy.hits) policy.hits->flush(store, now());
    });
}

// The senders column of `user list`: the user's senders, the default marked, or "-" for none.
std::string senders_text(const User& u) {
    auto senders = user_senders(u);
    if (senders.empty()) return "-";
    std::string t;
    for (const auto& x : senders) t += (t.empty() ? "" : ",") + x;
    return user_senders_default(u) ? t + " (default)" : t;
}

// user senders NAME [--sender ADDRESS ... | --default]: print, replace, or reset the senders NAME may use.
int user_senders_command(Context& ctx, Store& s, const ProxyOptions& opt, const std::vector<std::string>& senders,
                         std::ostream& out) {
    const std::string& name = opt.user_name;
    if (opt.user_default && !senders.empty())
        return report(ctx.program, "user senders", Error{ErrorKind::usage, "--default takes no --sender"});
    if (!opt.user_default && senders.empty()) {
        auto u = s.user_get(name);
        if (!u) return report(ctx.program, u.error());
        if (!*u) return report(ctx.program, "user senders", Error{ErrorKind::usage, "no user " + name}), ex_no;
        for (const auto& x : user_senders(**u)) out << x << '\n';
        return ex_ok;
    }
    auto r = s.user_set_senders(name, senders);
    if (!r) return report(ctx.program, r.error());
    if (!*r) return report(ctx.program, "user senders", Error{ErrorKind::usage, "no user " + name}), ex_no;
    std::string list;
    for (const auto& x : senders) list += (list.empty() ? "" : ",") + x;
    ctx.log_event("user_senders", {{"user", name}, {"senders", senders.empty() ? "default" : list}});
    return ex_ok;
}

int user_command(Context& ctx, const ProxyOptions& opt, std::istream& in, std::ostream& out, std::ostream& err) {
    auto store = ctx.open_store(store_use(opt.command, {"add"}));
    if (!store) return report(ctx.program, store.error());
    Store& s = **store;
    std::int64_t t = now();
    if (opt.command == "list") {
        auto users = s.user_list();
        if (!users) return report(ctx.program, users.error());
        if (opt.json) {
            out << "[";
            for (std::size_t i = 0; i < users->size(); ++i) {
                const User& u = (*users)[i];
                out << (i ? "," : "") << "{\"name\":" << json_string(u.name)
                    << ",\"created\":" << json_string(format_time(u.created))
                    << ",\"changed\":" << json_string(format_time(u.changed)) << ",\"senders\":[";
                auto senders = user_senders(u);
                for (std::size_t j = 0; j < senders.size(); ++j) out << (j ? "," : "") << json_string(senders[j]);
                out << "],\"default_senders\":" << (user_senders_default(u) ? "true" : "false") << "}";
            }
            out << "]\n";
        } else {
            for (const auto& u : *users) {
                out << u.name << '\t' << format_time(u.changed) << '\t' << senders_text(u) << '\n';
            }
        }
        return ex_ok;
    }
    const std::string& name = opt.user_name;
    if (name.empty() || name.size() > 256 || name.find_first_of(" \t\r\n:") != std::string::npos)
        return report(ctx.program, Error{ErrorKind::usage, "user name '" + name + "': want one word"});
    // Every --sender is checked before anything is written.
    std::vector<std::string> senders;
    for (const auto& a : opt.user_senders) {
        auto v = parse_user_sender(a);
        if (!v) return report(ctx.program, "user " + opt.command, v.error());
        if (std::find(senders.begin(), senders.end(), *v) == senders.end()) senders.push_back(*v);
    }
    if (opt.command == "senders") return user_senders_command(ctx, s, opt, senders, out);
    if (opt.command == "remove") {
        auto r = s.user_remove(name);
        if (!r) return report(ctx.program, r.error());
        if (!*r) return report(ctx.program, Error{ErrorKind::usage, "no user " + name}), ex_no;
        ctx.log_event("user_remove", {{"user", name}});
        return ex_ok;
    }
    // add and passwd read the password as one line on stdin (never from the command line: ps would show it).
    if (isatty(0)) err << "password for " << name << ": " << std::flush;
    std::string pw;
    if (!std::getline(in, pw) || pw.empty())
        return report(ctx.program, Error{ErrorKind::noinput, "no password on standard input"});
    if (!pw.empty() && pw.back() == '\r') pw.pop_back();
    auto h = hash_password(pw);
    if (!h) return report(ctx.program, h.error());
    if (opt.command == "add") {
        User u{name, *h, t, t, senders};
        auto r = s.user_add(u);
        if (!r) return report(ctx.program, r.error());
        if (!*r) return report(ctx.program, Error{ErrorKind::usage, "user " + name + " exists (use passwd)"});
        if (user_senders(u).empty())
            err << ctx.program << ": user add: " << name << " may send as nobody until given senders (user senders "
                << name << " --sender ADDRESS)\n";
    } else {
        auto r = s.user_set_hash(name, *h, t);
        if (!r) return report(ctx.program, r.error());
        if (!*r) return report(ctx.program, Error{ErrorKind::usage, "no user " + name + " (use add)"}), ex_no;
    }
    ctx.log_event("user_" + opt.command, {{"user", name}, {"password", redact(pw)}});
    return ex_ok;
}

} // namespace

bool proxy_inetd_mode(const ProxyOptions& opt) {
    return opt.command.empty() && opt.listen.empty() && opt.submission_listen.empty() && !sockets_passed();
}

int run_proxy(Context& ctx, const ProxyOptions& opt, bool inetd, std::istream& in, std::ostream& out,
              std::ostream& err) {
    if (!opt.command.empty()) return user_command(ctx, opt, in, out, err);

    auto fail = [&](const Error& e) { return daemon_failure(ctx, inetd, e); };
    auto pol = policy_of(ctx, opt);
    if (!pol) return fail(pol.error());
    pol->hits = std::make_shared<HitBatch>();
    if (!inetd) {
        pol->relay_pool = std::make_shared<SmtpClientPool>();
        pol->smarthost_pool = std::make_shared<SmtpClientPool>();
    }
    // --source: msourced's settings beside the proxy's; fetched mail goes where DATA mail goes, through
    // a session of the incoming listener (SourcePolicy::admit, set below).
    auto with_source = resolve_switch(ctx, opt.source, "source", false);
    if (!with_source) return fail(with_source.error());
    std::int64_t fetch_interval = 0;
    if (*with_source) {
        if (inetd)
            return fail(Error{ErrorKind::usage, "--source needs a daemon (--listen or systemd's sockets) to fetch"});
        auto sp = resolve_source_policy(ctx, opt, opt.source_settings);
        if (!sp) return fail(sp.error());
        sp->deliver = pol->incoming;
        auto fi = resolve_fetch_interval(ctx, opt.source_settings);
        if (!fi) return fail(fi.error());
        fetch_interval = *fi;
        pol->source = std::make_shared<SourcePolicy>(std::move(*sp));
    }
    ProxyPolicy incoming = *pol;
    incoming.submission = opt.submission;
    ProxyPolicy submission = *pol;
    submission.submission = true;

    auto tlsr = resolve_server_tls(ctx, opt);
    if (!tlsr) return fail(tlsr.error());
    SSL_CTX* tls = *tlsr;
    if (!tls && (opt.submission || !opt.submission_listen.empty()))
        return fail(Error{ErrorKind::usage, "submission needs TLS for AUTH: give --tls-cert and --tls-key"});

    auto hashes = resolve_number(ctx, opt.max_auth_hashes, "max-auth-hashes", limits::auth_hashes, 1, 1000);
    if (!hashes) return fail(hashes.error());
    set_password_hash_limit(static_cast<std::size_t>(*hashes));

    store_multithread_init();  // each session thread has a store object of its own
    StorePool pool(ctx, StoreUse::create);
    std::string user = resolve_user(ctx, opt);

    if (inetd) {
        HitFlusher flusher(pol->hits, pool);
        int rc = inetd_session(ctx, user, [&](Conn& conn, const std::string& peer) {
            session(conn, peer, incoming, ctx, pool, tls, nullptr);
        });
        flusher.stop();
        if (tls) SSL_CTX_free(tls);
        return rc;
    }

    auto sockets = daemon_sockets(opt.listen, "");
    if (!sockets) return report(ctx.program, sockets.error());
    std::vector<ServeSocket> socks = std::move(*sockets);
    for (const auto& l : opt.submission_listen) {
        auto hp = parse_host_port(l);
        if (!hp) return report(ctx.program, "--submission-listen", hp.error());
        auto fd = listen_tcp(*hp, 256);
        if (!fd) return report(ctx.program, "--submission-listen " + l, fd.error());
        socks.push_back(ServeSocket{*fd, "submission", true});
    }
    if (auto d = drop_privileges(user, unix_socket_paths(opt.listen)); !d) return report(ctx.program, d.error());
    auto lim = resolve_serve_limits(ctx, opt);
    if (!lim) return report(ctx.program, lim.error());

    std::atomic<bool> stop{false}, hup{false};
    install_stop_signals(stop, hup);
    for (const auto& s : socks)
        ctx.logger().notice("listen", {{"address", s.listening ? local_address(s.fd) : "connected"},
                                       {"role", s.name == "submission" ? "submission" : "incoming"}});
    HitFlusher flusher(pol->hits, pool);  // started after dropping privileges: it opens store connections
    std::unique_ptr<SourceFetcher> fetcher;
    if (pol->source) {
        SourcePolicy& sp = *pol->source;
        sp.stop = &stop;
        sp.admit = [&incoming](Context& c, Store& st, const SourceIn& row, const HeadSpool& msg,
                               const std::string& mx) -> Result<DeliveryResult> {
            Result<DeliveryResult> r = Error{ErrorKind::software, ""};
            {
                ProxySession ps(incoming, c, st, mx);
                r = ps.admit_fetched(row, msg, mx);
            }
            if (incoming.hits) incoming.hits->flush(st, now());
            return r;
        };
        if (fetch_interval > 0) {
            fetcher = std::make_unique<SourceFetcher>(sp, ctx, std::chrono::seconds(fetch_interval), stop);
            sp.wake = [f = fetcher.get()] { f->wake(); };
        }
    }
    serve_daemon(ctx, socks, *lim, pol->hostname, hup, stop,
                 [&](Conn& conn, const std::string& peer, const ServeSocket& via) {
                     session(conn, peer, via.name == "submission" ? submission : incoming, ctx, pool, tls, &stop);
                 });
    if (pol->source) pol->source->wake = nullptr;
    fetcher.reset();
    flusher.stop();
    ctx.logger().notice("stop", {{"sessions", static_cast<long>(active_sessions())}});
    if (tls) SSL_CTX_free(tls);
    return ex_ok;
}

} // namespace mail
