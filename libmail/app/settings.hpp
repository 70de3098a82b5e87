// Settings resolution every program shares: a value from the command line,
// else the config file ([program], then [common]), else a default, checked,
// with errors naming where the bad value came from.
#pragma once
#include "libmail/app/context.hpp"
#include "libmail/policy/verify.hpp"

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace mail {

/// A bad setting: kind usage when it came from the command line, else config, with where it came from.
Error setting_error(bool from_cli, const Setting& s, const std::string& what);
/// A whole-number setting (cli, else config key, else dflt) within lo..hi.
Result<std::int64_t> resolve_number(const Context& ctx, const std::optional<std::string>& cli, std::string_view key,
                                    std::int64_t dflt, std::int64_t lo, std::int64_t hi);
/// A duration setting ("90", "5m", "2h") of at most a week, in milliseconds; 0 only when zero_ok.
Result<std::chrono::milliseconds> resolve_seconds(const Context& ctx, const std::optional<std::string>& cli,
                                                  std::string_view key, std::int64_t dflt, bool zero_ok = false);
/// A yes/no setting (yes, true, on, 1 / no, false, off, 0); kind usage from the command line, else config.
Result<bool> resolve_bool(const Setting& s, bool from_cli);
/// A yes/no setting: the command line's --KEY/--no-KEY (cli), else config key, else fallback.
Result<bool> resolve_switch(const Context& ctx, const std::optional<bool>& cli, std::string_view key, bool fallback);
/// The token-address delimiter (config `delimiter`: + - = _ or ., default +).
Result<char> resolve_delimiter(const Context& ctx);
/// The postage checks' settings: min-bits, authority-key files, the online authority and its timeout.
Result<PostagePolicy> resolve_postage_policy(const Context& ctx, const std::optional<std::string>& min_bits,
                                             const std::vector<std::string>& key_files,
                                             const std::optional<std::string>& authority,
                                             const std::optional<std::string>& timeout_cli);
/// The authserv-id for Authentication-Results (one RFC 8601 value token), default fallback.
Result<std::string> resolve_authserv_id(const Context& ctx, const std::optional<std::string>& cli,
                                        const std::string& fallback);
/// The trusted forwarders: the --trusted-forwarder values cli, else every config `trusted-forwarder`
/// ([program], else [common]); normalised domains.
Result<std::vector<std::string>> resolve_trusted_forwarders(const Context& ctx, const std::vector<std::string>& cli);
/// The DNS servers: --dns (cli), else $MAILSTAMP_DNS, else config `dns` (each "HOST:PORT[,HOST:PORT]",
/// numeric addresses, port 53 when left out); empty when none is set (the resolver then reads
/// /etc/resolv.conf). A bad value is kind usage from the command line, else config, naming where it came from.
Result<std::vector<HostPort>> resolve_dns_servers(const Context& ctx, const std::optional<std::string>& cli);
/// Everything the resolver is made from: resolve_dns_servers, config `dns-timeout` (per query, default 5s),
/// `dns-attempts` (1 to 5, default 2); for daemons (cache true) a cache of config `dns-cache` entries
/// (default 10000; 0 turns it off) whose answers live at most config `dns-max-ttl` (default 1d).
Result<dns::ResolverOptions> resolve_dns_options(const Context& ctx, const std::optional<std::string>& cli,
                                                 bool cache);
/// The subject tag configured for c (tag-stamped = [G] and so on); "" turns it off.
std::string tag_for(const Context& ctx, Category c);

} // namespace mail
