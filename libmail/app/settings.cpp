// Settings resolution shared by the programs: see settings.hpp.
#include "libmail/app/settings.hpp"

#include "libmail/base/duration.hpp"
#include "libmail/io/net.hpp"
#include "libmail/mail/address.hpp"
#include "libmail/policy/spend.hpp"

#include <charconv>

namespace mail {

namespace {

// An authserv-id is a value token (RFC 8601 §2.2): no spaces, semicolons or controls.
bool good_authserv_id(std::string_view s) {
    if (s.empty() || s.size() > 255) return false;
    for (char c : s)
        if (static_cast<unsigned char>(c) <= ' ' || c == ';' || c == '(' || c == ')' || c == '"' || c == 0x7f)
            return false;
    return true;
}

} // namespace

Result<bool> resolve_bool(const Setting& s, bool from_cli) {
    if (s.value == "yes" || s.value == "true" || s.value == "on" || s.value == "1") return true;
    if (s.value == "no" || s.value == "false" || s.value == "off" || s.value == "0") return false;
    return Error{from_cli ? ErrorKind::usage : ErrorKind::config, s.origin + ": want yes or no"};
}

Error setting_error(bool from_cli, const Setting& s, const std::string& what) {
    return Error{from_cli ? ErrorKind::usage : ErrorKind::config, s.origin + ": " + what};
}

Result<std::int64_t> resolve_number(const Context& ctx, const std::optional<std::string>& cli, std::string_view key,
                                    std::int64_t dflt, std::int64_t lo, std::int64_t hi) {
    Setting s = ctx.settings().get(cli, nullptr, key, std::to_string(dflt));
    std::int64_t v = 0;
    auto [p, ec] = std::from_chars(s.value.data(), s.value.data() + s.value.size(), v);
    if (ec != std::errc() || p != s.value.data() + s.value.size() || v < lo || v > hi)
        return setting_error(cli.has_value(), s, std::string(key) + " must be " + std::to_string(lo) + " to " + std::to_string(hi));
    return v;
}

Result<std::chrono::milliseconds> resolve_seconds(const Context& ctx, const std::optional<std::string>& cli,
                                                  std::string_view key, std::int64_t dflt, bool zero_ok) {
    auto d = ctx.settings().duration(cli, nullptr, key, dflt);
    if (!d) return d.error();
    if (*d < 0 || (*d == 0 && !zero_ok) || *d > 7 * 86400)
        return Error{cli ? ErrorKind::usage : ErrorKind::config, std::string(key) + ": out of range"};
    return std::chrono::milliseconds(*d * 1000);
}

Result<bool> resolve_switch(const Context& ctx, const std::optional<bool>& cli, std::string_view key, bool fallback) {
    std::optional<std::string> text;
    if (cli) text = *cli ? "yes" : "no";
    return resolve_bool(ctx.settings().get(text, nullptr, key, fallback ? "yes" : "no"), cli.has_value());
}

Result<char> resolve_delimiter(const Context& ctx) {
    Setting delim = ctx.settings().get(std::nullopt, nullptr, "delimiter", "+");
    if (delim.value.size() != 1 || std::string_view("+-=_.").find(delim.value[0]) == std::string_view::npos)
        return Error{ErrorKind::config, delim.origin + ": delimiter must be one of + - = _ ."};
    return delim.value[0];
}

Result<PostagePolicy> resolve_postage_policy(const Context& ctx, const std::optional<std::string>& min_bits,
                                             const std::vector<std::string>& key_files,
                                             const std::optional<std::string>& authority,
                                             const std::optional<std::string>& timeout_cli) {
    const Settings& st = ctx.settings();
    PostagePolicy pp;
    Setting bits = st.get(min_bits, nullptr, "min-bits", "20");
    try {
        std::size_t used = 0;
        pp.min_bits = std::stoi(bits.value, &used);
        if (used != bits.value.size() || pp.min_bits < 0 || pp.min_bits > 160) throw 0;
    } catch (...) {
        return Error{min_bits ? ErrorKind::usage : ErrorKind::config, bits.origin + ": min-bits must be 0 to 160"};
    }

    std::vector<std::string> files = key_files;
    if (files.empty()) files = st.config().get_all(ctx.program, "authority-key");
    for (const auto& f : files) {
        auto keys = read_public_keys(f);
        if (!keys) return keys.error();
        pp.authority_keys.insert(pp.authority_keys.end(), keys->begin(), keys->end());
    }

    auto timeout = st.duration(timeout_cli, nullptr, "authority-timeout", 5);
    if (!timeout) return timeout.error();
    if (auto a = st.find(authority, nullptr, "authority"); a && !a->value.empty()) {
        std::string addr = a->value;
        if (auto hp = parse_host_port(addr); !hp)
            return Error{authority ? ErrorKind::usage : ErrorKind::config, a->origin + ": " + hp.error().text};
        int ms = static_cast<int>(std::min<std::int64_t>(*timeout, 600) * 1000);
        pp.remote_spend = [addr, ms](const PostageStamp& stamp) { return remote_spend(addr, stamp, ms); };
    }

    return pp;
}

Result<std::string> resolve_authserv_id(const Context& ctx, const std::optional<std::string>& cli,
                                        const std::string& fallback) {
    Setting id = ctx.settings().get(cli, nullptr, "authserv-id", fallback);
    if (!good_authserv_id(id.value))
        return Error{cli ? ErrorKind::usage : ErrorKind::config,
                     id.origin + ": authserv-id must be one word without ; ( ) or quotes"};
    return id.value;
}

Result<std::vector<std::string>> resolve_trusted_forwarders(const Context& ctx, const std::vector<std::string>& cli) {
    bool from_cli = !cli.empty();
    auto d = parse_domain_list(from_cli ? cli : ctx.settings().config().get_all(ctx.program, "trusted-forwarder"));
    if (d) return d;
    if (from_cli) return Error{ErrorKind::usage, "--trusted-forwarder: " + d.error().text};
    return Error{ErrorKind::config, ctx.settings().config().path() + ": trusted-forwarder: " + d.error().text};
}

Result<std::vector<HostPort>> resolve_dns_servers(const Context& ctx, const std::optional<std::string>& cli) {
    auto s = ctx.settings().find(cli, "MAILSTAMP_DNS", "dns");
    if (!s || s->value.empty()) return std::vector<HostPort>{};
    auto servers = dns::parse_servers(s->value);
    if (!servers) {
        const bool from_file = !cli && s->origin.rfind('$', 0) != 0;  // the file's origin names no key
        return setting_error(cli.has_value(), *s, (from_file ? "dns: " : "") + servers.error().text);
    }
    return servers;
}

Result<dns::ResolverOptions> resolve_dns_options(const Context& ctx, const std::optional<std::string>& cli,
                                                 bool cache) {
    dns::ResolverOptions o;
    auto servers = resolve_dns_servers(ctx, cli);
    if (!servers) return servers.error();
    o.servers = std::move(*servers);
    auto timeout = resolve_seconds(ctx, std::nullopt, "dns-timeout", 5);
    if (!timeout) return timeout.error();
    if (*timeout > std::chrono::minutes(10)) return Error{ErrorKind::config, "dns-timeout: at most 10m"};
    o.timeout = *timeout;
    auto attempts = resolve_number(ctx, std::nullopt, "dns-attempts", 2, 1, 5);
    if (!attempts) return attempts.error();
    o.attempts = static_cast<int>(*attempts);
    if (cache) {
        auto entries = resolve_number(ctx, std::nullopt, "dns-cache", 10000, 0, 1000000);
        if (!entries) return entries.error();
        o.cache_entries = static_cast<std::size_t>(*entries);
        auto max_ttl = resolve_seconds(ctx, std::nullopt, "dns-max-ttl", 86400);
        if (!max_ttl) return max_ttl.error();
        o.max_ttl = std::chrono::duration_cast<std::chrono::seconds>(*max_ttl);
    }
    return o;
}

std::string tag_for(const Context& ctx, Category c) {
    std::string key = "tag-";
    for (char ch : category_name(c)) key += static_cast<char>(ch >= 'A' && ch <= 'Z' ? ch + 32 : ch);
    std::string dflt = std::string("[") + category_letter(c) + "]";
    return ctx.settings().get(std::nullopt, nullptr, key, dflt).value;
}

} // namespace mail
