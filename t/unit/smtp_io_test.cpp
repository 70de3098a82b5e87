// Session I/O over a socketpair: greeting, pipelined replies, deadlines, early talkers, stop.
#include "libmail/io/smtp_io.hpp"
#include "libmail/smtp/smtp_server.hpp"

#include <catch2/catch.hpp>

#include <sys/socket.h>
#include <thread>
#include <unistd.h>

using namespace mail;

namespace {

struct Accepting : SmtpHandler {
    SmtpReply on_helo(std::string_view, bool) override { return SmtpReply(250, "OK"); }
    SmtpReply on_mail(const std::string&, const SmtpCommand&) override { return SmtpReply(250, "2.1.0 OK"); }
    SmtpReply on_rcpt(const std::string&, const SmtpCommand&) override { return SmtpReply(250, "2.1.5 OK"); }
    SmtpReply on_data() override { return SmtpReply(354, "go"); }
    void on_data_chunk(std::string_view d) override { data += d; }
    SmtpReply on_data_end(std::string_view) override { return SmtpReply(250, "2.0.0 taken"); }
    void on_reset() override {}
    bool on_auth(std::string_view, std::string_view, std::string_view) override { return false; }
    void on_protocol_error(std::string_view) override {}
    std::string data;
};

// Reads everything until the peer closes (or 5 s pass).
std::string drain(int fd) {
    std::string out;
    char buf[4096];
    auto until = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    Conn c(fd, fd, false);
    while (std::chrono::steady_clock::now() < until) {
        auto n = c.read(buf, sizeof buf, until);
        if (!n || *n == 0) break;
        out.append(buf, *n);
    }
    return out;
}

struct Pair {
    int fds[2];
    Pair() { REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM, 0, fds) == 0); }
    ~Pair() {
        ::close(fds[0]);
        ::close(fds[1]);
    }
};

// Runs srv over the server end of p in a thread until the session ends, then shuts that end.
std::thread serve_on(Pair& p, SmtpServer& srv, const SessionTimes& t, const std::atomic<bool>* stop = nullptr) {
    return std::thread([&p, &srv, t, stop] {
        Conn c(p.fds[0], p.fds[0], false);
        run_smtp_session(c, srv, t, nullptr, stop);
        ::shutdown(p.fds[0], SHUT_WR);
    });
}

} // namespace

TEST_CASE("smtp_io: a pipelined session is answered in order, then closed on QUIT") {
    Pair p;
    Accepting h;
    SmtpServer srv(SmtpServerConfig{}, h);
    std::string script = "EHLO c\r\nMAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nDATA\r\nSubject: x\r\n\r\nhi\r\n.\r\nQUIT\r\n";
    REQUIRE(::write(p.fds[1], script.data(), script.size()) == static_cast<ssize_t>(script.size()));
    SessionTimes t;
    t.greet_delay = std::chrono::milliseconds(50);
    std::thread th = serve_on(p, srv, t);
    // The client talked before the greeting: the session is refused (the bytes were already there).
    std::string out = drain(p.fds[1]);
    th.join();
    CHECK(out.rfind("554 5.5.0", 0) == 0);
    CHECK(h.data.empty());
}

TEST_CASE("smtp_io: greeting first, then pipelined commands answered together") {
    Pair p;
    Accepting h;
    SmtpServer srv(SmtpServerConfig{}, h);
    SessionTimes t;
    std::thread th = serve_on(p, srv, t);
    char buf[512];
    ssize_t n = ::read(p.fds[1], buf, sizeof buf);
    REQUIRE(n > 0);
    CHECK(std::string(buf, static_cast<std::size_t>(n)).rfind("220 ", 0) == 0);
    std::string script = "EHLO c\r\nMAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nDATA\r\nSubject: x\r\n\r\n..hi\r\n.\r\nQUIT\r\n";
    REQUIRE(::write(p.fds[1], script.data(), script.size()) == static_cast<ssize_t>(script.size()));
    std::string out = drain(p.fds[1]);
    th.join();
    CHECK(out.find("250 2.1.0 OK\r\n250 2.1.5 OK\r\n354 go\r\n250 2.0.0 taken\r\n221 ") != std::string::npos);
    CHECK(h.data == "Subject: x\r\n\r\n.hi\r\n");
}

TEST_CASE("smtp_io: a silent client gets 421 after the command timeout; dripping does not extend it") {
    Pair p;
    Accepting h;
    SmtpServer srv(SmtpServerConfig{}, h);
    SessionTimes t;
    t.command_timeout = std::chrono::milliseconds(600);
    std::thread th = serve_on(p, srv, t);
    char buf[512];
    REQUIRE(::read(p.fds[1], buf, sizeof buf) > 0);
    std::atomic<int> sent{0};
    std::string line = "EHLO xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\r\n";
    std::thread drip([&] {
        for (char ch : line) {
            if (::send(p.fds[1], &ch, 1, MSG_NOSIGNAL) != 1) break;
            ++sent;
            std::this_thread::sleep_for(std::chrono::milliseconds(100));
        }
    });
    std::string out = drain(p.fds[1]);
    int when = sent.load();
    th.join();
    drip.join();
    CHECK(out.find("421 4.4.2") != std::string::npos);
    CHECK(out.find("250") == std::string::npos);
    // Cut off in the middle of the line: the octets kept coming, the deadline did not move.
    CHECK(when > 1);
    CHECK(when < static_cast<int>(line.size()));
}

TEST_CASE("smtp_io: a stop request ends an idle session with 421") {
    Pair p;
    Accepting h;
    SmtpServer srv(SmtpServerConfig{}, h);
    SessionTimes t;
    std::atomic<bool> stop{false};
    std::thread th = serve_on(p, srv, t, &stop);
    char buf[512];
    REQUIRE(::read(p.fds[1], buf, sizeof buf) > 0);
    stop = true;
    std::string out = drain(p.fds[1]);
    th.join();
    CHECK(out.rfind("421 4.3.2", 0) == 0);
}

TEST_CASE("smtp_io: DATA slower than the minimum rate gets 421 after the grace period") {
    Pair p;
    Accepting h;
    SmtpServer srv(SmtpServerConfig{}, h);
    SessionTimes t;
    t.data_grace = std::chrono::milliseconds(300);
    t.min_data_rate = 1000;
    std::thread th = serve_on(p, srv, t);
    char buf[512];
    REQUIRE(::read(p.fds[1], buf, sizeof buf) > 0);
    std::string cmds = "EHLO c\r\nMAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nDATA\r\n";
    REQUIRE(::write(p.fds[1], cmds.data(), cmds.size()) == static_cast<ssize_t>(cmds.size()));
    std::atomic<bool> done{false};
    std::thread slow([&] {
        for (int i = 0; i < 100 && !done; ++i) {  // 10 octets a second
            if (::send(p.fds[1], "x", 1, MSG_NOSIGNAL) != 1) break;
            std::this_thread::sleep_for(std::chrono::milliseconds(100));
        }
    });
    std::string out = drain(p.fds[1]);
    done = true;
    th.join();
    slow.join();
    CHECK(out.find("354") != std::string::npos);
    CHECK(out.find("421 4.4.2 localhost data rate too low") != std::string::npos);
}

TEST_CASE("smtp_io: a busy session still ends at the session time limit") {
    Pair p;
    Accepting h;
    SmtpServer srv(SmtpServerConfig{}, h);
    SessionTimes t;
    t.session_time = std::chrono::milliseconds(700);
    std::thread th = serve_on(p, srv, t);
    char buf[512];
    REQUIRE(::read(p.fds[1], buf, sizeof buf) > 0);
    std::atomic<bool> done{false};
    std::atomic<int> noops{0};
    std::thread busy([&] {
        for (int i = 0; i < 100 && !done; ++i) {  // a NOOP every 100 ms: never idle for long
            if (::send(p.fds[1], "NOOP\r\n", 6, MSG_NOSIGNAL) != 6) break;
            ++noops;
            std::this_thread::sleep_for(std::chrono::milliseconds(100));
        }
    });
    std::string out = drain(p.fds[1]);
    done = true;
    th.join();
    busy.join();
    CHECK(out.find("250 2.0.0 OK") != std::string::npos);
    CHECK(out.find("421 4.4.2 localhost session time limit reached") != std::string::npos);
    CHECK(noops < 100);
}
