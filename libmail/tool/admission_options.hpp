// The options msmtp-proxy and mmilter share (ProxyOptions) and the admission
// settings they resolve from them and the config file: one place, so the two
// front ends of the one gate are configured alike (msmtp-proxy(8), mmilter(8)).
#pragma once
#include "libmail/app/auth_setup.hpp"
#include "libmail/daemon/daemon_cmd.hpp"
#include "libmail/daemon/proxy.hpp"
#include "libmail/daemon/source_setup.hpp"

#include <optional>
#include <string>
#include <vector>

namespace CLI {
class App;
}

namespace mail {

/// msmtp-proxy's options, filled by CLI11; unset ones come from the config file.
struct ProxyOptions : SmtpDaemonOptions {
    std::vector<std::string> submission_listen;  ///< ADDR:PORT, submission (AUTH required)
    bool submission = false;                     ///< every session is a submission session
    std::optional<std::string> relay, maildir, pickup, deliver, smarthost;
    std::optional<std::string> verify_recipients;  ///< probe, map:FILE or none
    std::optional<std::string> unknown;
    std::optional<bool> forward_stamped;  ///< forward mode takes mail admitted only by its postage too
    std::optional<std::string> authserv_id;
    AuthOptions auth;  ///< trusted authserv-ids, ARC sealers (the client is the session's own)
    std::optional<std::string> stamp, stamp_bits;
    std::optional<std::string> banner;  ///< msmtp-proxy: the recruitment banner file for outgoing mail
    std::optional<bool> batv;
    std::optional<std::string> spf;  ///< yes|no: SPF at MAIL
    std::vector<std::string> home_domains;
    std::vector<std::string> trusted_forwarders;
    std::optional<std::string> relay_timeout;
    std::optional<std::string> xclient;               ///< auto|yes|no: XCLIENT to the relay
    std::optional<std::string> relay_proxy_protocol;  ///< none|v2: a PROXY header to the relay
    std::optional<std::string> min_bits;
    std::vector<std::string> authority_keys;
    std::optional<std::string> authority;
    std::optional<bool> tag;
    std::optional<std::string> token_ttl;
    std::optional<std::string> auth_failures, auth_window, max_auth_hashes;
    std::optional<std::string> token_limit_network, token_limit_sender;
    std::optional<bool> source;      ///< SOURCE/GET on the incoming listener (msourced's extension)
    SourceSettings source_settings;  ///< its options, as msourced's
    // user subcommands
    std::string command;      ///< "" (serve), or user add|passwd|senders|remove|list
    std::string user_name;
    std::vector<std::string> user_senders;  ///< add, senders: the addresses (or @domains) the user may send as
    bool user_default = false;              ///< senders: back to the default (the login when it is an address)
    bool json = false;
};

/// Binds the token address options (--token-ttl, --token-limit-network, --token-limit-sender).
void add_token_options(CLI::App& app, std::optional<std::string>& ttl, std::optional<std::string>& per_network,
                       std::optional<std::string>& per_sender);

/// Binds the admission options msmtp-proxy and mmilter share (--unknown, --stamp, --spf, the authentication and
/// postage ones, the token ones, --tag); milter: mmilter's wording and --unknown quarantine.
void add_admission_options(CLI::App& app, ProxyOptions& opt, bool milter);

/// The admission settings of opt (with the config file): everything but where mail goes and the SMTP limits;
/// milter: mmilter's (--unknown quarantine allowed).
Result<ProxyPolicy> admission_policy_of(const Context& ctx, const ProxyOptions& opt, bool milter);

} // namespace mail
