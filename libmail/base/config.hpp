// The config file (DESIGN §7) and how a setting is resolved.
//
// One INI file serves every program: a [common] section, then one section per
// program ([mtoken], [mwhitelist], ...). Keys are the long option names ("db",
// "log", "ttl"). A program's own section beats [common]; the command line
// beats the environment beats the file. The file is found by, in order:
// --config FILE, $MAILSTAMP_CONFIG (both must exist), then the optional
// $XDG_CONFIG_HOME/mailstamp/config (~/.config/...) and
// SYSCONFDIR/mailstamp/mailstamp.conf. Only the first file found is read.
// Syntax and keys: share/man/mailstamp.conf.5.
#pragma once
#include "libmail/base/error.hpp"

#include <cstdint>
#include <cstdlib>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace mail {

/// Read access to environment variables; default-constructed it reads the process's.
struct Env {
    std::function<const char*(const char*)> getenv = [](const char* n) -> const char* { return ::getenv(n); };
    /// The variable's value; nothing when it is unset or empty.
    std::optional<std::string> get(const char* name) const;
};

/// An Env over a fixed set of variables (tests, services with a scrubbed environment).
Env fixed_env(std::map<std::string, std::string> vars);

/// One `key = value` line of a config file.
struct ConfigEntry {
    std::string section;  ///< "common" for keys before any section header
    std::string key;
    std::string value;    ///< trimmed, quotes removed, escapes undone
    int line = 0;
};

/// A parsed config file: every entry in file order. Empty when no file exists.
class Config {
public:
    /// Parses INI text; `origin` becomes path(); errors (kind config) read "ORIGIN:LINE: what".
    static Result<Config> parse(std::string_view text, std::string_view origin);
    /// Reads and parses a file; missing or unreadable is kind noinput, bad syntax kind config.
    static Result<Config> read_file(const std::string& path);

    /// The last value of `key` in [program], else in [common].
    std::optional<std::string> get(std::string_view program, std::string_view key) const;
    /// Like get, with the line it came from.
    std::optional<ConfigEntry> find(std::string_view program, std::string_view key) const;
    /// Every value of `key` in [program] in file order, or if there are none, every one in [common].
    std::vector<std::string> get_all(std::string_view program, std::string_view key) const;
    /// All entries in file order (for checking a section for unknown keys).
    const std::vector<ConfigEntry>& entries() const { return entries_; }
    /// The file this came from; "" when no file was found.
    const std::string& path() const { return path_; }

private:
    std::vector<ConfigEntry> entries_;
    std::string path_;
};

/// SYSCONFDIR/mailstamp/mailstamp.conf, fixed at configure time (paths::config_file).
std::string system_config_path();

/// Finds and reads the config file in DESIGN §7 order; an empty Config when no optional file exists.
Result<Config> load_config(const std::optional<std::string>& cli_path, const Env& env = Env{},
                           const std::string& system_path = system_config_path());

/// $XDG_DATA_HOME/mailstamp/store.db (~/.local/share/...); kind config when neither HOME nor XDG_DATA_HOME is set.
Result<std::string> default_store_path(const Env& env = Env{});

/// A resolved value and where it came from: "--ttl", "$MAILSTAMP_DB", "FILE:LINE" or "default".
struct Setting {
    std::string value;
    std::string origin;
};

/// One program's settings: command line beats environment beats config file beats default.
class Settings {
public:
    /// Settings of `program` (its config section name, e.g. "mtoken").
    Settings(Config config, Env env, std::string program);

    /// The first of: `cli`, $env_name (skipped when null), config `key`; nothing if none is set.
    std::optional<Setting> find(const std::optional<std::string>& cli, const char* env_name,
                                std::string_view key) const;
    /// Like find, falling back to `fallback` (origin "default").
    Setting get(const std::optional<std::string>& cli, const char* env_name, std::string_view key,
                std::string fallback) const;
    /// A duration in seconds; a bad value is kind usage from the command line, config otherwise, naming its origin.
    Result<std::int64_t> duration(const std::optional<std::string>& cli, const char* env_name,
                                  std::string_view key, std::int64_t fallback) const;
    /// The store path: --db, $MAILSTAMP_DB, config `db`, else default_store_path().
    Result<std::string> store_path(const std::optional<std::string>& cli) const;
    /// Where files that go with the store db live by default (spools): its directory, or for a store on a
    /// server (a postgresql:// URI) the directory of default_store_path(), made (0700, with its parents) if
    /// missing, as the default store's is.
    std::string data_dir(const std::string& db) const;

    /// The config file read.
    const Config& config() const { return config_; }
    /// The environment consulted.
    const Env& env() const { return env_; }
    /// The program section consulted.
    const std::string& program() const { return program_; }

private:
    Config config_;
    Env env_;
    std::string program_;
};

} // namespace mail
