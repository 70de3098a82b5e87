// What every program shares once its options are parsed: the resolved
// settings, the store (and a pool of store connections for daemons), the
// logger, and one-line diagnostics. Parsing the options is tool/cli.hpp.
#pragma once
#include "libmail/base/config.hpp"
#include "libmail/base/error.hpp"
#include "libmail/base/log.hpp"
#include "libmail/io/dns.hpp"
#include "libmail/io/net.hpp"

#include <functional>
#include "libmail/store/store.hpp"

#include <initializer_list>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace mail {

/// For filters that run once per message: initialises OpenSSL without reading openssl.cnf or registering
/// every legacy algorithm, a measurable share of their start-up. Call first in main(); a program that
/// speaks TLS must not, because the system's TLS policy lives in that file.
void fast_crypto_init();

/// Options every program takes.
struct CommonOptions {
    std::optional<std::string> config, db, log, log_level;
    /// --dns HOST:PORT[,HOST:PORT] (tool/cli.hpp add_dns_option); the program looks up DNS when uses_dns.
    std::optional<std::string> dns;
    /// Set by add_dns_option: make_context resolves and checks the DNS setting (a bad one is an error there).
    bool uses_dns = false;
};

/// What a command does with the store, which decides whether a missing store is created (mailstamp-store(5)).
enum class StoreUse {
    existing,  ///< readers and filters (even those that write into it): a missing store is exit 75, nothing created
    create,    ///< write commands and daemons: a missing store file is created, never its directory (but the
               ///< default per-user path gets its own mailstamp/ directory)
};

/// StoreUse::create when command is one of writes, else StoreUse::existing.
StoreUse store_use(std::string_view command, std::initializer_list<std::string_view> writes);

/// A program's resolved settings, its store location and its logger.
class Context {
public:
    Context(std::string program, Settings settings, std::string db_path, int busy_ms, std::unique_ptr<Logger> logger);

    std::string program;

    /// The program's config value for key ([program], then [common]).
    std::optional<std::string> setting(std::string_view key) const;
    /// The resolved settings (command line, environment, file).
    const Settings& settings() const { return settings_; }
    /// Where the store is.
    const std::string& db_path() const { return db_path_; }
    /// Opens the store with the configured busy timeout; creates it only for StoreUse::create.
    Result<std::unique_ptr<Store>> open_store(StoreUse use = StoreUse::existing) const;
    /// True when the store path is the default one (no --db, MAILSTAMP_DB or config db).
    bool default_db = false;
    /// Logs one info event.
    void log_event(std::string_view event, std::initializer_list<LogField> fields) noexcept;
    /// The logger.
    Logger& logger() { return *logger_; }

    /// The DNS resolver, made on first use from dns_options(): the --dns servers, else MAILSTAMP_DNS, else
    /// config `dns`, else /etc/resolv.conf; a bounded TTL cache for daemons, none for filters. When no
    /// resolver can be made, every answer is a temporary failure saying why. Safe from several threads.
    dns::Resolver& resolver() const;
    /// Replaces the resolver (tests, or a program with its own).
    void set_resolver(std::unique_ptr<dns::Resolver> r);
    /// How resolver() is made (make_context fills it in via resolve_dns_options when the program uses DNS).
    dns::ResolverOptions dns_options;

private:
    struct DnsState {
        std::mutex m;
        std::unique_ptr<dns::Resolver> resolver;
    };
    std::unique_ptr<DnsState> dns_ = std::make_unique<DnsState>();
    Settings settings_;
    std::string db_path_;
    int busy_ms_;
    std::unique_ptr<Logger> logger_;
};

/// Store connections kept for the session threads of one process: opening one per session costs more
/// than the session's lookups.
class StorePool {
public:
    explicit StorePool(const Context& ctx, StoreUse use = StoreUse::existing) : ctx_(ctx), use_(use) {}
    /// A kept connection, or a new one.
    Result<std::unique_ptr<Store>> take();
    /// Keeps s for the next taker (up to 32).
    void give(std::unique_ptr<Store> s);

private:
    const Context& ctx_;
    StoreUse use_;
    std::mutex m_;
    std::vector<std::unique_ptr<Store>> free_;
};

/// What kind of program a Context is for, which decides where its "auto" log goes (mailstamp(7) LOGGING).
enum class LogRole {
    command,  ///< a filter or a command: on a terminal, only warnings and errors unless --log-level (or the
              ///< config's log-level) asks for more -- the result printed is not repeated as a log line
    daemon,   ///< a daemon (listening, or on inetd's socket): on a terminal, or with no syslog socket, the
              ///< log goes to stderr -- unless stderr is the client's socket (stderr_is_peer())
};

/// Resolves config, store path and logger for program; config errors are kind config/noinput.
Result<Context> make_context(std::string_view program, const CommonOptions& opt, const Env& env = Env{},
                             LogRole role = LogRole::command);

/// Prints "program: text" (one line, control characters replaced) on stderr; returns the sysexits code.
int report(std::string_view program, const Error& e);
/// Prints "program: context: text" on stderr; returns the sysexits code.
int report(std::string_view program, std::string_view context, const Error& e);

/// Runs a filter's body (mverify, mstamp) so that no failure loses mail: an exception or any error but a usage,
/// configuration, input or message error is reported and becomes 75, "try again later", for the MTA.
int run_filter(std::string_view program, const std::function<Result<int>()>& body);

} // namespace mail
