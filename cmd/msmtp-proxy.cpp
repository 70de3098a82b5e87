// msmtp-proxy: the SMTP front end for port 25 and submission (msmtp-proxy(8)).
#include "libmail/tool/cli.hpp"
#include "libmail/tool/proxy_cmd.hpp"

#include <CLI/CLI.hpp>

#include <iostream>

int main(int argc, char** argv) {
    mail::CommonOptions common;
    mail::ProxyOptions opt;
    CLI::App app{"msmtp-proxy - SMTP front end: whitelists, token addresses and postage at RCPT time", "msmtp-proxy"};
    mail::add_common_options(app, common);
    mail::add_dns_option(app, common);
    mail::add_smtp_daemon_options(app, opt);
    app.add_option("--submission-listen", opt.submission_listen, "ADDR:PORT for submission: AUTH required (repeatable)");
    app.add_flag("--submission", opt.submission, "every session is a submission session (AUTH required)");
    app.add_option("--relay", opt.relay, "HOST:PORT of the real MTA that takes accepted mail");
    app.add_option("--maildir", opt.maildir, "deliver accepted mail into this Maildir");
    app.add_option("--pickup", opt.pickup, "deliver accepted mail as .eml files into this directory");
    app.add_option("--deliver", opt.deliver,
                   "where accepted mail goes: smtp:HOST:PORT, lmtp:HOST:PORT, lmtp:unix:/PATH, maildir:DIR, pickup:DIR, "
                   "sendmail[:/PATH] or pipe:/PROGRAM ARGS");
    app.add_option("--verify-recipients", opt.verify_recipients,
                   "before a token is issued: probe (ask the downstream, cached), map:FILE (addresses and @domains) "
                   "or none (the default)");
    mail::add_admission_options(app, opt, false);
    app.add_option("--banner", opt.banner, "append the recruitment banner in FILE to outgoing mail");
    app.add_option("--smarthost", opt.smarthost, "HOST:PORT for outgoing mail of authenticated users (default: where incoming mail goes)");
    mail::add_switch(app, "batv", opt.batv, "sign outgoing senders (BATV) and refuse bounces to unsigned ones",
                     "no BATV (the default)");
    app.add_option("--xclient", opt.xclient,
                   "hand the client to the relay with XCLIENT: auto (default: when offered), yes (required), no");
    app.add_option("--relay-proxy-protocol", opt.relay_proxy_protocol,
                   "start each relay connection with a PROXY protocol header: none (default), v2");
    app.add_option("--relay-timeout", opt.relay_timeout, "wait this long for the downstream server (default 2m)");
    app.add_option("--auth-failures", opt.auth_failures,
                   "failed AUTH attempts from one address that lock it out for the window (default 10; 0: no limit)");
    app.add_option("--auth-window", opt.auth_window, "the window failed AUTH attempts are counted in (default 15m)");
    app.add_option("--max-auth-hashes", opt.max_auth_hashes, "password hashes run at once, 16 MiB each (default 4)");
    mail::add_switch(app, "source", opt.source,
                     "SOURCE/GET on this port: take notices, fetch by GET through the same admission, serve GET "
                     "for held mail (msourced(8))",
                     "no SOURCE/GET (the default)");
    mail::add_source_options(app, opt.source_settings, false);

    auto* user = app.add_subcommand("user", "SMTP AUTH users: add, passwd, senders, remove, list");
    user->require_subcommand(1);
    auto* add = user->add_subcommand("add", "add NAME; the password is one line on stdin");
    add->add_option("name", opt.user_name)->required();
    add->add_option("--sender", opt.user_senders,
                    "an address (or @domain) NAME may send as (repeatable); default: NAME when it is an address")
        ->allow_extra_args(false);
    auto* senders = user->add_subcommand("senders", "print NAME's senders, or set them with --sender or --default");
    senders->add_option("name", opt.user_name)->required();
    senders->add_option("--sender", opt.user_senders, "an address (or @domain) NAME may send as (repeatable)")
        ->allow_extra_args(false);
    senders->add_flag("--default", opt.user_default, "back to the default: NAME when it is an address");
    auto* passwd = user->add_subcommand("passwd", "change NAME's password (one line on stdin)");
    passwd->add_option("name", opt.user_name)->required();
    auto* remove = user->add_subcommand("remove", "remove NAME");
    remove->add_option("name", opt.user_name)->required();
    auto* list = user->add_subcommand("list", "list the users");
    list->add_flag("--json", opt.json, "as a JSON array");

    if (int rc = mail::parse_cli(app, argc, argv); rc >= 0) return rc;
    for (auto* sub : user->get_subcommands()) opt.command = sub->get_name();

    bool inetd = mail::proxy_inetd_mode(opt);
    auto role = opt.command.empty() ? mail::LogRole::daemon : mail::LogRole::command;
    auto ctx = mail::make_context("msmtp-proxy", common, mail::Env{}, role);
    if (!ctx) return inetd ? mail::inetd_start_failure("msmtp-proxy", ctx.error()) : mail::report("msmtp-proxy", ctx.error());
    return mail::run_proxy(*ctx, opt, inetd, std::cin, std::cout, std::cerr);
}
