// mverify's job behind cmd/mverify.cpp: verdicts on incoming mail (mverify(1)).
#pragma once
#include "libmail/tool/cli.hpp"
#include "libmail/policy/verify.hpp"

#include <chrono>
#include <cstdint>
#include <iosfwd>
#include <optional>
#include <string>
#include <vector>

namespace mail {

/// mverify's options, filled by CLI11; unset ones come from the config file.
struct VerifyOptions {
    std::optional<std::string> sender;
    std::vector<std::string> rcpts;
    std::optional<std::string> min_bits;
    std::vector<std::string> authority_keys;  ///< key files
    std::optional<std::string> authority;     ///< HOST:PORT of the spend check
    std::optional<std::string> authority_timeout;
    std::optional<std::string> authserv_id;
    std::optional<std::string> unknown;       ///< mark or reject
    std::optional<std::string> max_size;
    bool trust_upstream = false;
    std::optional<bool> tag;
    std::vector<std::string> trusted_forwarders;  ///< domains whose SRS wrappers are taken off
};

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
/// The subject tag configured for c (tag-stamped = [G] and so on); "" turns it off.
std::string tag_for(const Context& ctx, Category c);

/// Classifies the message on in and writes it, with its verdict, to out; returns the exit code
/// (0 delivered, 69 rejected by --unknown reject, 75 on any internal failure with nothing written).
int run_verify(Context& ctx, const VerifyOptions& opt, std::istream& in, std::ostream& out, std::ostream& err);

} // namespace mail
