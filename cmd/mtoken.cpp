// mtoken: make, check, revoke, list and expire token addresses; rotate secrets.
#include "libmail/tool/cli.hpp"
#include "libmail/tool/token_cmd.hpp"

#include <CLI/CLI.hpp>

#include <iostream>

int main(int argc, char** argv) {
    mail::CommonOptions common;
    mail::TokenOptions opt;
    CLI::App app{"mtoken - token addresses", "mtoken"};
    mail::add_common_options(app, common);
    app.add_option("--delimiter", opt.delimiter, "the local-part delimiter: + (default) or - (qmail)");
    app.require_subcommand(1);

    auto* make = app.add_subcommand("make", "print a token address for RECIPIENT");
    auto* once = make->add_flag("--once", opt.once, "good for one use");
    make->add_flag("--dated", opt.dated, "good until it expires (default)")->excludes(once);
    make->add_option("--ttl", opt.ttl, "lifetime, e.g. 10d, 12h (default 10d)");
    make->add_option("--sender", opt.sender, "bind the token to this sender");
    make->add_option("recipient", opt.address)->required();

    auto* check = app.add_subcommand("check", "exit 0 and print the recipient a token address stands for");
    check->add_option("--sender", opt.sender, "the envelope sender using the token");
    check->add_option("--trusted-forwarder", opt.trusted_forwarders,
                      "a forwarder whose SRS addresses count as the senders they wrap (repeatable)")
        ->allow_extra_args(false);
    check->add_flag("--consume", opt.consume, "mark a one-time token used (atomically)");
    check->add_option("address", opt.address)->required();

    auto* revoke = app.add_subcommand("revoke", "refuse token addresses from now on");
    revoke->add_option("addresses", opt.addresses)->required();

    app.add_subcommand("list", "used and revoked tokens still within their lifetime");
    app.add_subcommand("expire", "purge records of tokens past their expiry");
    app.add_subcommand("rotate", "make a new secret; older tokens stay valid until they expire");

    if (int rc = mail::parse_cli(app, argc, argv); rc >= 0) return rc;
    for (auto* sub : app.get_subcommands()) opt.command = sub->get_name();

    auto ctx = mail::make_context("mtoken", common);
    if (!ctx) return mail::report("mtoken", ctx.error());
    return mail::run_token(*ctx, opt, std::cin, std::cout, std::cerr);
}
