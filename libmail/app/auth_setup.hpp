// What the front ends share for sender authentication (issue 14): the settings (trusted relays, trusted
// authserv-ids, trusted ARC sealers; the client given on the command line), the one resolver of the process,
// and a filter's whole check of one message (the client, then auth::Checker over the header and the body).
#pragma once
#include "libmail/app/context.hpp"
#include "libmail/auth/auth.hpp"
#include "libmail/io/dns.hpp"
#include "libmail/mail/message.hpp"
#include "libmail/mail/spool.hpp"

#include <optional>
#include <string>
#include <vector>

namespace mail {

/// The command-line options of sender authentication (mverify, mchallenge, msmtp-proxy).
struct AuthOptions {
    std::optional<std::string> client_ip;  ///< --client-ip: the SMTP client's address (Postfix ${client_address})
    std::optional<std::string> helo;       ///< --helo: its HELO name (${client_helo})
    std::vector<std::string> trusted_relays;        ///< --trusted-relay (repeatable)
    std::vector<std::string> trusted_authserv_ids;  ///< --trusted-authserv-id (repeatable)
    std::vector<std::string> trusted_arc_sealers;   ///< --trusted-arc-sealer (repeatable)
};

/// The settings of auth/: each list is the command line's values, else every config value of its key
/// (trusted-relay, trusted-authserv-id, trusted-arc-sealer; [program], else [common]); receiver is our host
/// name. Kind usage for a bad value from the command line, config from the file.
Result<auth::Settings> resolve_auth_settings(const Context& ctx, const AuthOptions& opt, const std::string& receiver);

/// The resolver every lookup of this program goes through: ctx.resolver() (--dns / MAILSTAMP_DNS / config
/// `dns`, else /etc/resolv.conf's; cached for daemon contexts). The one place to switch it.
Result<dns::Resolver*> process_resolver(const Context& ctx, bool daemon = false);

/// A filter's check of msg (its header read, our own verdict fields stripped): the client from the options,
/// else from the topmost Received field of a trusted relay, else none (SPF not evaluated); the body is read
/// into body (for writing out later) and through the DKIM check, and its relaxed hash (postage) returned in
/// body_hash.
Result<auth::Results> check_message(dns::Resolver& resolver, const auth::Settings& settings, const AuthOptions& opt,
                                    MessageReader& msg, std::string_view mail_from, Spool& body,
                                    std::string& body_hash);

/// The same for a message already spooled whole (mchallenge): fields its header section, stripped, and the body
/// from offset body_at of raw.
Result<auth::Results> check_spooled(dns::Resolver& resolver, const auth::Settings& settings, const AuthOptions& opt,
                                    const std::vector<HeaderField>& fields, std::string_view mail_from,
                                    const Spool& raw, std::size_t body_at);

} // namespace mail
