// mstamp: put postage on outgoing mail; manage stamp books; run a stamp authority.
#include "libmail/tool/book_cmd.hpp"
#include "libmail/tool/cli.hpp"
#include "libmail/tool/stamp_cmd.hpp"

#include <CLI/CLI.hpp>

#include <iostream>

int main(int argc, char** argv) {
    mail::fast_crypto_init();
    mail::CommonOptions common;
    mail::StampOptions opt;
    mail::BookOptions bopt;
    CLI::App app{"mstamp - postage for outgoing mail", "mstamp"};
    mail::add_common_options(app, common);
    app.add_option("--sender", opt.sender, "the envelope sender (prices timed stamps; default: From)");
    app.add_option("--rcpt", opt.rcpts, "an envelope recipient (repeatable); default: To, Cc and Bcc");
    bool hashcash = false, timed = false, paid = false;
    auto* h = app.add_flag("--hashcash", hashcash, "hashcash stamps (the default)");
    auto* t = app.add_flag("--timed", timed, "free hashcash stamps whose bits rise with the sender's volume");
    auto* p = app.add_flag("--paid", paid, "signed postage from an imported stamp book");
    h->excludes(t)->excludes(p);
    t->excludes(p);
    app.add_option("--bits", opt.bits, "hashcash bits to mint (default 20)");
    app.add_option("--banner", opt.banner, "append the recruitment banner in FILE");
    app.add_option("--threads", opt.threads, "minting threads (default: every core)");
    app.require_subcommand(0, 1);

    auto* book = app.add_subcommand("book", "the sender's stamp books");
    book->require_subcommand(1);
    book->add_subcommand("keygen", "make the owner key books are issued to; print its public key")
        ->add_flag("--force", bopt.force, "make a new key even if one exists");
    book->add_subcommand("import", "import a stamp book certificate (- for stdin)")
        ->add_option("file", bopt.file)
        ->required();
    book->add_subcommand("balance", "print the stamps left in unexpired books");
    book->add_subcommand("list", "list the books")->add_flag("--json", bopt.json, "as a JSON array");

    auto* auth = app.add_subcommand("authority", "the stamp authority");
    auth->require_subcommand(1);
    auth->add_subcommand("init", "make the authority's key pair")
        ->add_flag("--force", bopt.force, "make a new key even if one exists");
    auth->add_subcommand("pubkey", "print the public key, for mverify --authority-key");
    auto* issue = auth->add_subcommand("issue", "issue a stamp book to an owner");
    issue->add_option("--owner", bopt.owner, "the owner's public key (mstamp book keygen)")->required();
    issue->add_option("--count", bopt.count, "stamps in the book")->required();
    issue->add_option("--expires", bopt.expires, "a date (2027-12-31) or a duration (365d, the default)");
    auto* serve = auth->add_subcommand("serve", "answer online spend checks");
    serve->add_option("--listen", bopt.listen, "HOST:PORT or [IPv6]:PORT (repeatable)")->required();
    serve->add_option("--max-requests", bopt.max_requests, "stop after this many requests (for tests)");

    if (int rc = mail::parse_cli(app, argc, argv); rc >= 0) return rc;
    if (timed) opt.kind = mail::StampKind::timed;
    if (paid) opt.kind = mail::StampKind::paid;
    if (hashcash) opt.kind = mail::StampKind::hashcash;
    auto ctx = mail::make_context("mstamp", common);
    if (!ctx) return mail::report("mstamp", ctx.error());
    for (auto* sub : {book, auth}) {
        if (!sub->parsed()) continue;
        for (auto* cmd : sub->get_subcommands()) bopt.command = cmd->get_name();
        return sub == book ? mail::run_book(*ctx, bopt, std::cin, std::cout, std::cerr)
                           : mail::run_authority(*ctx, bopt, std::cin, std::cout, std::cerr);
    }
    return mail::run_stamp(*ctx, opt, std::cin, std::cout, std::cerr);
}
