// Settings, store and logger of a program: see context.hpp.
#include "libmail/app/context.hpp"

#include "libmail/app/settings.hpp"

#include "libmail/base/limits.hpp"
#include "libmail/base/text.hpp"

#include <openssl/crypto.h>

#include <exception>
#include <iostream>
#include <unistd.h>

namespace mail {


void fast_crypto_init() {
    OPENSSL_init_crypto(OPENSSL_INIT_NO_LOAD_CONFIG | OPENSSL_INIT_NO_ADD_ALL_CIPHERS | OPENSSL_INIT_NO_ADD_ALL_DIGESTS,
                        nullptr);
}

Context::Context(std::string prog, Settings settings, std::string db_path, int busy_ms,
                 std::unique_ptr<Logger> logger)
    : program(std::move(prog)), settings_(std::move(settings)), db_path_(std::move(db_path)), busy_ms_(busy_ms),
      logger_(std::move(logger)) {}

std::optional<std::string> Context::setting(std::string_view key) const {
    return settings_.config().get(program, key);
}

StoreUse store_use(std::string_view command, std::initializer_list<std::string_view> writes) {
    for (auto w : writes)
        if (command == w) return StoreUse::create;
    return StoreUse::existing;
}

Result<std::unique_ptr<Store>> Context::open_store(StoreUse use) const {
    StoreOptions o;
    o.busy_timeout_ms = busy_ms_;
    // A path someone wrote can be mistyped: only its last component is ever created. The default path is
    // ours, and XDG_DATA_HOME's directories may not exist yet on a new account.
    if (use == StoreUse::existing) o.create = StoreCreate::never;
    else o.create = default_db ? StoreCreate::dirs : StoreCreate::file;
    return mail::open_store(db_path_, o);
}

void Context::log_event(std::string_view event, std::initializer_list<LogField> fields) noexcept {
    logger_->info(event, fields);
}

dns::Resolver& Context::resolver() const {
    std::lock_guard<std::mutex> g(dns_->m);
    if (!dns_->resolver) {
        auto r = dns::make_resolver(dns_options);
        if (r) dns_->resolver = std::move(*r);
        else dns_->resolver = dns::make_failing_resolver("no DNS resolver: " + r.error().text);
    }
    return *dns_->resolver;
}

void Context::set_resolver(std::unique_ptr<dns::Resolver> r) {
    std::lock_guard<std::mutex> g(dns_->m);
    dns_->resolver = std::move(r);
}

Result<Context> make_context(std::string_view program, const CommonOptions& opt, const Env& env, LogRole role) {
    auto config = load_config(opt.config, env);
    if (!config) return config.error();
    Settings settings(*config, env, std::string(program));
    auto db = settings.store_path(opt.db);
    if (!db) return db.error();
    if (auto c = check_store_name(*db); !c) return c.error();
    auto busy = settings.duration(std::nullopt, nullptr, "busy-timeout", limits::store_busy_timeout_ms / 1000);
    if (!busy) return busy.error();
    LogOptions lo;
    lo.daemon = role == LogRole::daemon;
    lo.no_stderr = lo.daemon && stderr_is_peer();
    lo.program = std::string(program);
    lo.target = settings.get(opt.log, nullptr, "log", "auto").value;
    auto level_text = settings.get(opt.log_level, nullptr, "log-level", "info");
    auto level = parse_level(level_text.value);
    if (!level)
        return Error{opt.log_level ? ErrorKind::usage : ErrorKind::config,
                     level_text.origin + ": log level '" + level_text.value + "' is not err, warning, notice, info or debug"};
    lo.threshold = *level;
    // A person at a terminal reads the command's own output: an info line saying the same again is noise.
    bool auto_target = lo.target == "auto" || lo.target.empty();
    if (role == LogRole::command && auto_target && !settings.find(opt.log_level, nullptr, "log-level") &&
        ::isatty(2) == 1 && lo.threshold > Level::warning)
        lo.threshold = Level::warning;
    auto ms = *busy * 1000;
    bool default_db = !settings.find(opt.db, "MAILSTAMP_DB", "db");
    Context ctx(std::string(program), std::move(settings), *db, ms > 2000000000 ? 2000000000 : static_cast<int>(ms),
                std::make_unique<Logger>(lo));
    ctx.default_db = default_db;
    if (opt.uses_dns) {
        auto d = resolve_dns_options(ctx, opt.dns, role == LogRole::daemon);
        if (!d) return d.error();
        ctx.dns_options = std::move(*d);
    }
    return ctx;
}

int report(std::string_view program, const Error& e) {
    std::cerr << program << ": " << scrub(e.text) << '\n';
    return exit_code(e.kind);
}

int report(std::string_view program, std::string_view context, const Error& e) {
    std::cerr << program << ": " << context << ": " << scrub(e.text) << '\n';
    return exit_code(e.kind);
}

Result<std::unique_ptr<Store>> StorePool::take() {
    {
        std::lock_guard<std::mutex> g(m_);
        if (!free_.empty()) {
            auto s = std::move(free_.back());
            free_.pop_back();
            return s;
        }
    }
    return ctx_.open_store(use_);
}

void StorePool::give(std::unique_ptr<Store> s) {
    std::lock_guard<std::mutex> g(m_);
    if (free_.size() < 32) free_.push_back(std::move(s));
}

int run_filter(std::string_view program, const std::function<Result<int>()>& body) {
    Result<int> r = Error{ErrorKind::software, "internal error"};
    try {
        r = body();
    } catch (const std::exception& e) {
        // A bug must still leave the message with the MTA: report it and say "try again later".
        r = Error{ErrorKind::tempfail, std::string("internal error: ") + e.what()};
    }
    if (r) return *r;
    Error e = r.error();
    if (e.kind != ErrorKind::usage && e.kind != ErrorKind::config && e.kind != ErrorKind::noinput &&
        e.kind != ErrorKind::data)
        e.kind = ErrorKind::tempfail;
    return report(program, e);
}

} // namespace mail
