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
    mail::add_source_options(app, opt, true);

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
