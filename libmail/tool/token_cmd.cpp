// mtoken's commands: see mtoken(1).
#include "libmail/tool/token_cmd.hpp"

#include "libmail/mail/address.hpp"
#include "libmail/base/clock.hpp"
#include "libmail/base/duration.hpp"
#include "libmail/policy/token.hpp"
#include "libmail/app/settings.hpp"

#include <iostream>

namespace mail {

namespace {

Result<char> delimiter_of(const Context& ctx, const TokenOptions& opt) {
    std::optional<std::string> cli;
    if (!opt.delimiter.empty()) cli = opt.delimiter;
    Setting d = ctx.settings().get(cli, nullptr, "delimiter", "+");
    if (d.value.size() != 1 || std::string_view("+-=_.").find(d.value[0]) == std::string_view::npos)
        return Error{cli ? ErrorKind::usage : ErrorKind::config,
                     d.origin + ": delimiter must be one of + - = _ ."};
    return d.value[0];
}

Result<int> cmd_make(Context& ctx, Store& store, const TokenOptions& opt, char delim, std::ostream& out) {
    std::optional<std::string> ttl_cli;
    if (!opt.ttl.empty()) ttl_cli = opt.ttl;
    auto secs = ctx.settings().duration(ttl_cli, nullptr, "ttl", 10 * 86400);
    if (!secs) return secs.error();
    if (*secs <= 0) return Error{ttl_cli ? ErrorKind::usage : ErrorKind::config, "ttl must be positive"};
    bool once = opt.once;
    if (!opt.once && !opt.dated) {
        Setting kind = ctx.settings().get(std::nullopt, nullptr, "kind", "dated");
        if (kind.value != "once" && kind.value != "dated")
            return Error{ErrorKind::config, kind.origin + ": kind must be once or dated"};
        once = kind.value == "once";
    }
    TokenRequest req;
    auto a = parse_addr_spec(opt.address);
    if (!a || a->domain.empty() || a->local.empty())
        return Error{ErrorKind::usage, "recipient '" + opt.address + "': not an address"};
    if (a->local.find(delim) != std::string::npos)
        return Error{ErrorKind::usage, "recipient '" + opt.address + "' already contains the delimiter '" +
                                           std::string(1, delim) + "'"};
    req.recipient = opt.address;
    req.flags = once ? token_flag::once : 0;
    if (!opt.sender.empty()) {
        auto s = parse_addr_spec(opt.sender);
        if (!s || s->domain.empty()) return Error{ErrorKind::usage, "sender '" + opt.sender + "': not an address"};
        req.flags |= token_flag::sender;
        req.sender = opt.sender;
    }
    std::int64_t t = now();
    req.expires = t + *secs;
    req.delimiter = delim;
    auto tok = issue_token(store, req, t);
    if (!tok) return tok.error();
    out << *tok << '\n';
    ctx.log_event("token_make", {{"recipient", normalize_address(*a)},
                                 {"kind", once ? "once" : "dated"},
                                 {"expires", format_time(req.expires)}});
    return ex_ok;
}

Result<int> cmd_check(Context& ctx, Store& store, const TokenOptions& opt, char delim, std::ostream& out,
                      std::ostream& err) {
    // A sender-bound token is checked against the sender as it stands: an SRS wrapper is the
    // forwarder's own address unless the forwarder is trusted.
    std::string sender = opt.sender;
    if (!sender.empty()) {
        auto fwd = resolve_trusted_forwarders(ctx, opt.trusted_forwarders);
        if (!fwd) return fwd.error();
        if (auto a = parse_addr_spec(sender); a && !a->domain.empty())
            sender = normalize_address(strip_sender_tags(*a, *fwd));
    }
    auto v = check_token(store, opt.address, sender, opt.consume, delim, now());
    if (!v) return v.error();
    if (opt.consume || v->check != TokenCheck::ok)
        ctx.log_event("token_check", {{"result", std::string(to_string(v->check))},
                                      {"recipient", v->recipient},
                                      {"consume", opt.consume ? "yes" : "no"}});
    if (v->check == TokenCheck::ok) {
        out << v->recipient << '\n';
        return ex_ok;
    }
    err << ctx.program << ": check: " << to_string(v->check) << '\n';
    return ex_no;
}

Result<int> cmd_revoke(Context& ctx, Store& store, const TokenOptions& opt, char delim, std::ostream& out,
                       std::ostream& err) {
    int bad = 0;
    // Validate all first so a typo in the batch revokes nothing.
    for (const auto& a : opt.addresses) {
        auto t = parse_token(a, delim);
        if (!t) {
            err << ctx.program << ": revoke: " << a << ": not a token address\n";
            ++bad;
        }
    }
    if (bad) return Error{ErrorKind::data, "nothing revoked"};
    std::vector<std::string> lines, recipients;
    auto r = store.transaction([&]() -> Result<void> {
        for (const auto& a : opt.addresses) {
            auto v = revoke_token(store, a, delim, now());
            if (!v) return v.error();
            recipients.push_back(v->recipient);
            if (v->check == TokenCheck::invalid) return Error{ErrorKind::data, a + ": invalid; nothing revoked"};
            lines.push_back(std::string(v->check == TokenCheck::expired ? "expired " : "revoked ") + a);
        }
        return {};
    });
    if (!r) return r.error();
    for (std::size_t i = 0; i < lines.size(); ++i) {
        out << lines[i] << '\n';
        // The recipient, never the token: a logged token would be usable.
        ctx.log_event("token_revoke", {{"recipient", recipients[i]}});
    }
    return ex_ok;
}

Result<int> dispatch(Context& ctx, const TokenOptions& opt, std::ostream& out, std::ostream& err) {
    auto delim = delimiter_of(ctx, opt);
    if (!delim) return delim.error();
    auto store = ctx.open_store(store_use(opt.command, {"make", "rotate"}));
    if (!store) return store.error();
    Store& s = **store;
    const std::string& c = opt.command;
    if (c == "make") return cmd_make(ctx, s, opt, *delim, out);
    if (c == "check") return cmd_check(ctx, s, opt, *delim, out, err);
    if (c == "revoke") return cmd_revoke(ctx, s, opt, *delim, out, err);
    if (c == "list") {
        auto l = s.token_list(now());
        if (!l) return l.error();
        for (const auto& t : *l)
            out << t.id << '\t' << to_string(t.state) << '\t' << t.recipient << '\t' << format_time(t.changed)
                << '\t' << format_time(t.expires) << '\n';
        return ex_ok;
    }
    if (c == "expire") {
        auto n = s.token_expire(now());
        if (!n) return n.error();
        out << "purged " << *n << '\n';
        ctx.log_event("token_expire", {{"purged", std::to_string(*n)}});
        return ex_ok;
    }
    if (c == "rotate") {
        auto id = rotate_token_secret(s, now());
        if (!id) return id.error();
        out << "key " << *id << '\n';
        ctx.log_event("token_rotate", {{"key_id", std::to_string(*id)}});
        return ex_ok;
    }
    return Error{ErrorKind::usage, "unknown command " + c};
}

} // namespace

int run_token(Context& ctx, const TokenOptions& opt, std::istream&, std::ostream& out, std::ostream& err) {
    auto r = dispatch(ctx, opt, out, err);
    out.flush();
    if (!r) return report(ctx.program, opt.command, r.error());
    if (!out) return report(ctx.program, opt.command, Error{ErrorKind::tempfail, "write error on stdout"});
    return *r;
}

} // namespace mail
