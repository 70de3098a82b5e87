// mmilter: the admission core inside Postfix or Sendmail (mmilter(8)): a milter, or with --policy the Postfix
// policy delegation service. The two modes take different options, so --policy picks the parser.
#include "libmail/tool/cli.hpp"
#include "libmail/tool/milter_cmd.hpp"
#include "libmail/tool/policy_cmd.hpp"

#include <CLI/CLI.hpp>

#include <string_view>

namespace {

int policy_main(int argc, char** argv) {
    mail::CommonOptions common;
    mail::PolicyOptions opt;
    bool policy = false;
    CLI::App app{"mmilter --policy - Postfix policy service: whitelists and token addresses at RCPT", "mmilter"};
    mail::add_common_options(app, common);
    mail::add_dns_option(app, common);
    app.add_flag("--policy", policy, "speak Postfix's policy delegation protocol (check_policy_service)");
    mail::add_policy_options(app, opt);
    if (int rc = mail::parse_cli(app, argc, argv); rc >= 0) return rc;
    bool stdin_mode = mail::policy_stdin_mode(opt);
    auto ctx = mail::make_context("mmilter", common, mail::Env{}, mail::LogRole::daemon);
    if (!ctx) return mail::report("mmilter", ctx.error());
    return mail::run_policy(*ctx, opt, stdin_mode);
}

int milter_main(int argc, char** argv) {
    mail::CommonOptions common;
    mail::MilterOptions opt;
    CLI::App app{"mmilter - milter for Postfix and Sendmail: whitelists, token addresses and postage\n"
                 "(mmilter --policy --help: the Postfix policy service)",
                 "mmilter"};
    mail::add_common_options(app, common);
    mail::add_dns_option(app, common);
    mail::add_milter_options(app, opt);
    if (int rc = mail::parse_cli(app, argc, argv); rc >= 0) return rc;
    auto ctx = mail::make_context("mmilter", common, mail::Env{}, mail::LogRole::daemon);
    if (!ctx) return mail::report("mmilter", ctx.error());
    return mail::run_milter(*ctx, opt);
}

} // namespace

int main(int argc, char** argv) {
    for (int i = 1; i < argc; ++i)
        if (std::string_view{argv[i]} == "--policy") return policy_main(argc, argv);
    return milter_main(argc, argv);
}
