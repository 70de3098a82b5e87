// See admission_options.hpp.
#include "libmail/tool/admission_options.hpp"

#include "libmail/mail/address.hpp"
#include "libmail/base/duration.hpp"
#include "libmail/base/limits.hpp"
#include "libmail/app/settings.hpp"
#include "libmail/tool/cli.hpp"

#include <CLI/CLI.hpp>

#include <fstream>
#include <map>

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

    // The seed's "non-stamped or stamped": the site may screen stamped strangers' mail as well.
    auto fs = resolve_switch(ctx, opt.forward_stamped, "forward-stamped", false);
    if (!fs) return fs.error();
    p.forward_stamped = *fs;

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
void add_token_options(CLI::App& app, std::optional<std::string>& ttl, std::optional<std::string>& per_network,
                       std::optional<std::string>& per_sender) {
    app.add_option("--token-ttl", ttl, "lifetime of the token address in a 550 (default 10d)");
    app.add_option("--token-limit-network", per_network,
                   "token addresses a day for one client /24 or /64 (default 20; 0: no limit)");
    app.add_option("--token-limit-sender", per_sender, "token addresses a day for one sender (default 20; 0: no limit)");
}

void add_admission_options(CLI::App& app, ProxyOptions& opt, bool milter) {
    app.add_option("--unknown", opt.unknown,
                   milter ? "unknown senders: reject (default), mark, quarantine, forward=ADDR, forward=/MAP, postage, "
                            "token-postage"
                          : "unknown senders: reject (default), mark, forward=ADDR, forward=/MAP, postage, token-postage");
    add_switch(app, "forward-stamped", opt.forward_stamped,
               "forward mode: forward mail admitted only by its postage (G, Q) too",
               "forward mode: deliver stamped mail (the default)");
    app.add_option("--authserv-id", opt.authserv_id, "the name in Authentication-Results (default: --hostname)");
    app.add_option("--stamp", opt.stamp,
                   "postage on authenticated users' mail: none (default), hashcash, timed, paid");
    app.add_option("--stamp-bits", opt.stamp_bits, "hashcash bits for --stamp hashcash");
    app.add_option("--home-domain", opt.home_domains,
                   "a domain authenticated users may send from (default: the protected domains)");
    add_auth_options(app, opt.auth, false);
    app.add_option("--spf", opt.spf,
                   milter ? "yes (default): evaluate SPF on the MTA's client; no: the MTA checks it"
                          : "yes (default): evaluate SPF; no: an MTA in front checks it");
    app.add_option("--trusted-forwarder", opt.trusted_forwarders,
                   "a forwarder whose SRS addresses count as the senders they wrap (repeatable)");
    app.add_option("--min-bits", opt.min_bits, "hashcash bits required in postage and token-postage mode (default 20)");
    app.add_option("--authority-key", opt.authority_keys, "trusted stamp authority public keys (repeatable)");
    app.add_option("--authority", opt.authority, "HOST:PORT of the stamp authority's spend check");
    add_token_options(app, opt.token_ttl, opt.token_limit_network, opt.token_limit_sender);
    add_switch(app, "tag", opt.tag, "tag the Subject with the category (the default)", "leave the Subject alone");
}

} // namespace mail
