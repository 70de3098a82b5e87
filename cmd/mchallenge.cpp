// mchallenge: hold mail from unknown senders and ask them to confirm (mchallenge(1)).
#include "libmail/tool/challenge_cmd.hpp"
#include "libmail/tool/cli.hpp"

#include <CLI/CLI.hpp>

#include <iostream>

int main(int argc, char** argv) {
    mail::CommonOptions common;
    mail::ChallengeOptions opt;
    CLI::App app{"mchallenge - challenge/response with a pending queue", "mchallenge"};
    mail::add_common_options(app, common);
    mail::add_dns_option(app, common);
    app.add_option("--sender", opt.sender, "the envelope sender ('' or <> for a bounce); default: Return-Path");
    app.add_option("--rcpt", opt.rcpts, "an envelope recipient (repeatable); default: X-Original-To, Delivered-To, To/Cc");
    mail::add_auth_options(app, opt.auth, true);
    app.add_option("--trusted-forwarder", opt.trusted_forwarders,
                   "a forwarder whose SRS addresses count as the senders they wrap (repeatable)");
    app.add_flag("--trust-upstream", opt.trust_upstream, "take the verdict of our own msmtp-proxy as it is");
    app.add_option("--deliver", opt.deliver, "where mail that gets in goes: maildir:PATH, sendmail[:/PATH], lmtp:HOST:PORT, lmtp:unix:/PATH or pipe:/PROGRAM ARGS");
    app.add_option("--relay", opt.relay, "HOST:PORT to send challenges through (default: --sendmail)");
    app.add_option("--sendmail", opt.sendmail, "sendmail program for challenges (default /usr/sbin/sendmail)");
    app.add_option("--hold-dir", opt.hold_dir, "where held messages are kept (default: held/ beside the store)");
    app.add_option("--hold-time", opt.hold_time, "how long mail is held (default 14d)");
    app.add_option("--quota", opt.quota, "challenges per sender a day (default 3)");
    app.add_option("--template", opt.template_file, "the challenge text (default: share/mailstamp/challenge.txt)");
    app.add_option("--hostname", opt.hostname, "the host name in challenge Message-IDs (default: this host's)");
    app.add_option("--max-size", opt.max_size, "largest message taken, e.g. 64M (default)");
    mail::add_switch(app, "tag", opt.tag, "tag the Subject with the category (the default)", "leave the Subject alone");

    auto* list = app.add_subcommand("list", "the held queue");
    list->add_flag("--json", opt.json, "as a JSON array");
    list->add_option("--older", opt.older, "only mail held longer than this (e.g. 2d)");
    list->add_option("--sender", opt.list_sender, "only mail from this sender");
    list->add_flag("--all", opt.all, "ended rows too");
    auto* show = app.add_subcommand("show", "one held message: its record and its header");
    show->add_option("id", opt.ids)->required()->expected(1);
    for (const char* c : {"release", "delete", "whitelist"}) {
        std::string help = std::string(c) == "release"  ? "deliver held messages now (IDs, or - for stdin)"
                           : std::string(c) == "delete" ? "drop held messages (IDs, or - for stdin)"
                                                        : "whitelist senders (IDs of their held mail, or addresses) and release all their held mail";
        app.add_subcommand(c, help)->add_option("ids", opt.ids)->required();
    }
    auto* expire = app.add_subcommand("expire", "expire old mail, purge deletable mail, retry challenges");
    expire->add_option("--after", opt.after, "hold time to apply (default: --hold-time)");
    auto* digest = app.add_subcommand("digest", "mail each recipient a list of what is held for them, with release addresses");
    digest->add_option("--to", opt.digest_to, "only to this recipient");
    digest->add_option("--since", opt.since, "only mail held within this time (e.g. 1d)");
    app.add_subcommand("bounce", "say what the non-delivery notice on stdin reports");

    if (int rc = mail::parse_cli(app, argc, argv); rc >= 0) return rc;
    for (auto* sub : app.get_subcommands()) opt.command = sub->get_name();
    auto ctx = mail::make_context("mchallenge", common);
    if (!ctx) return mail::report("mchallenge", ctx.error());
    return mail::run_challenge(*ctx, opt, std::cin, std::cout, std::cerr);
}
