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

// A forward map: "recipient-or-@domain forward-address" lines; "*" is the default; # comments.
Result<std::map<std::string, std::string>> read_forward_map(const std::string& path, std::string& dflt) {
    std::ifstream f(path);
    if (!f) return Error{ErrorKind::noinput, path + ": cannot read the forward map"};
    std::map<std::string, std::string> m;
    std::string line;
    int n = 0;
    while (std::getline(f, line)) {
        ++n;
        if (line.size() > limits::config_line_length) return Error{ErrorKind::config, path + ":" + std::to_string(n) + ": line too long"};
        auto hash = line.find('#');
        if (hash != std::string::npos) line.resize(hash);
        std::size_t b = line.find_first_not_of(" \t\r");
        if (b == std::string::npos) continue;
        std::size_t e = line.find_first_of(" \t", b);
        std::size_t v = e == std::string::npos ? std::string::npos : line.find_first_not_of(" \t", e);
        if (v == std::string::npos) return Error{ErrorKind::config, path + ":" + std::to_string(n) + ": want KEY ADDRESS"};
        std::string key = line.substr(b, e - b);
        std::string val = line.substr(v, line.find_first_of(" \t\r", v) - v);
        auto to = parse_path(val);
        if (!to || to->empty() || to->domain.empty())
            return Error{ErrorKind::config, path + ":" + std::to_string(n) + ": '" + val + "' is not an address"};
        std::string k;
        if (key == "*") {
            dflt = normalize_address(*to);
            continue;
        } else if (key[0] == '@') {
            k = "@" + normalize_domain(key.substr(1));
        } else {
            auto a = parse_path(key);
            if (!a || a->empty()) return Error{ErrorKind::config, path + ":" + std::to_string(n) + ": '" + key + "' is not an address"};
            k = normalize_address(*a);
        }
        m[k] = normalize_address(*to);
    }
    return m;
}

} // namespace

Result<ProxyPolicy> admission_policy_of(const Context& ctx, const ProxyOptions& opt, bool milter) {
    const Settings& st = ctx.settings();
    ProxyPolicy p;
    auto host = resolve_hostname(ctx, opt);
    if (!host) return host.error();
    p.hostname = *host;
    auto id = resolve_authserv_id(ctx, opt.authserv_id, p.hostname);
    if (!id) return id.error();
    p.authserv_id = *id;

    Setting unknown = st.get(opt.unknown, nullptr, "unknown", "reject");
    const std::string& u = unknown.value;
    if (u == "reject") p.unknown = UnknownMode::reject;
    else if (u == "mark") p.unknown = UnknownMode::mark;
    else if (u == "postage") p.unknown = UnknownMode::postage;
    else if (u == "token-postage") p.unknown = UnknownMode::token_postage;
    else if (u == "quarantine" && milter) p.unknown = UnknownMode::quarantine;
    else if (u.rfind("forward=", 0) == 0) {
        p.unknown = UnknownMode::forward;
        std::string target = u.substr(8);
        if (!target.empty() && (target[0] == '/' || target[0] == '.')) {
            auto m = read_forward_map(target, p.forward_to);
            if (!m) return m.error();
            p.forward_map = std::move(*m);
        } else {
            auto a = parse_path(target);
            if (!a || a->empty() || a->domain.empty()) return setting_error(opt.unknown.has_value(), unknown, "forward=ADDR: '" + target + "' is not an address");
            p.forward_to = normalize_address(*a);
        }
    } else {
        return setting_error(opt.unknown.has_value(), unknown,
                             milter ? "unknown must be reject, mark, quarantine, forward=ADDR, forward=/MAP, postage or "
                                      "token-postage"
                                    : "unknown must be reject, mark, forward=ADDR, forward=/MAP, postage or token-postage");
    }

    auto tag = resolve_switch(ctx, opt.tag, "tag", true);
    if (!tag) return tag.error();
    p.tag = *tag;
    for (Category c : {Category::stamped, Category::questionable, Category::whitelist, Category::unknown,
                       Category::information})
        p.tags[category_letter(c)] = tag_for(ctx, c);

    auto delim = resolve_delimiter(ctx);
    if (!delim) return delim.error();
    p.delimiter = *delim;
    auto ttl = st.duration(opt.token_ttl, nullptr, "token-ttl", 10 * 86400);
    if (!ttl) return ttl.error();
    if (*ttl <= 0) return Error{ErrorKind::config, "token-ttl must be positive"};
    p.token_ttl = *ttl;
    auto lnet = resolve_number(ctx, opt.token_limit_network, "token-limit-network", limits::token_issue_network, 0,
                               1000000000);
    if (!lnet) return lnet.error();
    p.token_limit_network = *lnet;
    auto lsnd = resolve_number(ctx, opt.token_limit_sender, "token-limit-sender", limits::token_issue_sender, 0,
                               1000000000);
    if (!lsnd) return lsnd.error();
    p.token_limit_sender = *lsnd;

    auto postage = resolve_postage_policy(ctx, opt.min_bits, opt.authority_keys, opt.authority, std::nullopt);
    if (!postage) return postage.error();
    p.postage = std::move(*postage);

    auto batv = resolve_switch(ctx, opt.batv, "batv", false);
    if (!batv) return batv.error();
    p.batv = *batv;

    std::vector<std::string> homes = opt.home_domains;
    if (homes.empty()) homes = st.config().get_all(ctx.program, "home-domain");
    for (const auto& h : homes) {
        if (!is_valid_domain(h)) return Error{ErrorKind::usage, "home-domain '" + h + "' is not a domain"};
        p.home_domains.push_back(normalize_domain(h));
    }
    auto fwd = resolve_trusted_forwarders(ctx, opt.trusted_forwarders);
    if (!fwd) return fwd.error();
    p.trusted_forwarders = std::move(*fwd);

    // Sender authentication: the process's resolver (with its cache) and the trusted upstreams.
    auto as = resolve_auth_settings(ctx, opt.auth, p.hostname);
    if (!as) return as.error();
    p.auth_settings = std::move(*as);
    // SPF at MAIL; no: an MTA in front checks it (its results count through the trusted authserv-ids).
    auto spf = resolve_bool(st.get(opt.spf, nullptr, "spf", "yes"), opt.spf.has_value());
    if (!spf) return spf.error();
    p.spf = *spf;
    auto resolver = process_resolver(ctx, true);
    if (!resolver) return resolver.error();
    p.resolver = *resolver;

    Setting stamp = st.get(opt.stamp, nullptr, "stamp", "none");
    if (stamp.value == "hashcash") p.stamp = StampKind::hashcash;
    else if (stamp.value == "timed") p.stamp = StampKind::timed;
    else if (stamp.value == "paid") p.stamp = StampKind::paid;
    else if (stamp.value != "none") return setting_error(opt.stamp.has_value(), stamp, "stamp must be none, hashcash, timed or paid");
    if (auto b = st.find(opt.stamp_bits, nullptr, "stamp-bits")) p.stamp_bits = b->value;
    return p;
}

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
    if (auto d = drop_privileges(user); !d) return report(ctx.program, d.error());
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
