// mailstamp-store: copy a whole store between engines (SQLite, PostgreSQL); show what a store holds.
#include "libmail/tool/cli.hpp"
#include "libmail/tool/store_cmd.hpp"

#include <CLI/CLI.hpp>

#include <iostream>

int main(int argc, char** argv) {
    mail::CommonOptions common;
    mail::StoreCmdOptions opt;
    CLI::App app{"mailstamp-store - copy and inspect stores", "mailstamp-store"};
    mail::add_common_options(app, common);
    app.require_subcommand(1);
    app.fallthrough();  // --db and the other common options after the command too

    auto* copy = app.add_subcommand("copy", "copy every table of the store FROM into the store TO, then compare");
    copy->add_option("--batch", opt.batch, "rows per write transaction (default 1000)");
    copy->add_option("from", opt.from, "the store to copy: a file or a postgresql:// URI")->required();
    copy->add_option("to", opt.to, "the store to copy into (created when missing)")->required();

    app.add_subcommand("info", "the engine, the schema version and the rows of each table of the store (--db)");

    if (int rc = mail::parse_cli(app, argc, argv); rc >= 0) return rc;
    for (auto* sub : app.get_subcommands()) opt.command = sub->get_name();

    auto ctx = mail::make_context("mailstamp-store", common);
    if (!ctx) return mail::report("mailstamp-store", ctx.error());
    return mail::run_store_cmd(*ctx, opt, std::cout, std::cerr);
}
