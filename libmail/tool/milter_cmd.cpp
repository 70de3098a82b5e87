// mmilter: see milter_cmd.hpp and mmilter(8).
#include "libmail/tool/milter_cmd.hpp"

#include "libmail/base/clock.hpp"
#include "libmail/daemon/hit_batch.hpp"
#include "libmail/daemon/milter_session.hpp"
#include "libmail/io/net.hpp"
#include "libmail/io/serve.hpp"
#include "libmail/tool/cli.hpp"
#include "libmail/store/store.hpp"

#include <CLI/CLI.hpp>
#include <libmilter/mfapi.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cstring>
#include <memory>

namespace mail {

namespace {

// What every connection shares: set once before smfi_main, read-only after.
struct Shared {
    Context* ctx = nullptr;
    const ProxyPolicy* policy = nullptr;
    StorePool* pool = nullptr;
};
Shared g;

// What mmilter may do to a message.
constexpr unsigned long actions_needed = SMFIF_ADDHDRS | SMFIF_CHGHDRS | SMFIF_ADDRCPT | SMFIF_DELRCPT | SMFIF_QUARANTINE;
// The steps whose answer is always "go on" (MilterSession::helo, header, end_of_header): the MTA is asked not
// to wait for it, a round trip less each (a header field each); their callbacks answer SMFIS_NOREPLY.
// libmilter (8.14 on) offers them whatever the MTA says and answers "go on" itself to an MTA without them.
// Not the body's: libmilter hands the last chunk of an MTA that sends one with the end of the message to the
// body callback, and skips the end of the message when that answers SMFIS_NOREPLY.
constexpr unsigned long no_reply_steps = SMFIP_NR_HELO | SMFIP_NR_HDR | SMFIP_NR_EOH;

// One MTA connection: its own store connection and session (none: the store was unavailable at connect).
struct Conn {
    std::unique_ptr<Store> store;
    std::unique_ptr<MilterSession> session;
};

Conn* conn_of(SMFICTX* ctx) { return static_cast<Conn*>(smfi_getpriv(ctx)); }
// The connection with a session (none: the store was unavailable at connect).
Conn* session_of(SMFICTX* ctx) {
    Conn* c = conn_of(ctx);
    return c && c->session ? c : nullptr;
}

std::string macro(SMFICTX* ctx, const char* name) {
    const char* v = smfi_getsymval(ctx, const_cast<char*>(name));
    return v ? std::string(v).substr(0, 1024) : std::string();
}

// libmilter takes the text as a format: a '%' is doubled.
std::string escape(std::string_view s) {
    std::string o;
    for (char c : s) {
        if (c == '%') o += '%';
        o += (c == '\r' || c == '\n') ? ' ' : c;
    }
    return o;
}

// Sets the reply for r (code, enhanced code, lines) and returns what the callback answers.
sfsistat answer(SMFICTX* ctx, const MilterReply& r) {
    if (r.action == MilterReply::Action::cont) return SMFIS_CONTINUE;
    if (r.action == MilterReply::Action::discard) return SMFIS_DISCARD;
    std::string code = std::to_string(r.reply.code);
    std::string xcode;
    std::vector<std::string> lines;
    for (const auto& l : r.reply.lines) {
        std::string t = l;
        // The enhanced status code of the first line goes separately; libmilter puts it on every line.
        if (t.size() > 6 && t[0] >= '2' && t[0] <= '5' && t[1] == '.') {
            auto sp = t.find(' ');
            if (xcode.empty()) xcode = t.substr(0, sp);
            t = sp == std::string::npos ? std::string() : t.substr(sp + 1);
        }
        lines.push_back(escape(t));
    }
    if (lines.empty()) lines.push_back(r.action == MilterReply::Action::reject ? "refused" : "try again later");
    // libmilter takes up to 32 lines; six are plenty for ours, the rest are joined to the last.
    while (lines.size() > 6) {
        lines[lines.size() - 2] += " " + lines.back();
        lines.pop_back();
    }
    char* x = xcode.empty() ? nullptr : xcode.data();
    char* c = code.data();
    int rc;
    auto L = [&](std::size_t i) { return lines[i].data(); };
    switch (lines.size()) {
    case 1: rc = smfi_setreply(ctx, c, x, L(0)); break;
    case 2: rc = smfi_setmlreply(ctx, c, x, L(0), L(1), nullptr); break;
    case 3: rc = smfi_setmlreply(ctx, c, x, L(0), L(1), L(2), nullptr); break;
    case 4: rc = smfi_setmlreply(ctx, c, x, L(0), L(1), L(2), L(3), nullptr); break;
    case 5: rc = smfi_setmlreply(ctx, c, x, L(0), L(1), L(2), L(3), L(4), nullptr); break;
    default: rc = smfi_setmlreply(ctx, c, x, L(0), L(1), L(2), L(3), L(4), L(5), nullptr); break;
    }
    if (rc != MI_SUCCESS && g.ctx) g.ctx->logger().warning("milter_reply", {{"reply", code + " " + lines.front()}});
    return r.action == MilterReply::Action::reject ? SMFIS_REJECT : SMFIS_TEMPFAIL;
}

sfsistat tempfail(SMFICTX* ctx) {
    return answer(ctx, MilterReply::of(SmtpReply(451, "4.3.0 cannot answer now, try again later")));
}

// The first thing on an MTA connection: the actions mmilter needs (libmilter refuses an MTA without them,
// saying why) and the steps answered without a reply.
sfsistat on_negotiate(SMFICTX*, unsigned long, unsigned long steps, unsigned long, unsigned long,
                      unsigned long* want_actions, unsigned long* want_steps, unsigned long*, unsigned long*) {
    if ((steps & no_reply_steps) != no_reply_steps) {
        // Not this libmilter: the callbacks' SMFIS_NOREPLY would leave the MTA waiting.
        g.ctx->logger().err("milter_negotiate", {{"error", "libmilter offers no replyless steps"}});
        return SMFIS_REJECT;
    }
    *want_actions = actions_needed;
    *want_steps |= no_reply_steps;  // to what libmilter set: the steps mmilter has no callback for
    return SMFIS_CONTINUE;
}

sfsistat on_connect(SMFICTX* ctx, char*, _SOCK_ADDR* sa) {
    // Set first: the close callback gives the store back and frees it, whatever the answer.
    auto* c = new Conn();
    smfi_setpriv(ctx, c);
    auto s = g.pool->take();
    if (!s) {
        // The store unavailable: the MTA tries later (milter_default_action does not decide it).
        g.ctx->logger().err("store", {{"error", s.error().text}});
        return tempfail(ctx);
    }
    c->store = std::move(*s);
    c->session = std::make_unique<MilterSession>(*g.policy, *g.ctx, *c->store);
    std::string addr = macro(ctx, "{client_addr}"), port = macro(ctx, "{client_port}");
    if (addr.empty() && sa) {
        char buf[INET6_ADDRSTRLEN] = "";
        if (sa->sa_family == AF_INET) {
            auto* in = reinterpret_cast<sockaddr_in*>(sa);
            inet_ntop(AF_INET, &in->sin_addr, buf, sizeof buf);
            port = std::to_string(ntohs(in->sin_port));
        } else if (sa->sa_family == AF_INET6) {
            auto* in6 = reinterpret_cast<sockaddr_in6*>(sa);
            inet_ntop(AF_INET6, &in6->sin6_addr, buf, sizeof buf);
            port = std::to_string(ntohs(in6->sin6_port));
        }
        addr = buf;
    }
    return answer(ctx, c->session->connect(addr, port));
}

// The steps without a reply: their sessions' answers are always "go on" (a session that could not start, the
// store unavailable, is refused at MAIL).
sfsistat on_helo(SMFICTX* ctx, char* name) {
    if (Conn* c = session_of(ctx)) (void)c->session->helo(name ? name : "");
    return SMFIS_NOREPLY;
}

sfsistat on_header(SMFICTX* ctx, char* name, char* value) {
    if (Conn* c = session_of(ctx)) (void)c->session->header(name ? name : "", value ? value : "");
    return SMFIS_NOREPLY;
}

sfsistat on_eoh(SMFICTX* ctx) {
    if (Conn* c = session_of(ctx)) (void)c->session->end_of_header();
    return SMFIS_NOREPLY;
}

sfsistat on_envfrom(SMFICTX* ctx, char** argv) {
    Conn* c = session_of(ctx);
    if (!c || !argv || !argv[0]) return tempfail(ctx);
    return answer(ctx, c->session->mail(argv[0], macro(ctx, "{auth_authen}")));
}

sfsistat on_envrcpt(SMFICTX* ctx, char** argv) {
    Conn* c = session_of(ctx);
    if (!c || !argv || !argv[0]) return tempfail(ctx);
    return answer(ctx, c->session->rcpt(argv[0]));
}

sfsistat on_body(SMFICTX* ctx, unsigned char* data, size_t len) {
    Conn* c = session_of(ctx);
    if (!c) return tempfail(ctx);
    return answer(ctx, c->session->body(std::string_view(reinterpret_cast<char*>(data), len)));
}

sfsistat on_eom(SMFICTX* ctx) {
    Conn* c = session_of(ctx);
    if (!c) return tempfail(ctx);
    std::vector<MilterEdit> edits;
    MilterReply r = c->session->end_of_message(edits);
    if (r.action != MilterReply::Action::cont) return answer(ctx, r);
    for (auto& e : edits) {
        int rc = MI_FAILURE;
        switch (e.kind) {
        case MilterEdit::Kind::insert_header:
            rc = smfi_insheader(ctx, e.index, e.name.data(), e.value.data());
            break;
        case MilterEdit::Kind::change_header:
            rc = smfi_chgheader(ctx, e.name.data(), e.index, e.value.empty() ? nullptr : e.value.data());
            break;
        case MilterEdit::Kind::add_rcpt: rc = smfi_addrcpt(ctx, e.name.data()); break;
        case MilterEdit::Kind::del_rcpt: rc = smfi_delrcpt(ctx, e.name.data()); break;
        case MilterEdit::Kind::quarantine: rc = smfi_quarantine(ctx, e.name.data()); break;
        }
        if (rc != MI_SUCCESS) {
            // Half the edits is not the message we decided on: the MTA tries again later.
            g.ctx->logger().err("milter_edit", {{"name", e.name}, {"error", "the MTA refused an edit"}});
            return tempfail(ctx);
        }
    }
    return SMFIS_CONTINUE;
}

sfsistat on_abort(SMFICTX* ctx) {
    if (Conn* c = session_of(ctx)) c->session->abort();
    return SMFIS_CONTINUE;
}

sfsistat on_close(SMFICTX* ctx) {
    Conn* c = conn_of(ctx);
    smfi_setpriv(ctx, nullptr);
    if (c) {
        c->session.reset();  // lets go of what the session reserved
        if (c->store) {
            if (g.policy->hits) g.policy->hits->flush(*c->store, now());
            g.pool->give(std::move(c->store));
        }
        delete c;
    }
    return SMFIS_CONTINUE;
}

} // namespace

void add_milter_options(CLI::App& app, MilterOptions& opt) {
    app.add_option("--listen", opt.listen,
                   "where the MTA connects: HOST:PORT, [IPV6]:PORT or unix:PATH (one)");
    app.add_option("--hostname", opt.hostname, "this host's name (default: the system's)");
    app.add_option("--user", opt.user, "the user to become after opening the socket");
    app.add_option("--unknown", opt.unknown,
                   "unknown senders: reject (default), mark, quarantine, forward=ADDR, forward=/MAP, postage, "
                   "token-postage");
    app.add_option("--authserv-id", opt.authserv_id, "the name in Authentication-Results (default: --hostname)");
    app.add_option("--stamp", opt.stamp, "postage on authenticated users' mail: none (default), hashcash, timed, paid");
    app.add_option("--stamp-bits", opt.stamp_bits, "hashcash bits for --stamp hashcash");
    app.add_option("--home-domain", opt.home_domains,
                   "a domain authenticated users may send from (default: the protected domains)");
    add_auth_options(app, opt.auth, false);
    app.add_option("--spf", opt.spf, "yes (default): evaluate SPF on the MTA's client; no: the MTA checks it");
    app.add_option("--trusted-forwarder", opt.trusted_forwarders,
                   "a forwarder whose SRS addresses count as the senders they wrap (repeatable)");
    app.add_option("--min-bits", opt.min_bits, "hashcash bits required in postage and token-postage mode (default 20)");
    app.add_option("--authority-key", opt.authority_keys, "trusted stamp authority public keys (repeatable)");
    app.add_option("--authority", opt.authority, "HOST:PORT of the stamp authority's spend check");
    app.add_option("--token-ttl", opt.token_ttl, "lifetime of the token address in a 550 (default 10d)");
    app.add_option("--token-limit-network", opt.token_limit_network,
                   "token addresses a day for one client /24 or /64 (default 20; 0: no limit)");
    app.add_option("--token-limit-sender", opt.token_limit_sender,
                   "token addresses a day for one sender (default 20; 0: no limit)");
    add_switch(app, "tag", opt.tag, "tag the Subject with the category (the default)", "leave the Subject alone");
    app.add_option("--milter-timeout", opt.milter_timeout, "seconds to wait for the MTA (default 7210, libmilter's)");
}

Result<std::string> milter_socket(const std::string& listen) {
    for (const char* p : {"unix:", "local:"})
        if (listen.rfind(p, 0) == 0) {
            if (listen.size() == std::strlen(p)) return Error{ErrorKind::usage, "--listen " + listen + ": no path"};
            return "unix:" + listen.substr(std::strlen(p));
        }
    auto hp = parse_host_port(listen);
    if (!hp) return Error{ErrorKind::usage, "--listen " + listen + ": want HOST:PORT, [IPV6]:PORT or unix:PATH"};
    bool v6 = hp->host.find(':') != std::string::npos;
    return std::string(v6 ? "inet6:" : "inet:") + hp->port + "@" + hp->host;
}

int run_milter(Context& ctx, const MilterOptions& opt) {
    if (opt.listen.size() != 1)
        return report(ctx.program, Error{ErrorKind::usage, "give one --listen HOST:PORT or unix:PATH"});
    auto conn = milter_socket(opt.listen.front());
    if (!conn) return report(ctx.program, conn.error());
    auto pol = admission_policy_of(ctx, opt, true);
    if (!pol) return report(ctx.program, pol.error());
    pol->hits = std::make_shared<HitBatch>();
    int timeout = 7210;
    if (opt.milter_timeout) {
        try {
            timeout = std::stoi(*opt.milter_timeout);
        } catch (...) {
            timeout = -1;
        }
        if (timeout <= 0) return report(ctx.program, Error{ErrorKind::usage, "--milter-timeout: want seconds"});
    }

    store_multithread_init();  // each connection's thread has a store object of its own
    StorePool pool(ctx, StoreUse::create);
    {
        // The store must open now: a milter that tempfails everything is better found at start.
        auto s = pool.take();
        if (!s) return report(ctx.program, s.error());
        pool.give(std::move(*s));
    }
    g = Shared{&ctx, &*pol, &pool};

    static smfiDesc desc{};
    desc.xxfi_name = const_cast<char*>("mmilter");
    desc.xxfi_version = SMFI_VERSION;
    desc.xxfi_flags = actions_needed;
    desc.xxfi_connect = on_connect;
    desc.xxfi_helo = on_helo;
    desc.xxfi_envfrom = on_envfrom;
    desc.xxfi_envrcpt = on_envrcpt;
    desc.xxfi_header = on_header;
    desc.xxfi_eoh = on_eoh;
    desc.xxfi_body = on_body;
    desc.xxfi_eom = on_eom;
    desc.xxfi_abort = on_abort;
    desc.xxfi_close = on_close;
    desc.xxfi_negotiate = on_negotiate;
    if (smfi_register(desc) != MI_SUCCESS)
        return report(ctx.program, Error{ErrorKind::software, "smfi_register failed"});
    if (smfi_setconn(conn->data()) != MI_SUCCESS || smfi_settimeout(timeout) != MI_SUCCESS)
        return report(ctx.program, Error{ErrorKind::software, "smfi_setconn " + *conn + " failed"});
    if (smfi_opensocket(true) != MI_SUCCESS)
        return report(ctx.program, Error{ErrorKind::tempfail, "cannot listen on " + *conn});
    if (auto d = drop_privileges(resolve_user(ctx, opt)); !d) return report(ctx.program, d.error());

    ctx.logger().notice("listen", {{"address", *conn}, {"role", "milter"}});
    HitFlusher flusher(pol->hits, pool);
    // libmilter stops on SIGTERM, SIGHUP and SIGINT (its signal thread), once the connections are done.
    int rc = smfi_main();
    flusher.stop();
    ctx.logger().notice("stop", {{"result", rc == MI_SUCCESS ? "ok" : "failure"}});
    return rc == MI_SUCCESS ? ex_ok : 70;
}

} // namespace mail
