// mverify: see mverify(1).
#include "libmail/tool/verify_cmd.hpp"

#include <charconv>

#include "libmail/mail/address.hpp"
#include "libmail/base/clock.hpp"
#include "libmail/base/duration.hpp"
#include "libmail/mail/message.hpp"
#include "libmail/io/net.hpp"
#include "libmail/policy/postage.hpp"
#include "libmail/policy/spend.hpp"
#include "libmail/mail/spool.hpp"
#include "libmail/policy/admission_auth.hpp"
#include "libmail/policy/admission_store.hpp"
#include "libmail/policy/verify.hpp"
#include "libmail/base/text.hpp"
#include "libmail/auth/auth.hpp"
#include "libmail/auth/spf.hpp"
#include "libmail/io/dns.hpp"

#include <CLI/CLI.hpp>
#include <arpa/inet.h>

#include <iostream>

namespace mail {

namespace {

// The resolved settings of one run.
struct Policy {
    std::optional<std::string> sender;
    std::vector<std::string> rcpts;
    PostagePolicy postage;
    std::string authserv_id;
    bool reject_unknown = false;
    bool tag = true;
    bool trust_upstream = false;
    char delimiter = '+';
    std::size_t max_size = limits::message_size;
    std::vector<std::string> trusted_forwarders;
};

Result<Policy> policy_of(const Context& ctx, const VerifyOptions& opt) {
    const Settings& st = ctx.settings();
    Policy p;
    p.sender = opt.sender;
    p.rcpts = opt.rcpts;

    auto postage = resolve_postage_policy(ctx, opt.min_bits, opt.authority_keys, opt.authority, opt.authority_timeout);
    if (!postage) return postage.error();
    p.postage = std::move(*postage);

    auto id = resolve_authserv_id(ctx, opt.authserv_id, host_name());
    if (!id) return id.error();
    p.authserv_id = *id;

    Setting unknown = st.get(opt.unknown, nullptr, "unknown", "mark");
    if (unknown.value != "mark" && unknown.value != "reject")
        return Error{opt.unknown ? ErrorKind::usage : ErrorKind::config, unknown.origin + ": unknown must be mark or reject"};
    p.reject_unknown = unknown.value == "reject";

    auto tag = resolve_switch(ctx, opt.tag, "tag", true);
    if (!tag) return tag.error();
    p.tag = *tag;

    auto trust = resolve_switch(ctx, opt.trust_upstream ? std::optional<bool>(true) : std::nullopt, "trust-upstream", false);
    if (!trust) return trust.error();
    p.trust_upstream = *trust;

    auto delim = resolve_delimiter(ctx);
    if (!delim) return delim.error();
    p.delimiter = *delim;

    auto fwd = resolve_trusted_forwarders(ctx, opt.trusted_forwarders);
    if (!fwd) return fwd.error();
    p.trusted_forwarders = std::move(*fwd);

    Setting size = st.get(opt.max_size, nullptr, "max-message-size", std::to_string(limits::message_size));
    auto n = parse_size(size.value);
    if (!n || *n <= 0)
        return Error{opt.max_size ? ErrorKind::usage : ErrorKind::config,
                     size.origin + ": max-message-size: " + (n ? std::string("must be positive") : n.error().text)};
    p.max_size = static_cast<std::size_t>(*n);
    return p;
}

Result<int> verify(Context& ctx, const VerifyOptions& opt, std::istream& in, std::ostream& out, std::ostream& err) {
    auto p = policy_of(ctx, opt);
    if (!p) return p.error();
    MessageReader msg(in, p->max_size);
    if (auto r = msg.read_header(); !r) return r.error();

    Verdict v;
    bool upstream = false;
    if (p->trust_upstream) {
        // Behind our own proxy, which stripped forgeries at the border: take its verdict as it is.
        if (auto cls = msg.get("X-Mailstamp-Class"); cls && !cls->empty()) {
            if (auto c = parse_category(cls->substr(0, 1))) {
                v.category = *c;
                v.reason = "upstream verdict";
                upstream = true;
            }
        }
    }

    std::size_t forged = 0;
    auto store = ctx.open_store();
    if (!store) return store.error();
    Spool spool;
    bool spooled = false;
    Envelope env;
    StoreLookups lookups(**store, p->delimiter);
    std::optional<TokenHolds> holds;  // released unless claimed, whatever way this returns
    if (!upstream) {
        forged = strip_verdicts(msg, p->authserv_id);
        std::vector<std::string> domains;
        if (p->rcpts.empty()) {
            auto d = (*store)->domain_list();
            if (!d) return d.error();
            domains = std::move(*d);
        }
        auto e = envelope_of(msg, p->sender, p->rcpts, domains, p->trusted_forwarders);
        if (!e) return e.error();
        env = std::move(*e);

        // Sender authentication first (mailstamp(7) ADMISSION): DKIM needs the whole body, and the headers can
        // only be written after the verdict, so the body goes to a spool file on the way (memory stays flat),
        // its relaxed hash taken for the stamps at the same time.
        auto settings = resolve_auth_settings(ctx, opt.auth, host_name());
        if (!settings) return settings.error();
        auto resolver = process_resolver(ctx);
        if (!resolver) return resolver.error();
        std::string hash;
        auto results = check_message(**resolver, *settings, opt.auth, msg, env.sender.value_or(""), spool, hash);
        if (!results) return results.error();
        spooled = true;
        FrontAuth auth(**resolver, [&](std::string_view event, std::string_view identity, std::string_view detail) {
            ctx.logger().log(event == "forged" ? Level::notice : Level::info, event,
                             {{"identity", identity}, {"sender", env.sender.value_or("")}, {"results", detail}});
        });
        auth.set_results(*results);

        // The admission core decides (mailstamp(7) ADMISSION).
        auto body_hash = [&]() -> Result<std::string> { return hash; };
        auto d = decide_filter(lookups, holds, env, msg, p->delimiter, p->postage, body_hash, &auth);
        if (!d) return d.error();
        v = std::move(*d);
    }

    std::string letter(1, category_letter(v.category));
    ctx.log_event("verdict", {{"class", letter},
                              {"reason", v.reason},
                              {"sender", env.sender.value_or("")},
                              {"rcpts", static_cast<long>(env.rcpts.size())},
                              {"hashcash", v.hashcash},
                              {"postage", v.postage},
                              {"forged_removed", static_cast<long>(forged)}});

    if (v.category == Category::unknown && p->reject_unknown) {
        err << ctx.program << ": 5.7.1 message refused: no postage and sender not whitelisted\n";
        return exit_code(ErrorKind::rejected);
    }
    if (!upstream) {
        add_verdict_fields(msg, v, p->authserv_id);
    }
    if (p->tag) {
        std::string tag = tag_for(ctx, v.category);
        if (!tag.empty()) msg.tag_subject(tag);
    }
    // The one-time tokens it came by become uses before the message goes out (given back if it does not).
    if (holds) {
        if (auto c = holds->claim(now()); !c) return c.error();
    }
    if (auto r = write_message(msg, spooled ? &spool : nullptr, out); !r) return r.error();
    if (holds) holds->commit();
    return ex_ok;
}

} // namespace

int run_verify(Context& ctx, const VerifyOptions& opt, std::istream& in, std::ostream& out, std::ostream& err) {
    return run_filter(ctx.program, [&] { return verify(ctx, opt, in, out, err); });
}

// ---- mverify spf (issue 14): SPF for admins and tests; kept apart from the filter above ----

CLI::App* add_spf_command(CLI::App& app, SpfCommandOptions& opt) {
    auto* spf = app.add_subcommand("spf", "SPF check of a client, HELO name and sender (RFC 7208), like spfquery");
    spf->add_option("--ip", opt.ip, "the client's IP address")->required();
    spf->add_option("--helo", opt.helo, "the HELO/EHLO name")->required();
    spf->add_option("--sender", opt.sender, "the MAIL FROM address ('' or <> for the null sender)");
    spf->add_option("--dns", opt.dns, "HOST:PORT of the resolver to ask (default: /etc/resolv.conf)");
    return spf;
}

int run_verify_spf(Context& ctx, const SpfCommandOptions& opt, std::ostream& out, std::ostream& err) {
    auto fail = [&](ErrorKind k, const std::string& text) {
        err << ctx.program << ": " << scrub(text, 300) << "\n";
        return exit_code(k);
    };
    spf::Query q;
    q.ip = opt.ip;
    q.helo = opt.helo;
    q.sender = opt.sender == "<>" ? std::string() : opt.sender;
    if (q.sender.size() >= 2 && q.sender.front() == '<' && q.sender.back() == '>') q.sender = q.sender.substr(1, q.sender.size() - 2);
    q.receiver = host_name();
    unsigned char buf[16];
    if (q.ip.size() > 64 || (inet_pton(AF_INET, q.ip.c_str(), buf) != 1 && inet_pton(AF_INET6, q.ip.c_str(), buf) != 1))
        return fail(ErrorKind::usage, "--ip: not a numeric IP address: " + q.ip);
    if (has_control(q.helo) || q.helo.size() > 255) return fail(ErrorKind::usage, "--helo: not a host name");
    if (has_control(q.sender) || q.sender.size() > 320) return fail(ErrorKind::usage, "--sender: not an address");

    spf::Outcome o = spf::check_mailfrom(ctx.resolver(), q);
    out << spf::to_string(o.result) << "\n";
    if (!o.explanation.empty()) out << scrub(o.explanation, 1000) << "\n";
    ctx.log_event("spf", {{"result", std::string(spf::to_string(o.result))},
                          {"ip", q.ip},
                          {"helo", q.helo},
                          {"sender", q.sender},
                          {"domain", o.domain},
                          {"mechanism", o.mechanism},
                          {"lookups", static_cast<long>(o.lookups)}});
    return ex_ok;
}


// ---------------------------------------------------------------- mverify auth

namespace {

Result<int> auth_results(Context& ctx, const AuthCommandOptions& opt, std::istream& in, std::ostream& out) {
    // The command line first: its errors are usage errors, before anything is read or asked.
    auth::Client client;
    if (opt.ip && client_ip(*opt.ip).empty())
        return Error{ErrorKind::usage, "--ip: not a numeric IP address: " + scrub(*opt.ip, 100)};
    if (opt.sender) {
        std::string_view g = trim(*opt.sender);
        if (!g.empty() && g != "<>")
            if (auto a = parse_path(g); !a) return Error{ErrorKind::usage, "--sender: " + a.error().text};
    }
    AuthOptions lists;  // the trusted lists, resolved as the filter resolves them (app/auth_setup)
    lists.trusted_relays = opt.trusted_relays;
    lists.trusted_authserv_ids = opt.trusted_authserv_ids;
    lists.trusted_arc_sealers = opt.trusted_arc_sealers;
    auto settings = resolve_auth_settings(ctx, lists, host_name());
    if (!settings) return settings.error();
    const auth::Settings& as = *settings;

    MessageReader msg(in);
    if (auto r = msg.read_header(); !r) return r.error();

    std::string sender;
    std::optional<std::string> given = opt.sender;
    if (!given) given = msg.get("Return-Path");
    if (given) {
        std::string_view g = trim(*given);
        if (!g.empty() && g != "<>") {
            auto a = parse_path(g);
            if (!a) return Error{opt.sender ? ErrorKind::usage : ErrorKind::data, "sender: " + a.error().text};
            sender = normalize_address(*a);
        }
    }
    if (opt.ip) {
        client.ip = client_ip(*opt.ip);
        client.helo = opt.helo.value_or("");
    } else if (auto c = auth::client_from_received(msg.fields(), as.trusted_relays)) {
        client = *c;
        if (opt.helo) client.helo = *opt.helo;
    }

    auth::Checker checker(ctx.resolver(), as, msg.fields());
    char buf[16384];
    for (;;) {
        auto n = msg.read_body(buf, sizeof buf);
        if (!n) return n.error();
        if (*n == 0) break;
        checker.body(std::string_view(buf, *n));
    }
    auth::Results r = checker.finish(client, sender);
    for (const auto& line : r.method_results()) out << line << '\n';
    out.flush();
    if (!out) return Error{ErrorKind::tempfail, "write error on stdout"};
    return ex_ok;
}

} // namespace

CLI::App* add_auth_command(CLI::App& app, AuthCommandOptions& opt, CommonOptions& common) {
    CLI::App* sub = app.add_subcommand("auth", "print the SPF, DKIM, DMARC and ARC results of the message on stdin");
    sub->add_option("--ip", opt.ip, "the SMTP client's address (default: from the Received fields)");
    sub->add_option("--helo", opt.helo, "the HELO/EHLO name the client gave");
    sub->add_option("--sender", opt.sender, "the envelope sender ('' or <> for a bounce; default: Return-Path)");
    add_dns_option(*sub, common);  // the same --dns as mverify's, after the subcommand's name
    sub->add_option("--trusted-relay", opt.trusted_relays, "an address or CIDR block whose Received fields are believed (repeatable)");
    sub->add_option("--trusted-authserv-id", opt.trusted_authserv_ids,
                    "an authserv-id whose Authentication-Results are taken when no client is known (repeatable)");
    sub->add_option("--trusted-arc-sealer", opt.trusted_arc_sealers, "a domain whose ARC seals count (repeatable)");
    return sub;
}

int run_auth(Context& ctx, const AuthCommandOptions& opt, std::istream& in, std::ostream& out, std::ostream& err) {
    (void)err;
    return run_filter(ctx.program, [&] { return auth_results(ctx, opt, in, out); });
}

} // namespace mail
