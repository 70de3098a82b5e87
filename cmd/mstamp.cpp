// mstamp: put postage on an outgoing message (hashcash, one stamp per recipient).
#include "libmail/cli.hpp"
#include "libmail/stamp_cmd.hpp"

#include <CLI/CLI.hpp>

#include <iostream>

int main(int argc, char** argv) {
    mail::CommonOptions common;
    mail::StampOptions opt;
    CLI::App app{"mstamp - postage for outgoing mail", "mstamp"};
    mail::add_common_options(app, common);
    app.add_option("--sender", opt.sender, "the envelope sender");
    app.add_option("--rcpt", opt.rcpts, "an envelope recipient (repeatable); default: To, Cc and Bcc");
    bool hashcash = true;
    app.add_flag("--hashcash", hashcash, "hashcash stamps (the default and, so far, the only kind)");
    app.add_option("--bits", opt.bits, "hashcash bits to mint (default 20)");
    app.add_option("--threads", opt.threads, "minting threads (default: every core)");
    if (int rc = mail::parse_cli(app, argc, argv); rc >= 0) return rc;
    auto ctx = mail::make_context("mstamp", common);
    if (!ctx) return mail::report("mstamp", ctx.error());
    return mail::run_stamp(*ctx, opt, std::cin, std::cout, std::cerr);
}
