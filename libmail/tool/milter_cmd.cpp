// mmilter: see milter_cmd.hpp and mmilter(8).
#include "libmail/tool/milter_cmd.hpp"

#include "libmail/base/clock.hpp"
#include "libmail/base/log.hpp"
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
#include <pthread.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <csignal>
#include <cstring>
#include <memory>
#include <thread>

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
    bool leadspc = false;  // SMFIP_HDR_LEADSPC: header values come and go with the space after the colon
    std::unique_ptr<Store> store;
    std::unique_ptr<MilterSession> session;
};

// What the last negotiation settled, for a connection that had none of its own: after SMFIC_QUIT_NC the MTA
// starts a new connection on the same socket without negotiating again (the MTA is the same, and so is its
// answer).
std::atomic<bool> last_leadspc{false};

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

// The first thing on an MTA connection: the actions mmilter needs, the steps answered without a reply, and
// the header values as they are: without SMFIP_HDR_LEADSPC the MTA eats the space after each field's colon
// (and puts one in front of every value we add), which changes the bytes a DKIM signature with simple header
// canonicalization covers when a field has no space there, or a tab.
sfsistat on_negotiate(SMFICTX* ctx, unsigned long actions, unsigned long steps, unsigned long, unsigned long,
                      unsigned long* want_actions, unsigned long* want_steps, unsigned long*, unsigned long*) {
    if ((actions & actions_needed) != actions_needed) {
        g.ctx->logger().err("milter_negotiate", {{"error", "the MTA does not offer the header, recipient and "
                                                           "quarantine actions mmilter needs"}});
        return SMFIS_REJECT;  // libmilter ends the connection; milter_default_action decides
    }
    if ((steps & no_reply_steps) != no_reply_steps) {
        // Not this libmilter: the callbacks' SMFIS_NOREPLY would leave the MTA waiting.
        g.ctx->logger().err("milter_negotiate", {{"error", "libmilter offers no replyless steps"}});
        return SMFIS_REJECT;
    }
    *want_actions = actions_needed;
    *want_steps |= no_reply_steps;  // to what libmilter set: the steps mmilter has no callback for
    bool leadspc = (steps & SMFIP_HDR_LEADSPC) != 0;
    if (leadspc) *want_steps |= SMFIP_HDR_LEADSPC;
    last_leadspc = leadspc;
    auto c = std::make_unique<Conn>();
    c->leadspc = leadspc;
    delete conn_of(ctx);
    smfi_setpriv(ctx, c.release());
    return SMFIS_CONTINUE;
}

sfsistat on_connect(SMFICTX* ctx, char*, _SOCK_ADDR* sa) {
    // Set first: the close callback gives the store back and frees it, whatever the answer.
    Conn* c = conn_of(ctx);
    if (!c) {
        c = new Conn;
        c->leadspc = last_leadspc;
        smfi_setpriv(ctx, c);
    }
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
    if (Conn* c = session_of(ctx)) {
        std::string v = value ? value : "";
        if (!c->leadspc) v.insert(0, 1, ' ');  // the one the MTA ate (most likely a space; a tab or none is lost)
        (void)c->session->header(name ? name : "", v);
    }
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
        // With SMFIP_HDR_LEADSPC the MTA writes the value after the colon as given.
        if (c->leadspc && !e.value.empty()) e.value.insert(0, 1, ' ');
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
            c->session->edits_refused();
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

// Signals. libmilter owns SIGHUP, SIGTERM and SIGINT: smfi_main blocks them and a thread of its own sigwaits for
// them, taking SIGHUP as an order to stop, like SIGTERM. That works only if every other thread has them blocked
// too, or the kernel may hand one to a thread started before smfi_main (the hit flusher, the thread below), where
// the default action kills the process mid-session. So they are blocked here, first, before any thread starts,
// and every thread inherits the mask; one that comes before smfi_main waits for libmilter's thread.
//
// Log rotation. A second sigwait for SIGHUP here would race libmilter's for each signal, and a stop is not a
// reopen. So mmilter reopens its --log file on SIGUSR1 (nginx's signal for it), which libmilter leaves alone:
// blocked with the others and taken by sigwait in this thread alone. The reopen is immediate (Logger::reopen is
// safe while the sessions' threads log). mmilter.service's ExecReload sends SIGUSR1.
class MilterSignals {
public:
    explicit MilterSignals(Logger& log) {
        sigset_t all;
        sigemptyset(&all);
        for (int sig : {SIGHUP, SIGTERM, SIGINT, SIGUSR1}) sigaddset(&all, sig);
        pthread_sigmask(SIG_BLOCK, &all, nullptr);
        sigemptyset(&set_);
        sigaddset(&set_, SIGUSR1);
        thread_ = std::thread([this, &log] {
            for (;;) {
                int sig = 0;
                if (sigwait(&set_, &sig) != 0) continue;
                if (done_) return;
                log.reopen();
            }
        });
    }
    ~MilterSignals() {
        done_ = true;
        pthread_kill(thread_.native_handle(), SIGUSR1);
        thread_.join();
    }
    MilterSignals(const MilterSignals&) = delete;
    MilterSignals& operator=(const MilterSignals&) = delete;

private:
    sigset_t set_{};
    std::atomic<bool> done_{false};
    std::thread thread_;
};

// libmilter's connection string: --listen's, or "fd:N" for the one listening socket systemd passed (Accept=no).
Result<std::string> milter_connection(const std::vector<std::string>& listen) {
    auto passed = activated_sockets();
    if (passed.empty()) {
        if (listen.size() != 1)
            return Error{ErrorKind::usage, "give one --listen HOST:PORT or unix:PATH, or a socket from systemd"};
        return milter_socket(listen.front());
    }
    auto refuse = [&](ErrorKind kind, const std::string& why) -> Result<std::string> {
        for (const auto& p : passed) ::close(p.fd);
        return Error{kind, why};
    };
    // libmilter serves one socket.
    if (!listen.empty()) return refuse(ErrorKind::usage, "--listen and a socket from systemd: give one, not both");
    if (passed.size() != 1)
        return refuse(ErrorKind::config,
                      "systemd passed " + std::to_string(passed.size()) + " sockets; mmilter serves one");
    if (!passed.front().listening)
        return refuse(ErrorKind::config, "systemd passed a connected socket: mmilter's socket unit needs Accept=no");
    return "fd:" + std::to_string(passed.front().fd);
}

} // namespace

void add_milter_options(CLI::App& app, MilterOptions& opt) {
    app.add_option("--listen", opt.listen,
                   "where the MTA connects: HOST:PORT, [IPV6]:PORT or unix:PATH (one)");
    app.add_option("--hostname", opt.hostname, "this host's name (default: the system's)");
    app.add_option("--user", opt.user, "the user to become after opening the socket");
    add_admission_options(app, opt, true);
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
    MilterSignals signals(ctx.logger());  // first: the signals blocked before any thread starts
    auto conn = milter_connection(opt.listen);
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
    if (auto d = drop_privileges(resolve_user(ctx, opt), unix_socket_paths({conn->rfind("unix:", 0) == 0 ? *conn : ""}));
        !d) return report(ctx.program, d.error());
    {
        // The store must open now: a milter that tempfails everything is better found at start. Opened only
        // as --user: files it creates (the store, its journal) must belong to that user.
        auto s = pool.take();
        if (!s) return report(ctx.program, s.error());
        pool.give(std::move(*s));
    }

    std::string where = conn->rfind("fd:", 0) == 0 ? local_address(std::stoi(conn->substr(3))) : *conn;
    ctx.logger().notice("listen", {{"address", where}, {"role", "milter"}});
    HitFlusher flusher(pol->hits, pool);
    // libmilter stops on SIGTERM, SIGHUP and SIGINT (its signal thread), once the connections are done; SIGUSR1
    // reopens the log (MilterSignals).
    int rc = smfi_main();
    flusher.stop();
    ctx.logger().notice("stop", {{"result", rc == MI_SUCCESS ? "ok" : "failure"}});
    return rc == MI_SUCCESS ? ex_ok : 70;
}

} // namespace mail
