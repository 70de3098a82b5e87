// Sender authentication set-up shared by the front ends: see auth_setup.hpp.
#include "libmail/app/auth_setup.hpp"

#include "libmail/app/settings.hpp"
#include "libmail/base/canon.hpp"
#include "libmail/base/clock.hpp"
#include "libmail/base/text.hpp"
#include "libmail/mail/address.hpp"


namespace mail {

namespace {

// An authserv-id is a value token (RFC 8601 §2.2).
bool good_id(std::string_view s) {
    if (s.empty() || s.size() > 255) return false;
    for (char c : s)
        if (static_cast<unsigned char>(c) <= ' ' || c == ';' || c == '(' || c == ')' || c == '"' || c == 0x7f)
            return false;
    return true;
}

// An address or CIDR block: hex digits, dots, colons and one '/' with a length.
bool good_relay(std::string_view s) {
    if (s.empty() || s.size() > 64) return false;
    auto slash = s.find('/');
    std::string_view ip = s.substr(0, slash);
    if (ip.empty() || ip.find_first_not_of("0123456789abcdefABCDEF:.") != std::string_view::npos) return false;
    if (slash == std::string_view::npos) return true;
    std::string_view len = s.substr(slash + 1);
    return !len.empty() && len.size() <= 3 && len.find_first_not_of("0123456789") == std::string_view::npos;
}

Result<std::vector<std::string>> list_of(const Context& ctx, const std::vector<std::string>& cli, const char* key,
                                         bool (*good)(std::string_view), const char* what) {
    bool from_cli = !cli.empty();
    std::vector<std::string> v;
    // Several values in one, separated by spaces or commas, as trusted-forwarder takes them.
    for (const auto& one : from_cli ? cli : ctx.settings().config().get_all(ctx.program, key)) {
        std::size_t i = 0;
        while (i < one.size()) {
            std::size_t j = one.find_first_of(", \t", i);
            if (j == std::string::npos) j = one.size();
            if (j > i) v.push_back(one.substr(i, j - i));
            i = j + 1;
        }
    }
    for (const auto& x : v)
        if (!good(x))
            return Error{from_cli ? ErrorKind::usage : ErrorKind::config,
                         (from_cli ? std::string("--") + key : ctx.settings().config().path() + ": " + key) + ": '" +
                             scrub(x, 100) + "' is not " + what};
    return v;
}


} // namespace

Result<auth::Settings> resolve_auth_settings(const Context& ctx, const AuthOptions& opt, const std::string& receiver) {
    auth::Settings s;
    auto relays = list_of(ctx, opt.trusted_relays, "trusted-relay", good_relay, "an address or CIDR block");
    if (!relays) return relays.error();
    s.trusted_relays = std::move(*relays);
    auto ids = list_of(ctx, opt.trusted_authserv_ids, "trusted-authserv-id", good_id, "an authserv-id");
    if (!ids) return ids.error();
    s.trusted_authserv_ids = std::move(*ids);
    bool from_cli = !opt.trusted_arc_sealers.empty();
    auto sealers = parse_domain_list(from_cli ? opt.trusted_arc_sealers
                                              : ctx.settings().config().get_all(ctx.program, "trusted-arc-sealer"));
    if (!sealers)
        return Error{from_cli ? ErrorKind::usage : ErrorKind::config,
                     (from_cli ? std::string("--trusted-arc-sealer") : ctx.settings().config().path() +
                                                                          ": trusted-arc-sealer") +
                         ": " + sealers.error().text};
    s.trusted_arc_sealers = std::move(*sealers);
    if (opt.client_ip && !good_relay(*opt.client_ip))
        return Error{ErrorKind::usage, "--client-ip: '" + scrub(*opt.client_ip, 100) + "' is not an address"};
    if (opt.helo && (opt.helo->empty() || opt.helo->size() > 255 || has_control(*opt.helo)))
        return Error{ErrorKind::usage, "--helo: not a HELO name"};
    s.receiver = receiver;
    s.now = now();
    return s;
}

Result<dns::Resolver*> process_resolver(const Context& ctx, bool) {
    // The Context's resolver (branch i14-dns): --dns, MAILSTAMP_DNS, config dns, else /etc/resolv.conf; its
    // cache is the daemons' (LogRole::daemon), none for filters.
    return &ctx.resolver();
}

namespace {

// The client: the options', else a trusted relay's Received field, else none (SPF is not evaluated).
auth::Client client_of(const AuthOptions& opt, const auth::Settings& settings, const std::vector<HeaderField>& fields) {
    auth::Client client;
    if (opt.client_ip) {
        client.ip = *opt.client_ip;
        client.helo = opt.helo.value_or("");
    } else if (auto c = auth::client_from_received(fields, settings.trusted_relays)) {
        client = *c;
        if (opt.helo) client.helo = *opt.helo;
    }
    return client;
}

} // namespace

Result<auth::Results> check_spooled(dns::Resolver& resolver, const auth::Settings& settings, const AuthOptions& opt,
                                    const std::vector<HeaderField>& fields, std::string_view mail_from,
                                    const Spool& raw, std::size_t body_at) {
    auth::Checker checker(resolver, settings, fields);
    if (auto r = raw.each([&](std::string_view piece) -> Result<void> {
            checker.body(piece);
            return {};
        }, body_at);
        !r)
        return r.error();
    return checker.finish(client_of(opt, settings, fields), mail_from);
}

Result<auth::Results> check_message(dns::Resolver& resolver, const auth::Settings& settings, const AuthOptions& opt,
                                    MessageReader& msg, std::string_view mail_from, Spool& body,
                                    std::string& body_hash) {
    auth::Client client = client_of(opt, settings, msg.fields());
    auth::Checker checker(resolver, settings, msg.fields());
    RelaxedBodyHash hash;
    char buf[65536];
    for (;;) {
        auto n = msg.read_body(buf, sizeof buf);
        if (!n) return n.error();
        if (*n == 0) break;
        std::string_view piece(buf, *n);
        hash.update(piece);
        checker.body(piece);
        if (auto w = body.write(piece); !w) return w.error();
    }
    body_hash = hash.finish();
    return checker.finish(client, mail_from);
}

} // namespace mail
