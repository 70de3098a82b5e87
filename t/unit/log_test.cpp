#include "libmail/base/log.hpp"

#include <catch2/catch.hpp>
#include "tmpdir.hpp"

#include <fcntl.h>
#include <filesystem>
#include <atomic>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>
#include <vector>

using mail::Level;
using mail::LogTarget;
using mail::log_value;

namespace {


std::string slurp(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
}

std::vector<std::string> lines_of(const std::string& text) {
    std::vector<std::string> out;
    std::istringstream in(text);
    for (std::string l; std::getline(in, l);) out.push_back(l);
    return out;
}

// Sends fd 2 to a file for the lifetime of the object.
struct CaptureStderr {
    std::string path;
    int saved = -1;
    explicit CaptureStderr(const std::string& p) : path(p) {
        saved = ::dup(2);
        int fd = ::open(p.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
        ::dup2(fd, 2);
        ::close(fd);
    }
    ~CaptureStderr() { restore(); }
    void restore() {
        if (saved < 0) return;
        ::dup2(saved, 2);
        ::close(saved);
        saved = -1;
    }
};

mail::LogOptions options(std::string target) {
    mail::LogOptions o;
    o.program = "mtest";
    o.target = std::move(target);
    o.stderr_is_tty = false;
    o.clock = [] { return std::int64_t{1795341600}; };  // 2026-11-22T10:00:00Z
    return o;
}

} // namespace

TEST_CASE("log: levels", "[log]") {
    for (Level l : {Level::err, Level::warning, Level::notice, Level::info, Level::debug})
        CHECK(mail::parse_level(mail::to_string(l)) == l);
    CHECK(mail::parse_level("error") == Level::err);
    CHECK(mail::parse_level("warn") == Level::warning);
    CHECK_FALSE(mail::parse_level("INFO"));
    CHECK_FALSE(mail::parse_level("loud"));
    CHECK(Level::err < Level::debug);
}

TEST_CASE("log: values are quoted only when needed", "[log]") {
    CHECK(log_value("alice@example.org") == "alice@example.org");
    CHECK(log_value("a-b_c.d/e:f+g,h") == "a-b_c.d/e:f+g,h");
    CHECK(log_value("") == "\"\"");
    CHECK(log_value("two words") == "\"two words\"");
    CHECK(log_value("k=v") == "\"k=v\"");
    CHECK(log_value("say \"hi\"") == "\"say \\\"hi\\\"\"");
    CHECK(log_value("back\\slash") == "\"back\\\\slash\"");
    CHECK(log_value("caf\xC3\xA9") == "caf\xC3\xA9");  // valid UTF-8 passes
}

TEST_CASE("log: CR, LF and other controls cannot start a line", "[log]") {
    CHECK(log_value("evil\r\nlevel=err event=forged") == "\"evil\\x0D\\x0Alevel=err event=forged\"");
    CHECK(log_value("tab\there") == "\"tab\\x09here\"");
    CHECK(log_value(std::string_view("nul\0x", 5)) == "\"nul\\x00x\"");
    CHECK(log_value("del\x7f") == "\"del\\x7F\"");
    CHECK(log_value("esc\x1b[31m") == "\"esc\\x1B[31m\"");
    // NEL (U+0085), LINE SEPARATOR (U+2028), RLO (U+202E), invalid UTF-8, overlong '/'.
    CHECK(log_value("a\xC2\x85z") == "\"a\\xC2\\x85z\"");
    CHECK(log_value("a\xE2\x80\xA8z") == "\"a\\xE2\\x80\\xA8z\"");
    CHECK(log_value("a\xE2\x80\xAEz") == "\"a\\xE2\\x80\\xAEz\"");
    CHECK(log_value("a\xFFz") == "\"a\\xFFz\"");
    CHECK(log_value("a\xC0\xAFz") == "\"a\\xC0\\xAFz\"");
    CHECK(log_value("trunc\xE2\x80") == "\"trunc\\xE2\\x80\"");
    // Whatever goes in, no raw control byte comes out.
    std::string all;
    for (int c = 0; c < 256; ++c) all += static_cast<char>(c);
    std::string out = log_value(all);
    for (char c : out) {
        auto u = static_cast<unsigned char>(c);
        CHECK((u >= 0x20 && u != 0x7F));
    }
}

TEST_CASE("log: long values are cut and marked", "[log]") {
    std::string big(5000, 'a');
    std::string v = log_value(big);
    CHECK(v == std::string(mail::log_value_length, 'a') + "[truncated len=5000]");
    // The cut never splits a UTF-8 character.
    std::string utf(mail::log_value_length - 1, 'a');
    utf += "\xC3\xA9\xC3\xA9";
    std::string u = log_value(utf);
    CHECK(u == std::string(mail::log_value_length - 1, 'a') + "[truncated len=1027]");
}

TEST_CASE("log: names and events", "[log]") {
    CHECK(mail::log_name("token.check") == "token.check");
    CHECK(mail::log_name("bad key\n") == "bad_key_");
    CHECK(mail::log_name("") == "_");
    CHECK(mail::format_event(Level::info, "token.check",
                             {{"rcpt", "a+x@example.org"}, {"result", "ok"}, {"n", 3}, {"once", true},
                              {"subject", "Hello\r\nX-Injected: yes"}}) ==
          "level=info event=token.check rcpt=a+x@example.org result=ok n=3 once=yes "
          "subject=\"Hello\\x0D\\x0AX-Injected: yes\"");
    CHECK(mail::format_event(Level::err, "x", {}) == "level=err event=x");
    CHECK(mail::format_event(Level::debug, "x", {{"k=v", "1"}}) == "level=debug event=x k_v=1");
}

TEST_CASE("log: line prefix", "[log]") {
    CHECK(mail::format_line(1795341600, "mtoken", 42, "level=info event=x") ==
          "2026-11-22T10:00:00Z mtoken[42]: level=info event=x\n");
    CHECK(mail::format_line(0, "m t", 1, "b") == "1970-01-01T00:00:00Z m_t[1]: b\n");
}

TEST_CASE("log: redact keeps only the length", "[log]") {
    CHECK(mail::redact("hunter2") == "[redacted len=7]");
    CHECK(mail::redact("") == "[redacted len=0]");
    CHECK(mail::format_event(Level::info, "auth", {{"user", "bob"}, {"password", mail::redact("s3cret pw")}}) ==
          "level=info event=auth user=bob password=\"[redacted len=9]\"");
}

TEST_CASE("log: choosing the target", "[log]") {
    using mail::choose_target;
    CHECK(choose_target("auto", false, true) == LogTarget::stderr_stream);
    CHECK(choose_target("auto", false, false) == LogTarget::syslog);
    CHECK(choose_target("auto", true, true) == LogTarget::syslog);
    CHECK(choose_target("", false, true) == LogTarget::stderr_stream);
    CHECK(choose_target("syslog", false, true) == LogTarget::syslog);
    CHECK(choose_target("stderr", false, false) == LogTarget::stderr_stream);
    CHECK(choose_target("stderr", true, true) == LogTarget::syslog);
    CHECK(choose_target("none", false, false) == LogTarget::none);
    CHECK(choose_target("/var/log/m.log", true, false) == LogTarget::file);
    CHECK(choose_target("./syslog", false, false) == LogTarget::file);
    // No syslog socket (a daemon's view): "auto" is stderr, unless stderr is the client.
    CHECK(choose_target("auto", false, false, false) == LogTarget::stderr_stream);
    CHECK(choose_target("auto", true, false, false) == LogTarget::syslog);
    CHECK(choose_target("syslog", false, false, false) == LogTarget::syslog);
    CHECK(choose_target("none", false, false, false) == LogTarget::none);
}

TEST_CASE("log: a daemon without a syslog socket logs to stderr", "[log]") {
    mail::LogOptions o;
    o.program = "msmtp-proxy";
    o.stderr_is_tty = false;
    o.syslog_ok = false;
    CHECK(mail::Logger(o).target() == LogTarget::syslog);  // not a daemon: "auto" stays syslog
    o.daemon = true;
    CHECK(mail::Logger(o).target() == LogTarget::stderr_stream);
    o.syslog_ok = true;
    CHECK(mail::Logger(o).target() == LogTarget::syslog);
    o.syslog_ok = false;
    o.no_stderr = true;
    CHECK(mail::Logger(o).target() == LogTarget::syslog);
    o.no_stderr = false;
    o.target = "syslog";
    CHECK(mail::Logger(o).target() == LogTarget::syslog);  // asked for by name: kept
}

TEST_CASE("log: file target writes one line per event, appending", "[log]") {
    TempDir d;
    std::string path = d.path + "/m.log";
    {
        std::ofstream(path) << "existing line\n";
    }
    {
        mail::Logger log(options(path));
        CHECK(log.target() == LogTarget::file);
        CHECK(log.fallback().empty());
        log.info("token.check", {{"rcpt", "a@b.example"}, {"note", "two\nlines"}});
        log.debug("hidden");  // below the default threshold
        log.err("store.busy", {{"wait_ms", 10000}});
        CHECK(log.enabled(Level::info));
        CHECK_FALSE(log.enabled(Level::debug));
    }
    std::string pid = std::to_string(::getpid());
    auto lines = lines_of(slurp(path));
    REQUIRE(lines.size() == 3);
    CHECK(lines[0] == "existing line");
    CHECK(lines[1] == "2026-11-22T10:00:00Z mtest[" + pid +
                          "]: level=info event=token.check rcpt=a@b.example note=\"two\\x0Alines\"");
    CHECK(lines[2] == "2026-11-22T10:00:00Z mtest[" + pid + "]: level=err event=store.busy wait_ms=10000");

    struct stat st {};
    REQUIRE(::stat(path.c_str(), &st) == 0);
    std::string fresh = d.path + "/fresh.log";
    mode_t old = ::umask(022);
    { mail::Logger log(options(fresh)); log.notice("start"); }
    ::umask(old);
    REQUIRE(::stat(fresh.c_str(), &st) == 0);
    CHECK((st.st_mode & 0777) == 0640);
}

TEST_CASE("log: threshold", "[log]") {
    TempDir d;
    std::string path = d.path + "/m.log";
    auto o = options(path);
    o.threshold = Level::warning;
    {
        mail::Logger log(std::move(o));
        log.err("a");
        log.warning("b");
        log.notice("c");
        log.info("d");
        log.debug("e");
    }
    auto lines = lines_of(slurp(path));
    REQUIRE(lines.size() == 2);
    CHECK(lines[0].ends_with("level=err event=a"));
    CHECK(lines[1].ends_with("level=warning event=b"));
}

TEST_CASE("log: concurrent writers never interleave lines", "[log]") {
    TempDir d;
    std::string path = d.path + "/m.log";
    constexpr int procs = 4, events = 200;
    std::vector<pid_t> kids;
    for (int p = 0; p < procs; ++p) {
        pid_t pid = ::fork();
        REQUIRE(pid >= 0);
        if (pid == 0) {
            mail::Logger log(options(path));
            for (int i = 0; i < events; ++i) log.info("e", {{"p", p}, {"i", i}, {"pad", std::string(300, 'x')}});
            ::_exit(0);
        }
        kids.push_back(pid);
    }
    for (pid_t k : kids) {
        int status = 0;
        ::waitpid(k, &status, 0);
        CHECK(WIFEXITED(status));
    }
    auto lines = lines_of(slurp(path));
    CHECK(lines.size() == procs * events);
    for (const std::string& l : lines) {
        CHECK(l.find("level=info event=e p=") != std::string::npos);
        CHECK(l.ends_with(" pad=" + std::string(300, 'x')));
    }
}

TEST_CASE("log: stderr target and fallbacks", "[log]") {
    TempDir d;
    std::string cap = d.path + "/stderr";
    std::string pid = std::to_string(::getpid());

    SECTION("stderr") {
        {
            CaptureStderr c(cap);
            mail::Logger log(options("stderr"));
            CHECK(log.target() == LogTarget::stderr_stream);
            log.warning("w", {{"k", "v"}});
        }
        CHECK(slurp(cap) == "2026-11-22T10:00:00Z mtest[" + pid + "]: level=warning event=w k=v\n");
    }
    SECTION("a file that cannot be opened falls back to stderr, and says so") {
        std::string bad = d.path + "/no/such/dir/m.log";
        {
            CaptureStderr c(cap);
            mail::Logger log(options(bad));
            CHECK(log.target() == LogTarget::stderr_stream);
            CHECK(log.fallback() == "cannot open " + bad + ": No such file or directory");
            log.info("after");
        }
        auto lines = lines_of(slurp(cap));
        REQUIRE(lines.size() == 2);
        CHECK(lines[0].ends_with("level=warning event=log.fallback wanted=" + bad +
                                 " reason=\"cannot open " + bad + ": No such file or directory\""));
        CHECK(lines[1].ends_with("level=info event=after"));
    }
    SECTION("with stderr forbidden, the fallback is syslog and stderr stays untouched") {
        {
            CaptureStderr c(cap);
            auto o = options(d.path + "/no/such/dir/m.log");
            o.no_stderr = true;
            mail::Logger log(std::move(o));
            CHECK(log.target() == LogTarget::syslog);
            log.info("quiet");  // to syslog; dropped silently if there is no /dev/log
            auto o2 = options("stderr");
            o2.no_stderr = true;
            mail::Logger log2(std::move(o2));
            CHECK(log2.target() == LogTarget::syslog);
            CHECK_FALSE(log2.fallback().empty());
            auto o3 = options("auto");
            o3.no_stderr = true;
            o3.stderr_is_tty = true;
            mail::Logger log3(std::move(o3));
            CHECK(log3.target() == LogTarget::syslog);
            log3.err("still.quiet");
        }
        CHECK(slurp(cap).empty());
    }
    SECTION("none discards") {
        {
            CaptureStderr c(cap);
            mail::Logger log(options("none"));
            log.err("x");
        }
        CHECK(slurp(cap).empty());
    }
}

TEST_CASE("log: reopen after rotation", "[log]") {
    TempDir d;
    std::string path = d.path + "/m.log";
    mail::Logger log(options(path));
    log.info("one");
    std::filesystem::rename(path, path + ".1");
    log.info("two");  // still into the rotated file
    log.reopen();
    log.info("three");
    CHECK(lines_of(slurp(path + ".1")).size() == 2);
    auto fresh = lines_of(slurp(path));
    REQUIRE(fresh.size() == 1);
    CHECK(fresh[0].ends_with("event=three"));
}

TEST_CASE("log: a reopen that cannot open the file keeps the old one and says why", "[log]") {
    TempDir d;
    std::filesystem::create_directory(d.path + "/a");
    std::string path = d.path + "/a/m.log";
    mail::Logger log(options(path));
    log.info("one");
    std::filesystem::rename(d.path + "/a", d.path + "/b");  // the directory gone: no file to open by the name
    log.reopen();
    log.info("two");
    auto old = lines_of(slurp(d.path + "/b/m.log"));
    REQUIRE(old.size() == 3);
    CHECK(old[1].find("event=log.reopen") != std::string::npos);
    CHECK(old[2].ends_with("event=two"));
    CHECK(log.target() == mail::LogTarget::file);
}

TEST_CASE("log: reopen while other threads write loses no line", "[log]") {
    TempDir d;
    std::string path = d.path + "/m.log";
    mail::Logger log(options(path));
    std::atomic<bool> go{true};
    std::vector<std::thread> writers;
    std::atomic<int> written{0};
    for (int t = 0; t < 4; ++t)
        writers.emplace_back([&] {
            while (go) {
                log.info("w");
                ++written;
            }
        });
    for (int i = 1; i <= 20; ++i) {
        std::filesystem::rename(path, path + "." + std::to_string(i));
        log.reopen();
    }
    go = false;
    for (auto& w : writers) w.join();
    std::size_t n = lines_of(slurp(path)).size();
    for (int i = 1; i <= 20; ++i) n += lines_of(slurp(path + "." + std::to_string(i))).size();
    CHECK(n == static_cast<std::size_t>(written.load()));
}
