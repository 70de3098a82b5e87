// Command-line parsing every program's main() shares: see cli.hpp.
#include "libmail/tool/cli.hpp"

#include <CLI/CLI.hpp>

namespace mail {

void add_common_options(CLI::App& app, CommonOptions& opt) {
    app.set_version_flag("--version", std::string(app.get_name()) + " " MAILSTAMP_VERSION);
    app.add_option("--config", opt.config, "config file (default: $MAILSTAMP_CONFIG, ~/.config/mailstamp/config)");
    app.add_option("--db", opt.db, "the store (default: $MAILSTAMP_DB, config db, ~/.local/share/mailstamp/store.db)");
    app.add_option("--log", opt.log, "where logs go: syslog, stderr, none, or a file");
    app.add_option("--log-level", opt.log_level, "err, warning, notice, info or debug");
}

void add_dns_option(CLI::App& app, CommonOptions& opt) {
    opt.uses_dns = true;
    app.add_option("--dns", opt.dns,
                   "HOST:PORT[,HOST:PORT]: the DNS servers to ask (default: $MAILSTAMP_DNS, config dns, /etc/resolv.conf)");
}

void add_switch(CLI::App& app, const std::string& name, std::optional<bool>& target, const std::string& yes_help,
                const std::string& no_help) {
    auto* yes = app.add_flag_callback("--" + name, [&target] { target = true; }, yes_help);
    app.add_flag_callback("--no-" + name, [&target] { target = false; }, no_help)->excludes(yes);
}

int parse_cli(CLI::App& app, int argc, char** argv) {
    try {
        app.parse(argc, argv);
    } catch (const CLI::CallForHelp& e) {
        return app.exit(e);
    } catch (const CLI::CallForAllHelp& e) {
        return app.exit(e);
    } catch (const CLI::CallForVersion& e) {
        return app.exit(e);
    } catch (const CLI::ParseError& e) {
        return report(app.get_name(), Error{ErrorKind::usage, std::string(e.what()) + " (see --help)"});
    }
    return -1;
}

void add_auth_options(CLI::App& app, AuthOptions& opt, bool client) {
    if (client) {
        app.add_option("--client-ip", opt.client_ip, "the SMTP client's address, for SPF (Postfix: ${client_address})");
        app.add_option("--helo", opt.helo, "the SMTP client's HELO name, for SPF (Postfix: ${client_helo})");
    }
    app.add_option("--trusted-relay", opt.trusted_relays,
                   "an address or CIDR block whose Received fields name the client (repeatable; config trusted-relay)");
    app.add_option("--trusted-authserv-id", opt.trusted_authserv_ids,
                   "an authserv-id whose Authentication-Results are taken as they are (repeatable)");
    app.add_option("--trusted-arc-sealer", opt.trusted_arc_sealers,
                   "a domain whose ARC seals count, such as a mailing list (repeatable)");
}

} // namespace mail
