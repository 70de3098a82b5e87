// mverify's job behind cmd/mverify.cpp: verdicts on incoming mail (mverify(1)).
#pragma once
#include "libmail/app/auth_setup.hpp"
#include "libmail/app/settings.hpp"
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
    AuthOptions auth;                             ///< the client, trusted relays, authserv-ids, ARC sealers
};

/// `mverify spf`'s options (mverify(1) SPF).
struct SpfCommandOptions {
    std::string ip;                  ///< --ip: the client address
    std::string helo;                ///< --helo: the HELO/EHLO name
    std::string sender;              ///< --sender: MAIL FROM ("" for the null sender)
    std::optional<std::string> dns;  ///< --dns HOST:PORT[,...]; main() hands it to CommonOptions::dns
};

/// Adds the `spf` subcommand to mverify's app, bound to opt; returns it (parsed() says whether it ran).
CLI::App* add_spf_command(CLI::App& app, SpfCommandOptions& opt);

/// `mverify spf`: SPF check_host() for the MAIL FROM identity (postmaster@HELO for the null sender), like
/// spfquery: the result word on the first line of out, then the explanation or problem when there is one.
/// The resolver is ctx.resolver() (--dns, MAILSTAMP_DNS, config dns, /etc/resolv.conf). Exit 0 whatever the
/// result; 64 for a bad --ip, --helo or --sender (a bad --dns is make_context's 64).
int run_verify_spf(Context& ctx, const SpfCommandOptions& opt, std::ostream& out, std::ostream& err);

/// Classifies the message on in and writes it, with its verdict, to out; returns the exit code
/// (0 delivered, 69 rejected by --unknown reject, 75 on any internal failure with nothing written).
int run_verify(Context& ctx, const VerifyOptions& opt, std::istream& in, std::ostream& out, std::ostream& err);

// ---- mverify auth: the authentication results of one message (mverify(1) AUTH) ----

/// mverify auth's options.
struct AuthCommandOptions {
    std::optional<std::string> ip;       ///< the SMTP client; absent: from the Received fields
    std::optional<std::string> helo;
    std::optional<std::string> sender;   ///< the envelope sender; absent: Return-Path
    std::vector<std::string> trusted_relays;
    std::vector<std::string> trusted_authserv_ids;
    std::vector<std::string> trusted_arc_sealers;
};

/// Adds the `auth` subcommand to mverify's app, bound to opt (and its --dns to common.dns); the subcommand
/// (given when *sub is true). DNS goes through Context::resolver().
CLI::App* add_auth_command(CLI::App& app, AuthCommandOptions& opt, CommonOptions& common);

/// Reads a message on in and prints its RFC 8601 method results, one per line (spf, spf for HELO, dkim per
/// signature, dmarc, arc); 0 when printed (whatever the results), 64 usage, 65 a bad message, 78 no resolver.
int run_auth(Context& ctx, const AuthCommandOptions& opt, std::istream& in, std::ostream& out, std::ostream& err);

} // namespace mail
