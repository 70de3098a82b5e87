// mverify: classify incoming mail by postage and whitelist, and mark the verdict.
#include "libmail/tool/cli.hpp"
#include "libmail/tool/verify_cmd.hpp"

#include <CLI/CLI.hpp>

#include <iostream>

int main(int argc, char** argv) {
    mail::fast_crypto_init();
    mail::CommonOptions common;
    mail::VerifyOptions opt;
    CLI::App app{"mverify - verdicts on incoming mail", "mverify"};
    mail::add_common_options(app, common);
    mail::add_dns_option(app, common);
    app.add_option("--sender", opt.sender, "the envelope sender ('' or <> for a bounce); default: Return-Path");
    app.add_option("--rcpt", opt.rcpts, "an envelope recipient (repeatable); default: X-Original-To, Delivered-To, To/Cc");
    app.add_option("--min-bits", opt.min_bits, "hashcash bits required (default 20)");
    app.add_option("--authority-key", opt.authority_keys, "a file of trusted stamp authority public keys (repeatable)");
    app.add_option("--authority", opt.authority, "HOST:PORT of the authority's online spend check");
    app.add_option("--authority-timeout", opt.authority_timeout, "give up on the authority after this long (default 5s)");
    app.add_option("--authserv-id", opt.authserv_id, "the name in Authentication-Results (default: the host name)");
    app.add_option("--trusted-forwarder", opt.trusted_forwarders,
                   "a forwarder whose SRS addresses count as the senders they wrap (repeatable)");
    app.add_flag("--trust-upstream", opt.trust_upstream, "take the verdict of our own msmtp-proxy as it is");
    mail::add_switch(app, "tag", opt.tag, "tag the Subject with the category (the default)", "leave the Subject alone");
    app.add_option("--unknown", opt.unknown, "unknown mail: mark (deliver tagged, default) or reject (exit 69)");
    mail::add_auth_options(app, opt.auth, true);
    app.add_option("--max-size", opt.max_size, "largest message taken, e.g. 64M (default)");
    mail::SpfCommandOptions spf_opt;
    auto* spf = mail::add_spf_command(app, spf_opt);
    mail::AuthCommandOptions auth_opt;
    CLI::App* auth = mail::add_auth_command(app, auth_opt, common);
    if (int rc = mail::parse_cli(app, argc, argv); rc >= 0) return rc;
    if (spf->parsed() && spf_opt.dns) common.dns = spf_opt.dns;  // `mverify spf --dns` as `mverify --dns`
    auto ctx = mail::make_context("mverify", common);
    if (!ctx) return mail::report("mverify", ctx.error());
    if (spf->parsed()) return mail::run_verify_spf(*ctx, spf_opt, std::cout, std::cerr);
    if (*auth) return mail::run_auth(*ctx, auth_opt, std::cin, std::cout, std::cerr);
    return mail::run_verify(*ctx, opt, std::cin, std::cout, std::cerr);
}
