// msourced: the SOURCE/GET reverse-delivery extension (msourced(8)).
#include "libmail/tool/cli.hpp"
#include "libmail/tool/source_cmd.hpp"

#include <CLI/CLI.hpp>

#include <iostream>

int main(int argc, char** argv) {
    mail::CommonOptions common;
    mail::SourceOptions opt;
    CLI::App app{"msourced - SOURCE/GET reverse delivery: mail fetched back from the sender domain's MX", "msourced"};
    mail::add_common_options(app, common);
    mail::add_dns_option(app, common);
    mail::add_smtp_daemon_options(app, opt);
    app.add_option("--mx-map", opt.mx_map, "DOMAIN=HOST:PORT: where DOMAIN's mail goes, instead of its MX records (repeatable)");
    app.add_option("--deliver", opt.deliver, "where received mail goes: maildir:PATH, pickup:PATH, lmtp:HOST:PORT, lmtp:unix:/PATH, pipe:/PROGRAM ARGS or sendmail[:/PATH]");
    app.add_option("--relay", opt.relay, "HOST:PORT of the MTA that takes received mail");
    app.add_option("--fetch-interval", opt.fetch_interval, "time between fetch passes while serving, e.g. 60 or 5m (default 60s; 0: none)");
    app.add_option("--hold-dir", opt.hold_dir, "where held outgoing messages are kept (default: beside the store, source/)");
    app.add_option("--hold-time", opt.hold_time, "how long a held message is served to GET (default 7d)");
    app.add_option("--partial-time", opt.partial_time, "how long a partial message is fetched for (default 5d)");
    app.add_option("--max-gets", opt.max_gets, "GETs served per id (default 5)");
    app.add_option("--get-limit", opt.get_limit, "GET and SOURCE commands per client address per window (default 600)");
    app.add_option("--fetch-limit", opt.fetch_limit, "GETs sent per sender domain per window (default 120)");
    app.add_option("--rate-window", opt.rate_window, "the window of --get-limit and --fetch-limit (default 60s)");
    app.add_option("--retry", opt.retry, "first wait after a failed notice or fetch, doubled each time (default 5m)");
    app.add_option("--retry-max", opt.retry_max, "longest wait between tries (default 4h)");
    app.add_option("--on-expiry", opt.on_expiry, "a partial message never fetched: drop (default) or notify (a notice marked unverified)");
    app.add_option("--timeout", opt.timeout, "DNS, connecting and each reply of a peer (default 60s)");
    app.add_option("--mx-port", opt.mx_port, "the port of hosts found in DNS (default 25)");

    auto* send = app.add_subcommand("send", "hold the message on stdin and notify each recipient domain's MX");
    send->add_option("--from", opt.from, "the envelope sender")->required();
    send->add_option("--rcpt", opt.rcpts, "a recipient (repeatable)")->required();
    app.add_subcommand("fetch", "one pass: due notices out, due partial messages fetched and delivered");
    auto* queue = app.add_subcommand("queue", "list held (outgoing) and partial (incoming) messages");
    queue->add_flag("--json", opt.json, "as a JSON array");
    app.add_subcommand("expire", "remove held and partial messages past their lifetime");
    app.require_subcommand(0, 1);

    if (int rc = mail::parse_cli(app, argc, argv); rc >= 0) return rc;
    for (auto* sub : app.get_subcommands()) opt.command = sub->get_name();

    bool inetd = mail::source_inetd_mode(opt);
    auto role = opt.command.empty() ? mail::LogRole::daemon : mail::LogRole::command;
    auto ctx = mail::make_context("msourced", common, mail::Env{}, role);
    if (!ctx) return inetd ? mail::inetd_start_failure("msourced", ctx.error()) : mail::report("msourced", ctx.error());
    return mail::run_source(*ctx, opt, inetd, std::cin, std::cout, std::cerr);
}
