// mwhitelist: manage the whitelist and the protected domains from the shell.
#include "libmail/tool/cli.hpp"
#include "libmail/tool/whitelist_cmd.hpp"

#include <CLI/CLI.hpp>

#include <iostream>

int main(int argc, char** argv) {
    mail::CommonOptions common;
    mail::WhitelistOptions opt;
    CLI::App app{"mwhitelist - manage the mailstamp whitelist", "mwhitelist"};
    mail::add_common_options(app, common);
    app.require_subcommand(1);

    auto* add = app.add_subcommand("add", "add sender entries, recipients, or the recipients of a message");
    add->add_option("--note", opt.note, "a note kept with each entry");
    add->add_option("--for", opt.scope, "scope: a protected domain or one recipient address");
    add->add_option("--auth", opt.auth,
                    "what a hit needs: auto (default; a pass when the domain publishes SPF, DMARC or signs), "
                    "spf, dkim, dmarc, or none (no authentication)")
        ->check(CLI::IsMember({"auto", "spf", "dkim", "dmarc", "none"}));
    add->add_flag("--recipient", opt.recipient, "the arguments are unconditional recipients");
    add->add_flag("--from-message", opt.from_message, "whitelist every To, Cc and Bcc address of the message on stdin");
    add->add_option("entries", opt.args, "user@dom, dom, @dom or .dom");

    auto* remove = app.add_subcommand("remove", "remove entries");
    remove->add_option("--for", opt.scope, "the scope the entries were added with");
    remove->add_flag("--recipient", opt.recipient, "the arguments are unconditional recipients");
    remove->add_option("entries", opt.args)->required();

    auto* check = app.add_subcommand("check", "exit 0 and print the entry that lets SENDER in, or exit 1");
    check->add_option("--trusted-forwarder", opt.trusted_forwarders,
                      "a forwarder whose SRS addresses count as the senders they wrap (repeatable)")
        ->allow_extra_args(false);
    check->add_option("sender", opt.sender)->required();
    check->add_option("recipient", opt.rcpt);

    auto* list = app.add_subcommand("list", "list entries with kind, scope, created, hits, last hit, source, note");
    list->add_flag("--json", opt.json, "one JSON array");

    auto* import = app.add_subcommand("import", "add entries from stdin in one transaction");
    import->add_option("--format", opt.format, "lines or csv")->check(CLI::IsMember({"lines", "csv"}));
    import->add_option("file", opt.file, "read FILE instead of stdin");

    auto* exp = app.add_subcommand("export", "write every entry to stdout");
    exp->add_option("--format", opt.format, "lines or csv")->check(CLI::IsMember({"lines", "csv"}));

    app.add_subcommand("stats", "counts by kind and source");

    auto* domain = app.add_subcommand("domain", "the protected domains");
    domain->require_subcommand(1);
    auto* dadd = domain->add_subcommand("add", "protect domains");
    dadd->add_option("domains", opt.args)->required();
    auto* drem = domain->add_subcommand("remove", "stop protecting domains");
    drem->add_option("domains", opt.args)->required();
    domain->add_subcommand("list", "list the protected domains");

    if (int rc = mail::parse_cli(app, argc, argv); rc >= 0) return rc;

    if (add->parsed()) opt.command = "add";
    else if (remove->parsed()) opt.command = "remove";
    else if (check->parsed()) opt.command = "check";
    else if (list->parsed()) opt.command = "list";
    else if (import->parsed()) opt.command = "import";
    else if (exp->parsed()) opt.command = "export";
    else if (dadd->parsed()) opt.command = "domain-add";
    else if (drem->parsed()) opt.command = "domain-remove";
    else if (domain->parsed()) opt.command = "domain-list";
    else opt.command = "stats";

    auto ctx = mail::make_context("mwhitelist", common);
    if (!ctx) return mail::report("mwhitelist", ctx.error());
    return mail::run_whitelist(*ctx, opt, std::cin, std::cout, std::cerr);
}
