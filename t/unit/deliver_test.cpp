#include "libmail/io/deliver.hpp"
#include "libmail/mail/spool.hpp"
#include "tmpdir.hpp"

#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <sys/stat.h>
#include <unistd.h>
#include <vector>

using namespace mail;
namespace fs = std::filesystem;

namespace {

std::string slurp(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
}

std::vector<std::string> entries(const std::string& dir) {
    std::vector<std::string> v;
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(dir, ec)) v.push_back(e.path().filename().string());
    return v;
}

// Every regular file below dir, recursively.
std::size_t files_below(const std::string& dir) {
    std::size_t n = 0;
    std::error_code ec;
    for (const auto& e : fs::recursive_directory_iterator(dir, ec))
        if (e.is_regular_file()) ++n;
    return n;
}

struct Message {
    Spool body;
    OutMessage m;
    Message(std::string header, std::string_view text, std::size_t memory_limit = 1 << 20) : body(memory_limit) {
        m.sender = "alice@a.example";
        m.rcpts = {"bob@b.example", "carol@c.example"};
        m.header = std::move(header);
        for (std::size_t i = 0; i < text.size(); i += 1000) REQUIRE(body.write(text.substr(i, 1000)).ok());
        m.body = &body;
    }
};

} // namespace

TEST_CASE("deliver: Maildir: tmp/new/cur created, the message in new/ with LF line ends and the envelope on top") {
    TmpDir d;
    const std::string md = d.file("Maildir");
    static const char raw[] = "line one\r\n..two dots stay\r\nbinary \0\xff\x01 octets\r\n";
    static const char raw_lf[] = "line one\n..two dots stay\nbinary \0\xff\x01 octets\n";
    const std::string body = std::string(raw, sizeof raw - 1) + "lf only\nno final line end";
    Message msg("Subject: hi\r\nFrom: alice@a.example\r\n\r\n", body);
    auto r = maildir_delivery(md)->deliver(msg.m);
    REQUIRE(r.ok());
    CHECK(r->accepted);
    CHECK(r->reply.code == 250);
    for (const char* sub : {"tmp", "new", "cur"}) CHECK(fs::is_directory(md + "/" + sub));
    auto news = entries(md + "/new");
    REQUIRE(news.size() == 1);
    CHECK(r->where == md + "/new/" + news[0]);
    CHECK(entries(md + "/tmp").empty());
    CHECK(entries(md + "/cur").empty());
    const std::string want = "Return-Path: <alice@a.example>\n"
                             "X-Original-To: bob@b.example\n"
                             "X-Original-To: carol@c.example\n"
                             "Subject: hi\nFrom: alice@a.example\n\n" +
                             std::string(raw_lf, sizeof raw_lf - 1) +
                             "lf only\nno final line end";
    CHECK(slurp(r->where) == want);
    CHECK((fs::status(r->where).permissions() & (fs::perms::group_all | fs::perms::others_all)) == fs::perms::none);

    // A second message is a second file.
    auto r2 = maildir_delivery(md)->deliver(msg.m);
    REQUIRE(r2.ok());
    CHECK(r2->where != r->where);
    CHECK(entries(md + "/new").size() == 2);
    CHECK(entries(md + "/tmp").empty());
}

TEST_CASE("deliver: Maildir: the null sender, and envelope values kept on one line") {
    TmpDir d;
    Message msg("Subject: x\n\n", "body\n");
    msg.m.sender = "";
    msg.m.rcpts = {"evil@x\r\nBcc: victim@y"};
    auto r = maildir_delivery(d.file("md"))->deliver(msg.m);
    REQUIRE(r.ok());
    CHECK(slurp(r->where) == "Return-Path: <>\nX-Original-To: evil@x??Bcc: victim@y\nSubject: x\n\nbody\n");
}

TEST_CASE("deliver: Maildir: a body spooled to disk comes out whole, CRLF split across chunks") {
    TmpDir d;
    setenv("TMPDIR", d.path.c_str(), 1);
    std::string body, want;
    for (int i = 0; i < 30000; ++i) {
        body += "l" + std::to_string(i % 10) + "\r\n";  // 4 octets a line: CRLF straddles 64 KiB chunks
        want += "l" + std::to_string(i % 10) + "\n";
    }
    Message msg("Subject: big\r\n\r\n", body, 1000);
    REQUIRE(msg.body.on_disk());
    auto r = maildir_delivery(d.file("md"))->deliver(msg.m);
    unsetenv("TMPDIR");
    REQUIRE(r.ok());
    std::string got = slurp(r->where);
    std::string head = "Return-Path: <alice@a.example>\nX-Original-To: bob@b.example\nX-Original-To: carol@c.example\n"
                       "Subject: big\n\n";
    REQUIRE(got.size() == head.size() + want.size());
    CHECK(got == head + want);
}

TEST_CASE("deliver: a header ending in a bare CR joins the body's LF into one line end") {
    TmpDir d;
    Message msg("Subject: x\r", "\nbody\r\n");
    auto r = maildir_delivery(d.file("md"))->deliver(msg.m);
    REQUIRE(r.ok());
    CHECK(slurp(r->where) ==
          "Return-Path: <alice@a.example>\nX-Original-To: bob@b.example\nX-Original-To: carol@c.example\n"
          "Subject: x\nbody\n");
}

TEST_CASE("deliver: pickup directory: NAME.eml, CRLF, X-Sender and X-Receiver") {
    TmpDir d;
    const std::string dir = d.file("pickup");
    Message msg("Subject: hi\n\n", "a\nb\r\n.c\rd");
    auto r = pickup_delivery(dir)->deliver(msg.m);
    REQUIRE(r.ok());
    CHECK(r->accepted);
    CHECK(r->reply.code == 250);
    auto names = entries(dir);
    REQUIRE(names.size() == 1);  // no temporary file left
    const std::string& n = names[0];
    REQUIRE(n.size() > 4);
    CHECK(n.substr(n.size() - 4) == ".eml");
    CHECK(n[0] != '.');
    CHECK(r->where == dir + "/" + n);
    CHECK(slurp(r->where) ==
          "X-Sender: alice@a.example\r\nX-Receiver: bob@b.example\r\nX-Receiver: carol@c.example\r\n"
          "Subject: hi\r\n\r\na\r\nb\r\n.c\r\nd");
}

TEST_CASE("deliver: a message without a body spool is just the header") {
    TmpDir d;
    OutMessage m;
    m.sender = "s@x";
    m.rcpts = {"r@y"};
    m.header = "Subject: empty\r\n\r\n";
    auto r = pickup_delivery(d.path)->deliver(m);
    REQUIRE(r.ok());
    CHECK(slurp(r->where) == "X-Sender: s@x\r\nX-Receiver: r@y\r\nSubject: empty\r\n\r\n");
}

TEST_CASE("deliver: a target that cannot be written is a tempfail and leaves nothing behind") {
    TmpDir d;
    Message msg("Subject: hi\r\n\r\n", "body\r\n");
    SECTION("missing parent") {
        auto a = maildir_delivery(d.file("no/such/Maildir"))->deliver(msg.m);
        REQUIRE_FALSE(a.ok());
        CHECK(a.error().kind == ErrorKind::tempfail);
        auto b = pickup_delivery(d.file("no/such/pickup"))->deliver(msg.m);
        REQUIRE_FALSE(b.ok());
        CHECK(b.error().kind == ErrorKind::tempfail);
        CHECK(entries(d.path).empty());
    }
    SECTION("a regular file in the way") {
        const std::string f = d.write("plain-file", "x");
        auto a = maildir_delivery(f)->deliver(msg.m);
        REQUIRE_FALSE(a.ok());
        CHECK(a.error().kind == ErrorKind::tempfail);
        auto b = pickup_delivery(f)->deliver(msg.m);
        REQUIRE_FALSE(b.ok());
        CHECK(b.error().kind == ErrorKind::tempfail);
        CHECK(slurp(f) == "x");
        CHECK(entries(d.path) == std::vector<std::string>{"plain-file"});
    }
    SECTION("Maildir new/ that is not a directory: the temporary file is removed") {
        const std::string md = d.file("md");
        fs::create_directories(md + "/tmp");
        d.write("md/new", "not a directory");
        auto a = maildir_delivery(md)->deliver(msg.m);
        REQUIRE_FALSE(a.ok());
        CHECK(a.error().kind == ErrorKind::tempfail);
        CHECK(entries(md + "/tmp").empty());
        CHECK(files_below(md) == 1);  // just the file called new
    }
    SECTION("a directory without write permission") {
        if (::geteuid() == 0) {
            WARN("running as root: permissions are not enforced, skipped");
            return;
        }
        const std::string ro = d.file("ro");
        fs::create_directories(ro);
        fs::permissions(ro, fs::perms::owner_read | fs::perms::owner_exec);
        auto a = maildir_delivery(ro + "/Maildir")->deliver(msg.m);
        auto b = pickup_delivery(ro)->deliver(msg.m);
        fs::permissions(ro, fs::perms::owner_all);
        REQUIRE_FALSE(a.ok());
        CHECK(a.error().kind == ErrorKind::tempfail);
        REQUIRE_FALSE(b.ok());
        CHECK(b.error().kind == ErrorKind::tempfail);
        CHECK(entries(ro).empty());
    }
}

TEST_CASE("deliver: unique_name is distinct over many calls and a safe file name") {
    std::set<std::string> seen;
    for (int i = 0; i < 20000; ++i) {
        std::string n = unique_name();
        REQUIRE(!n.empty());
        REQUIRE(n[0] != '.');
        REQUIRE(n.find('/') == std::string::npos);
        REQUIRE(n.find(':') == std::string::npos);  // Maildir uses ':' for flags
        REQUIRE(seen.insert(n).second);
    }
}

// Spool reading as the deliveries use it: each, read_at, clear.
TEST_CASE("spool: each and read_at give back what was written, in memory and on disk") {
    TmpDir d;
    setenv("TMPDIR", d.path.c_str(), 1);
    std::string data;
    for (int i = 0; i < 40000; ++i) data += static_cast<char>(i * 7 + i / 256);
    for (std::size_t limit : {std::size_t{1} << 20, std::size_t{100}}) {
        Spool s(limit);
        for (std::size_t i = 0; i < data.size(); i += 333) REQUIRE(s.write(std::string_view(data).substr(i, 333)).ok());
        CHECK(s.on_disk() == (limit == 100));
        std::string got;
        std::size_t calls = 0;
        REQUIRE(s.each([&](std::string_view p) -> Result<void> {
                     got.append(p);
                     ++calls;
                     return {};
                 }).ok());
        CHECK(got == data);
        // each can run again (the delivery retries), and stops at the first error.
        std::size_t seen = 0;
        auto stop = s.each([&](std::string_view p) -> Result<void> {
            seen += p.size();
            return Error{ErrorKind::tempfail, "disk full"};
        });
        REQUIRE_FALSE(stop.ok());
        CHECK(stop.error().text == "disk full");
        CHECK(seen > 0);
        CHECK(seen <= data.size());

        char buf[1000];
        auto a = s.read_at(0, buf, sizeof buf);
        REQUIRE(a.ok());
        CHECK(std::string(buf, *a) == data.substr(0, *a));
        CHECK(*a > 0);
        auto b = s.read_at(data.size() - 10, buf, sizeof buf);
        REQUIRE(b.ok());
        CHECK(*b == 10);
        CHECK(std::string(buf, *b) == data.substr(data.size() - 10));
        auto e = s.read_at(data.size(), buf, sizeof buf);
        REQUIRE(e.ok());
        CHECK(*e == 0);
        auto past = s.read_at(data.size() + 5000, buf, sizeof buf);
        REQUIRE(past.ok());
        CHECK(*past == 0);

        s.clear();
        CHECK(s.size() == 0);
        CHECK_FALSE(s.on_disk());
        std::size_t after = 0;
        REQUIRE(s.each([&](std::string_view p) -> Result<void> {
                     after += p.size();
                     return {};
                 }).ok());
        CHECK(after == 0);
        auto z = s.read_at(0, buf, sizeof buf);
        REQUIRE(z.ok());
        CHECK(*z == 0);
        // Usable again after clear.
        REQUIRE(s.write("again").ok());
        std::string again;
        REQUIRE(s.each([&](std::string_view p) -> Result<void> {
                     again.append(p);
                     return {};
                 }).ok());
        CHECK(again == "again");
    }
    unsetenv("TMPDIR");
    CHECK(entries(d.path).empty());
}

TEST_CASE("deliver: the one target parser takes every kind and says what it wants", "[deliver]") {
    auto ok = [](std::string_view s) {
        auto t = parse_delivery_target(s);
        REQUIRE(t.ok());
        CHECK(target_text(*t) == s);
        return *t;
    };
    auto t = ok("lmtp:127.0.0.1:24");
    CHECK(t.kind == DeliveryTarget::Kind::lmtp);
    CHECK(t.relay.host == "127.0.0.1");
    CHECK(t.relay.port == "24");
    CHECK(t.dir.empty());
    t = ok("lmtp:[::1]:2424");
    CHECK(t.relay.host == "::1");
    t = ok("lmtp:unix:/run/dovecot/lmtp");
    CHECK(t.kind == DeliveryTarget::Kind::lmtp);
    CHECK(t.dir == "/run/dovecot/lmtp");
    t = ok("smtp:mx.example:25");
    CHECK(t.kind == DeliveryTarget::Kind::relay);
    t = ok("maildir:/var/mail/x");
    CHECK(t.kind == DeliveryTarget::Kind::maildir);
    CHECK(t.dir == "/var/mail/x");
    CHECK(ok("pickup:spool").kind == DeliveryTarget::Kind::pickup);
    t = ok("sendmail");
    CHECK(t.kind == DeliveryTarget::Kind::sendmail);
    CHECK(t.dir.empty());
    CHECK(ok("sendmail:/usr/lib/sendmail").dir == "/usr/lib/sendmail");
    t = ok("pipe:/usr/lib/dovecot/dovecot-lda -f ${sender} -a ${recipient}");
    CHECK(t.kind == DeliveryTarget::Kind::pipe);
    CHECK(t.argv == std::vector<std::string>{"/usr/lib/dovecot/dovecot-lda", "-f", "${sender}", "-a", "${recipient}"});
    // Runs of spaces separate, and make no empty arguments.
    t = parse_delivery_target("pipe:/bin/prog  a   b ").value();
    CHECK(t.argv == std::vector<std::string>{"/bin/prog", "a", "b"});

    for (const char* bad : {"", "lmtp", "lmtp:", "lmtp:host", "lmtp:host:", "lmtp:unix:", "lmtp:unix:relative",
                            "maildir:", "pickup:", "sendmail:", "sendmail:relative", "pipe:", "pipe: ",
                            "pipe:prog arg", "ftp:x:1", "/var/mail", "smtp:nowhere"}) {
        INFO(bad);
        auto r = parse_delivery_target(bad);
        REQUIRE_FALSE(r.ok());
        CHECK(r.error().kind == ErrorKind::usage);
    }
    CHECK_FALSE(parse_delivery_target(std::string("pipe:/bin/x\nmore")).ok());
    CHECK_FALSE(parse_delivery_target(std::string(5000, 'x')).ok());
    std::string many = "pipe:/bin/x";
    for (int i = 0; i < 70; ++i) many += " a";
    CHECK_FALSE(parse_delivery_target(many).ok());
}

TEST_CASE("deliver: a delivery program's exit status as sysexits(3) says", "[deliver]") {
    CHECK(exit_reply(0, "p").code == 250);
    CHECK(exit_reply(75, "p").code == 451);  // EX_TEMPFAIL
    CHECK(exit_reply(71, "p").code == 451);  // EX_OSERR
    CHECK(exit_reply(1, "p").code == 451);   // not a sysexits status: not final
    CHECK(exit_reply(137, "p").code == 451);
    CHECK(exit_reply(67, "p").code == 550);  // EX_NOUSER
    CHECK(exit_reply(67, "p").lines.front().rfind("5.1.1 ", 0) == 0);
    CHECK(exit_reply(77, "p").code == 550);  // EX_NOPERM
    CHECK(exit_reply(65, "p").code == 554);
}

TEST_CASE("deliver: pipe runs the program once per recipient with the message on stdin", "[deliver]") {
    TmpDir d;
    // The program is a script run by its #! line: no shell between the target and the program's argv.
    std::string prog = d.write("prog", "#!/bin/sh\nout=\"$1/$(echo \"$3\" | tr @ _)\"\nprintf '%s\\n' \"$2\" >\"$out\"\ncat >>\"$out\"\nexit \"$4\"\n");
    REQUIRE(::chmod(prog.c_str(), 0700) == 0);
    Message msg("Subject: hi\r\n\r\n", "body\r\n");
    SECTION("every run exits 0: accepted") {
        auto t = parse_delivery_target("pipe:" + prog + " " + d.path + " from=${sender} ${recipient} 0").value();
        auto r = make_delivery(t, "h", std::chrono::seconds(5))->deliver(msg.m);
        REQUIRE(r.ok());
        CHECK(r->accepted);
        CHECK(r->reply.code == 250);
        CHECK(slurp(d.file("bob_b.example")) == "from=alice@a.example\nSubject: hi\r\n\r\nbody\r\n");
        CHECK(slurp(d.file("carol_c.example")) == "from=alice@a.example\nSubject: hi\r\n\r\nbody\r\n");
    }
    SECTION("EX_TEMPFAIL: a temporary failure of the whole message") {
        auto t = parse_delivery_target("pipe:" + prog + " " + d.path + " x ${recipient} 75").value();
        auto r = make_delivery(t, "h", std::chrono::seconds(5))->deliver(msg.m);
        REQUIRE(r.ok());
        CHECK_FALSE(r->accepted);
        CHECK(r->reply.code == 451);
    }
    SECTION("EX_NOUSER: refused") {
        auto t = parse_delivery_target("pipe:" + prog + " " + d.path + " x ${recipient} 67").value();
        auto r = make_delivery(t, "h", std::chrono::seconds(5))->deliver(msg.m);
        REQUIRE(r.ok());
        CHECK_FALSE(r->accepted);
        CHECK(r->reply.code == 550);
    }
    SECTION("a program that cannot be run: temporary") {
        auto t = parse_delivery_target("pipe:" + d.file("missing")).value();
        auto r = make_delivery(t, "h", std::chrono::seconds(5))->deliver(msg.m);
        if (r.ok()) {
            CHECK_FALSE(r->accepted);
            CHECK(r->reply.code / 100 == 4);
        } else {
            CHECK(r.error().kind == ErrorKind::tempfail);
        }
    }
}
