#include "libmail/base/config.hpp"

#include "libmail/base/duration.hpp"
#include "libmail/base/limits.hpp"
#include "libmail/base/paths.hpp"
#include "libmail/base/text.hpp"

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <sys/stat.h>
#include <memory>
#include <unistd.h>

namespace mail {

std::optional<std::string> Env::get(const char* name) const {
    const char* v = getenv ? getenv(name) : nullptr;
    if (!v || !*v) return std::nullopt;
    return std::string(v);
}

Env fixed_env(std::map<std::string, std::string> vars) {
    auto shared = std::make_shared<const std::map<std::string, std::string>>(std::move(vars));
    Env env;
    env.getenv = [shared](const char* name) -> const char* {
        auto it = shared->find(name);
        return it == shared->end() ? nullptr : it->second.c_str();
    };
    return env;
}

namespace {

constexpr std::string_view common_section = "common";


bool is_name_char(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '_' || c == '.';
}

bool is_name(std::string_view s) {
    if (s.empty()) return false;
    for (char c : s)
        if (!is_name_char(c)) return false;
    return true;
}

Error syntax(std::string_view origin, int line, std::string_view what) {
    return make_error(ErrorKind::config,
                      std::string(origin) + ":" + std::to_string(line) + ": " + std::string(what));
}

// A value as written: bare (taken literally) or "quoted" with \" and \\.
std::optional<std::string> unquote(std::string_view v, std::string& why) {
    if (v.empty() || v.front() != '"') return std::string(v);
    std::string out;
    std::size_t i = 1;
    for (; i < v.size(); ++i) {
        char c = v[i];
        if (c == '"') break;
        if (c == '\\') {
            if (i + 1 >= v.size()) break;
            char e = v[++i];
            if (e != '"' && e != '\\') {
                why = "bad escape \\" + std::string(1, e) + " (only \\\" and \\\\)";
                return std::nullopt;
            }
            out += e;
            continue;
        }
        out += c;
    }
    if (i >= v.size()) {
        why = "unterminated quoted value";
        return std::nullopt;
    }
    if (i + 1 != v.size()) {
        why = "text after closing quote";
        return std::nullopt;
    }
    return out;
}

} // namespace

Result<Config> Config::parse(std::string_view text, std::string_view origin) {
    if (text.size() > limits::config_file_size)
        return make_error(ErrorKind::config, std::string(origin) + ": larger than " +
                                                 std::to_string(limits::config_file_size) + " bytes");
    if (text.substr(0, 3) == "\xEF\xBB\xBF") text.remove_prefix(3);  // UTF-8 byte order mark
    Config cfg;
    cfg.path_ = std::string(origin);
    std::string section(common_section);
    int lineno = 0;
    while (!text.empty()) {
        ++lineno;
        std::size_t nl = text.find('\n');
        std::string_view line = text.substr(0, nl);
        text.remove_prefix(nl == std::string_view::npos ? text.size() : nl + 1);
        if (line.size() > limits::config_line_length)
            return syntax(origin, lineno,
                          "line longer than " + std::to_string(limits::config_line_length) + " bytes");
        if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
        for (char c : line)
            if (is_control(c) && c != '\t') return syntax(origin, lineno, "control character");
        line = trim(line);
        if (line.empty() || line.front() == '#' || line.front() == ';') continue;
        if (line.front() == '[') {
            if (line.back() != ']') return syntax(origin, lineno, "expected [section]");
            std::string_view name = trim(line.substr(1, line.size() - 2));
            if (!is_name(name)) return syntax(origin, lineno, "bad section name");
            section = std::string(name);
            continue;
        }
        std::size_t eq = line.find('=');
        if (eq == std::string_view::npos) return syntax(origin, lineno, "expected key = value");
        std::string_view key = trim(line.substr(0, eq));
        if (!is_name(key)) return syntax(origin, lineno, "expected key = value");
        std::string why;
        auto value = unquote(trim(line.substr(eq + 1)), why);
        if (!value) return syntax(origin, lineno, why);
        cfg.entries_.push_back(ConfigEntry{section, std::string(key), std::move(*value), lineno});
    }
    return cfg;
}

Result<Config> Config::read_file(const std::string& path) {
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) return make_error(ErrorKind::noinput, path + ": " + std::strerror(errno));
    std::string text;
    char buf[8192];
    for (;;) {
        ssize_t n = ::read(fd, buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
            int e = errno;
            ::close(fd);
            return make_error(ErrorKind::noinput, path + ": " + std::strerror(e));
        }
        if (n == 0) break;
        text.append(buf, static_cast<std::size_t>(n));
        if (text.size() > limits::config_file_size) {
            ::close(fd);
            return make_error(ErrorKind::config, path + ": larger than " +
                                                     std::to_string(limits::config_file_size) + " bytes");
        }
    }
    ::close(fd);
    return parse(text, path);
}

std::optional<ConfigEntry> Config::find(std::string_view program, std::string_view key) const {
    const ConfigEntry* in_program = nullptr;
    const ConfigEntry* in_common = nullptr;
    for (const ConfigEntry& e : entries_) {
        if (e.key != key) continue;
        if (e.section == program) in_program = &e;
        if (e.section == common_section) in_common = &e;
    }
    if (in_program) return *in_program;
    if (in_common) return *in_common;
    return std::nullopt;
}

std::optional<std::string> Config::get(std::string_view program, std::string_view key) const {
    auto e = find(program, key);
    if (!e) return std::nullopt;
    return std::move(e->value);
}

std::vector<std::string> Config::get_all(std::string_view program, std::string_view key) const {
    std::vector<std::string> own, common;
    for (const ConfigEntry& e : entries_) {
        if (e.key != key) continue;
        if (e.section == program) own.push_back(e.value);
        else if (e.section == common_section) common.push_back(e.value);
    }
    return own.empty() ? common : own;
}

std::string system_config_path() { return paths::config_file; }

namespace {

// XDG base directories must be absolute; a relative one is ignored (XDG spec).
std::optional<std::string> xdg_dir(const Env& env, const char* var, std::string_view home_default) {
    if (auto v = env.get(var); v && v->front() == '/') return v;
    if (auto home = env.get("HOME")) return *home + "/" + std::string(home_default);
    return std::nullopt;
}

// An implicit file: absent is fine, anything else wrong with it is not.
std::optional<Result<Config>> read_optional(const std::string& path) {
    if (::access(path.c_str(), F_OK) != 0 && (errno == ENOENT || errno == ENOTDIR)) return std::nullopt;
    return Config::read_file(path);
}

} // namespace

Result<Config> load_config(const std::optional<std::string>& cli_path, const Env& env,
                           const std::string& system_path) {
    if (cli_path) return Config::read_file(*cli_path);
    if (auto p = env.get("MAILSTAMP_CONFIG")) return Config::read_file(*p);
    if (auto dir = xdg_dir(env, "XDG_CONFIG_HOME", ".config"))
        if (auto r = read_optional(*dir + "/mailstamp/config")) return std::move(*r);
    if (auto r = read_optional(system_path)) return std::move(*r);
    return Config{};
}

Result<std::string> default_store_path(const Env& env) {
    auto dir = xdg_dir(env, "XDG_DATA_HOME", ".local/share");
    if (!dir)
        return make_error(ErrorKind::config,
                          "no store path: set --db, MAILSTAMP_DB, HOME or XDG_DATA_HOME");
    return *dir + "/mailstamp/store.db";
}

std::string Settings::data_dir(const std::string& db) const {
    std::string path = db;
    if (db.rfind("postgresql://", 0) == 0 || db.rfind("postgres://", 0) == 0) {
        auto d = default_store_path(env_);
        path = d ? *d : std::string("./store.db");
    }
    auto slash = path.rfind('/');
    if (slash == std::string::npos) return ".";
    std::string dir = slash == 0 ? "/" : path.substr(0, slash);
    if (path != db)  // mkdir -p: a failure shows when the spool is used
        for (std::size_t at = dir.find('/', 1);; at = dir.find('/', at + 1)) {
            ::mkdir(dir.substr(0, at).c_str(), 0700);
            if (at == std::string::npos) break;
        }
    return dir;
}

Settings::Settings(Config config, Env env, std::string program)
    : config_(std::move(config)), env_(std::move(env)), program_(std::move(program)) {}

std::optional<Setting> Settings::find(const std::optional<std::string>& cli, const char* env_name,
                                      std::string_view key) const {
    if (cli) return Setting{*cli, "--" + std::string(key)};
    if (env_name)
        if (auto v = env_.get(env_name)) return Setting{std::move(*v), "$" + std::string(env_name)};
    if (auto e = config_.find(program_, key))
        return Setting{std::move(e->value), config_.path() + ":" + std::to_string(e->line)};
    return std::nullopt;
}

Setting Settings::get(const std::optional<std::string>& cli, const char* env_name, std::string_view key,
                      std::string fallback) const {
    if (auto s = find(cli, env_name, key)) return std::move(*s);
    return Setting{std::move(fallback), "default"};
}

Result<std::int64_t> Settings::duration(const std::optional<std::string>& cli, const char* env_name,
                                        std::string_view key, std::int64_t fallback) const {
    auto s = find(cli, env_name, key);
    if (!s) return fallback;
    auto d = parse_duration(s->value);
    if (d) return *d;
    std::string where = s->origin;
    // A config origin is FILE:LINE; name the key too so the admin finds it.
    if (!cli && where.front() != '$') where += ": " + std::string(key);
    return make_error(cli ? ErrorKind::usage : ErrorKind::config, where + ": " + d.error().text);
}

Result<std::string> Settings::store_path(const std::optional<std::string>& cli) const {
    if (auto s = find(cli, "MAILSTAMP_DB", "db")) return std::move(s->value);
    return default_store_path(env_);
}

} // namespace mail
