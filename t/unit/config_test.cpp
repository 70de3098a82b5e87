#include "libmail/base/config.hpp"

#include "libmail/base/limits.hpp"

#include <catch2/catch.hpp>
#include "tmpdir.hpp"

#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

using mail::Config;
using mail::ErrorKind;

namespace {


Config parse_ok(std::string_view text) {
    auto r = Config::parse(text, "test.conf");
    if (!r) FAIL(r.error().text);
    return *r;
}

mail::Error parse_err(std::string_view text) {
    auto r = Config::parse(text, "test.conf");
    REQUIRE_FALSE(r);
    return r.error();
}

} // namespace

TEST_CASE("config: sections, comments, whitespace", "[config]") {
    Config c = parse_ok("# comment\n"
                        "; another comment\n"
                        "\n"
                        "   \t\n"
                        "[common]\n"
                        "db = /var/lib/mailstamp/store.db\n"
                        "log=syslog\n"
                        "  [ mtoken ]  \n"
                        "\tttl\t=\t5d  \n"
                        "delimiter = -\n"
                        "[mwhitelist]\n"
                        "empty =\n");
    CHECK(c.get("mtoken", "db") == "/var/lib/mailstamp/store.db");  // from [common]
    CHECK(c.get("mtoken", "log") == "syslog");
    CHECK(c.get("mtoken", "ttl") == "5d");
    CHECK(c.get("mtoken", "delimiter") == "-");
    CHECK_FALSE(c.get("mwhitelist", "ttl"));  // [mtoken] is not [common]
    CHECK(c.get("mwhitelist", "empty") == "");
    CHECK(c.get("common", "db") == "/var/lib/mailstamp/store.db");
    CHECK_FALSE(c.get("mtoken", "nope"));
    CHECK(c.path() == "test.conf");
    REQUIRE(c.entries().size() == 5);
    CHECK(c.entries()[2].section == "mtoken");
    CHECK(c.entries()[2].line == 9);
}

TEST_CASE("config: keys are case-sensitive; comments only at line start", "[config]") {
    Config c = parse_ok("ttl = 1d # not a comment\nDB = x\nurl = a=b\n");
    CHECK(c.get("mtoken", "ttl") == "1d # not a comment");
    CHECK_FALSE(c.get("mtoken", "db"));
    CHECK(c.get("mtoken", "DB") == "x");
    CHECK(c.get("mtoken", "url") == "a=b");
}

TEST_CASE("config: a key before any section belongs to [common]", "[config]") {
    Config c = parse_ok("db = /a\n[mtoken]\nttl = 1d\n");
    CHECK(c.entries()[0].section == "common");
    CHECK(c.get("mverify", "db") == "/a");
}

TEST_CASE("config: program section beats [common] regardless of order", "[config]") {
    Config c = parse_ok("[mtoken]\nlog = /tmp/t.log\n[common]\nlog = syslog\n");
    CHECK(c.get("mtoken", "log") == "/tmp/t.log");
    CHECK(c.get("mverify", "log") == "syslog");
    auto e = c.find("mtoken", "log");
    REQUIRE(e);
    CHECK(e->line == 2);
    CHECK(e->section == "mtoken");
}

TEST_CASE("config: quoted values and escapes", "[config]") {
    Config c = parse_ok("a = \"  spaced  \"\n"
                        "b = \"say \\\"hi\\\"\"\n"
                        "c = \"back\\\\slash\"\n"
                        "d = \"\"\n"
                        "e = \"# not a comment\"\n"
                        "f = bare\"quote\n"
                        "g = \"x\" \t\n");
    CHECK(c.get("x", "a") == "  spaced  ");
    CHECK(c.get("x", "b") == "say \"hi\"");
    CHECK(c.get("x", "c") == "back\\slash");
    CHECK(c.get("x", "d") == "");
    CHECK(c.get("x", "e") == "# not a comment");
    CHECK(c.get("x", "f") == "bare\"quote");
    CHECK(c.get("x", "g") == "x");
}

TEST_CASE("config: repeated keys: last wins, get_all keeps all", "[config]") {
    Config c = parse_ok("[common]\nrcpt = a\nrcpt = b\n[mverify]\nrcpt = c\n[mtoken]\nx = 1\n[mverify]\nrcpt = d\n");
    CHECK(c.get("mverify", "rcpt") == "d");
    CHECK(c.get("mtoken", "rcpt") == "b");
    CHECK(c.get_all("mverify", "rcpt") == std::vector<std::string>{"c", "d"});
    CHECK(c.get_all("mtoken", "rcpt") == std::vector<std::string>{"a", "b"});
    CHECK(c.get_all("mtoken", "none").empty());
}

TEST_CASE("config: CRLF line endings, BOM, no final newline", "[config]") {
    Config c = parse_ok("\xEF\xBB\xBF[mtoken]\r\nttl = 2d\r\nkind = once");
    CHECK(c.get("mtoken", "ttl") == "2d");
    CHECK(c.get("mtoken", "kind") == "once");
}

TEST_CASE("config: syntax errors name file and line, kind config", "[config]") {
    struct Case {
        const char* text;
        const char* message;
    };
    const Case cases[] = {
        {"[common]\ndb = x\njust words\n", "test.conf:3: expected key = value"},
        {"= value\n", "test.conf:1: expected key = value"},
        {"two words = x\n", "test.conf:1: expected key = value"},
        {"\n\n[mtoken\n", "test.conf:3: expected [section]"},
        {"[]\n", "test.conf:1: bad section name"},
        {"[a b]\n", "test.conf:1: bad section name"},
        {"a = \"open\n", "test.conf:1: unterminated quoted value"},
        {"a = \"ends with backslash\\\"\n", "test.conf:1: unterminated quoted value"},
        {"a = \"x\" y\n", "test.conf:1: text after closing quote"},
        {"a = \"\\n\"\n", "test.conf:1: bad escape \\n (only \\\" and \\\\)"},
        {"ok = 1\nbad = a\x01z\n", "test.conf:2: control character"},
        {"ok = 1\nbad = a\rz\n", "test.conf:2: control character"},
    };
    for (const Case& k : cases) {
        CAPTURE(k.text);
        mail::Error e = parse_err(k.text);
        CHECK(e.kind == ErrorKind::config);
        CHECK(e.text == k.message);
        CHECK(mail::exit_code(e.kind) == 78);
    }
}

TEST_CASE("config: line and file size limits", "[config]") {
    std::string ok_line = "k = " + std::string(mail::limits::config_line_length - 4, 'v') + "\n";
    CHECK(Config::parse(ok_line, "f"));
    std::string long_line = "# ok\nk = " + std::string(mail::limits::config_line_length - 3, 'v') + "\n";
    auto e = Config::parse(long_line, "f");
    REQUIRE_FALSE(e);
    CHECK(e.error().kind == ErrorKind::config);
    CHECK(e.error().text == "f:2: line longer than 4096 bytes");

    std::string big(mail::limits::config_file_size + 1, '\n');
    auto b = Config::parse(big, "f");
    REQUIRE_FALSE(b);
    CHECK(b.error().kind == ErrorKind::config);
    CHECK(b.error().text == "f: larger than 1048576 bytes");

    TempDir d;
    auto p = d.write("big.conf", big);
    auto r = Config::read_file(p);
    REQUIRE_FALSE(r);
    CHECK(r.error().kind == ErrorKind::config);
    CHECK(r.error().text == p + ": larger than 1048576 bytes");
}

TEST_CASE("config: read_file", "[config]") {
    TempDir d;
    auto p = d.write("m.conf", "[mtoken]\nttl = 3d\n");
    auto r = Config::read_file(p);
    REQUIRE(r);
    CHECK(r->path() == p);
    CHECK(r->get("mtoken", "ttl") == "3d");

    auto missing = Config::read_file(d.path + "/nope");
    REQUIRE_FALSE(missing);
    CHECK(missing.error().kind == ErrorKind::noinput);
    CHECK(missing.error().text == d.path + "/nope: No such file or directory");

    auto bad = d.write("bad.conf", "[mtoken]\nttl\n");
    auto rb = Config::read_file(bad);
    REQUIRE_FALSE(rb);
    CHECK(rb.error().kind == ErrorKind::config);
    CHECK(rb.error().text == bad + ":2: expected key = value");

    auto dir = Config::read_file(d.path);
    REQUIRE_FALSE(dir);
    CHECK(dir.error().kind == ErrorKind::noinput);
}

TEST_CASE("config: Env", "[config]") {
    mail::Env env = mail::fixed_env({{"A", "1"}, {"EMPTY", ""}});
    CHECK(env.get("A") == "1");
    CHECK_FALSE(env.get("EMPTY"));
    CHECK_FALSE(env.get("B"));
    mail::Env process;  // the real environment
    ::setenv("MAILSTAMP_CONFIG_TEST_VAR", "yes", 1);
    CHECK(process.get("MAILSTAMP_CONFIG_TEST_VAR") == "yes");
    ::unsetenv("MAILSTAMP_CONFIG_TEST_VAR");
    CHECK_FALSE(process.get("MAILSTAMP_CONFIG_TEST_VAR"));
}

TEST_CASE("config: system path", "[config]") {
    CHECK(mail::system_config_path().size() > std::string("/mailstamp/mailstamp.conf").size());
    CHECK(mail::system_config_path().ends_with("/mailstamp/mailstamp.conf"));
}

TEST_CASE("config: lookup order", "[config]") {
    TempDir d;
    auto cli = d.write("cli.conf", "db = cli\n");
    auto envf = d.write("env.conf", "db = env\n");
    auto xdg = d.write("xdg/mailstamp/config", "db = xdg\n");
    auto home = d.write("home/.config/mailstamp/config", "db = home\n");
    auto sys = d.write("etc/mailstamp/mailstamp.conf", "db = sys\n");
    auto db = [](const mail::Result<Config>& r) {
        REQUIRE(r);
        return r->get("x", "db").value_or("(none)");
    };
    std::map<std::string, std::string> vars{{"MAILSTAMP_CONFIG", envf},
                                            {"XDG_CONFIG_HOME", d.path + "/xdg"},
                                            {"HOME", d.path + "/home"}};

    SECTION("--config first") {
        CHECK(db(mail::load_config(cli, mail::fixed_env(vars), sys)) == "cli");
    }
    SECTION("then $MAILSTAMP_CONFIG") {
        CHECK(db(mail::load_config(std::nullopt, mail::fixed_env(vars), sys)) == "env");
    }
    SECTION("then $XDG_CONFIG_HOME") {
        vars.erase("MAILSTAMP_CONFIG");
        auto r = mail::load_config(std::nullopt, mail::fixed_env(vars), sys);
        CHECK(db(r) == "xdg");
        CHECK(r->path() == xdg);
    }
    SECTION("XDG_CONFIG_HOME defaults to $HOME/.config; empty or relative ones are ignored") {
        vars.erase("MAILSTAMP_CONFIG");
        vars.erase("XDG_CONFIG_HOME");
        CHECK(db(mail::load_config(std::nullopt, mail::fixed_env(vars), sys)) == "home");
        vars["XDG_CONFIG_HOME"] = "";
        CHECK(db(mail::load_config(std::nullopt, mail::fixed_env(vars), sys)) == "home");
        vars["XDG_CONFIG_HOME"] = "xdg";
        CHECK(db(mail::load_config(std::nullopt, mail::fixed_env(vars), sys)) == "home");
    }
    SECTION("then the system file") {
        vars.erase("MAILSTAMP_CONFIG");
        vars["XDG_CONFIG_HOME"] = d.path + "/nowhere";
        CHECK(db(mail::load_config(std::nullopt, mail::fixed_env(vars), sys)) == "sys");
        vars.erase("XDG_CONFIG_HOME");
        vars.erase("HOME");
        CHECK(db(mail::load_config(std::nullopt, mail::fixed_env(vars), sys)) == "sys");
    }
    SECTION("no file at all: empty config") {
        vars.erase("MAILSTAMP_CONFIG");
        vars["XDG_CONFIG_HOME"] = d.path + "/nowhere";
        auto r = mail::load_config(std::nullopt, mail::fixed_env(vars), d.path + "/etc/none.conf");
        REQUIRE(r);
        CHECK(r->entries().empty());
        CHECK(r->path().empty());
        // A path through a regular file is also just absent.
        auto r2 = mail::load_config(std::nullopt, mail::fixed_env(vars), cli + "/mailstamp.conf");
        CHECK(r2);
    }
    SECTION("an explicitly named file must exist: noinput") {
        auto r = mail::load_config(d.path + "/missing.conf", mail::fixed_env(vars), sys);
        REQUIRE_FALSE(r);
        CHECK(r.error().kind == ErrorKind::noinput);
        CHECK(mail::exit_code(r.error().kind) == 66);
        vars["MAILSTAMP_CONFIG"] = d.path + "/missing-env.conf";
        auto r2 = mail::load_config(std::nullopt, mail::fixed_env(vars), sys);
        REQUIRE_FALSE(r2);
        CHECK(r2.error().kind == ErrorKind::noinput);
        CHECK(r2.error().text.find("missing-env.conf") != std::string::npos);
    }
    SECTION("an implicit file that exists but is broken is an error") {
        vars.erase("MAILSTAMP_CONFIG");
        d.write("xdg/mailstamp/config", "junk\n");
        auto r = mail::load_config(std::nullopt, mail::fixed_env(vars), sys);
        REQUIRE_FALSE(r);
        CHECK(r.error().kind == ErrorKind::config);
        CHECK(r.error().text == xdg + ":1: expected key = value");
    }
    SECTION("an implicit file that exists but is unreadable is an error") {
        if (::geteuid() == 0) return;  // root reads anything
        vars.erase("MAILSTAMP_CONFIG");
        ::chmod(xdg.c_str(), 0);
        auto r = mail::load_config(std::nullopt, mail::fixed_env(vars), sys);
        REQUIRE_FALSE(r);
        CHECK(r.error().kind == ErrorKind::noinput);
    }
}

TEST_CASE("config: default store path", "[config]") {
    using mail::default_store_path;
    using mail::fixed_env;
    CHECK(*default_store_path(fixed_env({{"XDG_DATA_HOME", "/x/data"}, {"HOME", "/home/u"}})) ==
          "/x/data/mailstamp/store.db");
    CHECK(*default_store_path(fixed_env({{"HOME", "/home/u"}})) == "/home/u/.local/share/mailstamp/store.db");
    CHECK(*default_store_path(fixed_env({{"XDG_DATA_HOME", "rel"}, {"HOME", "/home/u"}})) ==
          "/home/u/.local/share/mailstamp/store.db");
    CHECK(*default_store_path(fixed_env({{"XDG_DATA_HOME", "/x"}})) == "/x/mailstamp/store.db");
    auto none = default_store_path(fixed_env({}));
    REQUIRE_FALSE(none);
    CHECK(none.error().kind == ErrorKind::config);
    auto empty = default_store_path(fixed_env({{"HOME", ""}, {"XDG_DATA_HOME", ""}}));
    REQUIRE_FALSE(empty);
    CHECK(empty.error().kind == ErrorKind::config);
}

TEST_CASE("config: precedence cli > environment > file > default", "[config]") {
    Config c = *Config::parse("[common]\ndb = /common.db\nlog = syslog\n[mtoken]\ndb = /mtoken.db\nttl = 2d\n"
                              "[mverify]\nttl = junk\n",
                              "/etc/m.conf");
    mail::Env env = mail::fixed_env({{"MAILSTAMP_DB", "/env.db"}, {"HOME", "/home/u"}});
    mail::Settings s(c, env, "mtoken");
    CHECK(s.program() == "mtoken");

    auto cli = s.find(std::string("/cli.db"), "MAILSTAMP_DB", "db");
    REQUIRE(cli);
    CHECK(cli->value == "/cli.db");
    CHECK(cli->origin == "--db");

    auto fromenv = s.find(std::nullopt, "MAILSTAMP_DB", "db");
    REQUIRE(fromenv);
    CHECK(fromenv->value == "/env.db");
    CHECK(fromenv->origin == "$MAILSTAMP_DB");

    auto fromfile = s.find(std::nullopt, nullptr, "db");
    REQUIRE(fromfile);
    CHECK(fromfile->value == "/mtoken.db");
    CHECK(fromfile->origin == "/etc/m.conf:5");

    auto common = s.find(std::nullopt, "MAILSTAMP_LOG_UNSET", "log");
    REQUIRE(common);
    CHECK(common->value == "syslog");
    CHECK(common->origin == "/etc/m.conf:3");

    CHECK_FALSE(s.find(std::nullopt, nullptr, "delimiter"));
    auto d = s.get(std::nullopt, nullptr, "delimiter", "+");
    CHECK(d.value == "+");
    CHECK(d.origin == "default");
    CHECK(s.get(std::string("-"), nullptr, "delimiter", "+").value == "-");
    // An empty command-line value is still a value.
    CHECK(s.get(std::string(""), nullptr, "delimiter", "+").value == "");

    CHECK(*s.store_path(std::string("/cli.db")) == "/cli.db");
    CHECK(*s.store_path(std::nullopt) == "/env.db");
    mail::Settings noenv(c, mail::fixed_env({{"HOME", "/home/u"}}), "mtoken");
    CHECK(*noenv.store_path(std::nullopt) == "/mtoken.db");
    mail::Settings nothing(Config{}, mail::fixed_env({{"HOME", "/home/u"}}), "mtoken");
    CHECK(*nothing.store_path(std::nullopt) == "/home/u/.local/share/mailstamp/store.db");
    mail::Settings nohome(Config{}, mail::fixed_env({}), "mtoken");
    CHECK(nohome.store_path(std::nullopt).error().kind == ErrorKind::config);
}

TEST_CASE("config: duration settings", "[config]") {
    Config c = *Config::parse("[mtoken]\nttl = 2d\n[mverify]\nttl = junk\n", "/etc/m.conf");
    mail::Env env = mail::fixed_env({{"MAILSTAMP_TTL", "1h"}, {"BAD_TTL", "-1"}});
    mail::Settings s(c, env, "mtoken");
    CHECK(*s.duration(std::nullopt, nullptr, "ttl", 864000) == 172800);
    CHECK(*s.duration(std::string("30m"), nullptr, "ttl", 864000) == 1800);
    CHECK(*s.duration(std::nullopt, "MAILSTAMP_TTL", "ttl", 864000) == 3600);
    CHECK(*s.duration(std::nullopt, nullptr, "other", 864000) == 864000);

    auto bad_cli = s.duration(std::string("5y"), nullptr, "ttl", 0);
    REQUIRE_FALSE(bad_cli);
    CHECK(bad_cli.error().kind == ErrorKind::usage);
    CHECK(bad_cli.error().text.find("--ttl: bad duration '5y'") == 0);

    auto bad_env = s.duration(std::nullopt, "BAD_TTL", "ttl", 0);
    REQUIRE_FALSE(bad_env);
    CHECK(bad_env.error().kind == ErrorKind::config);
    CHECK(bad_env.error().text.find("$BAD_TTL: bad duration '-1'") == 0);

    mail::Settings v(c, env, "mverify");
    auto bad_file = v.duration(std::nullopt, nullptr, "ttl", 0);
    REQUIRE_FALSE(bad_file);
    CHECK(bad_file.error().kind == ErrorKind::config);
    CHECK(bad_file.error().text.find("/etc/m.conf:4: ttl: bad duration 'junk'") == 0);
}
