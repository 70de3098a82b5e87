// mmilter: the admission core inside the MTA (mmilter(8)); --policy: the Postfix policy delegation service.
#include "libmail/tool/cli.hpp"
#include "libmail/tool/policy_cmd.hpp"

#include <CLI/CLI.hpp>

#include <iostream>

int main(int argc, char** argv) {
    mail::CommonOptions common;
    mail::PolicyOptions opt;
    bool policy = false;
    CLI::App app{"mmilter - the mailstamp admission core inside the MTA", "mmilter"};
    mail::add_common_options(app, common);
    mail::add_dns_option(app, common);
    app.add_flag("--policy", policy, "speak Postfix's policy delegation protocol (check_policy_service)");
    mail::add_policy_options(app, opt);
    if (int rc = mail::parse_cli(app, argc, argv); rc >= 0) return rc;
    if (!policy) {
        std::cerr << "mmilter: give --policy (the milter mode is not in this build)\n";
        return 64;
    }
    bool stdin_mode = mail::policy_stdin_mode(opt);
    auto ctx = mail::make_context("mmilter", common, mail::Env{}, mail::LogRole::daemon);
    if (!ctx) return mail::report("mmilter", ctx.error());
    return mail::run_policy(*ctx, opt, stdin_mode);
}
