#include "libmail/net.hpp"
#include "libmail/spend.hpp"
#include "tmpdir.hpp"

#include <catch2/catch.hpp>

#include <future>
#include <sstream>
#include <sys/socket.h>
#include <thread>
#include <unistd.h>

using namespace mail;

namespace {
// A spend server on an ephemeral loopback port, serving n requests.
struct Server {
    TmpDir dir;
    std::unique_ptr<Store> store;
    std::ostringstream log;
    std::string addr;
    std::thread thread;
    explicit Server(int n) {
        store = std::move(*open_store(dir.file("a.db")));
        std::promise<std::string> bound;
        auto f = bound.get_future();
        SpendServerOptions opt;
        opt.listen = {"127.0.0.1:0"};
        opt.max_requests = n;
        opt.idle_timeout_ms = 2000;
        opt.on_listen = [&bound](const std::string& a) { bound.set_value(a); };
        thread = std::thread([this, opt] { REQUIRE(serve_spend(*store, opt, log).ok()); });
        addr = f.get();
    }
    ~Server() { thread.join(); }
};
} // namespace

TEST_CASE("spend: the answers record a stamp once per message") {
    TmpDir d;
    auto s = open_store(d.file("s.db"));
    REQUIRE(s.ok());
    CHECK(spend_answer(**s, "SPEND book:ab:1 m1 1900000000", 100) == "250 fresh");
    CHECK(spend_answer(**s, "SPEND book:ab:1 m1 1900000000", 100) == "251 same");
    CHECK(spend_answer(**s, "SPEND book:ab:1 m2 1900000000", 100) == "550 spent");
    CHECK(spend_answer(**s, "SPEND book:ab:1 m2", 100).rfind("500", 0) == 0);
    CHECK(spend_answer(**s, "SPEND 1:20:x m2 5", 100) == "500 bad stamp key");
    CHECK(spend_answer(**s, "HELO x", 100).rfind("500", 0) == 0);
    CHECK(spend_answer(**s, "SPEND book:ab:1 m2 soon", 100) == "500 bad expiry");
}

TEST_CASE("spend: remote_spend against a server on loopback") {
    Server srv(3);
    SpendRecord r{"book:abcd:7", "<m1@x>|00ff", 0, 1900000000};
    auto a = remote_spend(srv.addr, r, 2000);
    REQUIRE(a.ok());
    CHECK(*a == SpendState::fresh);
    CHECK(*remote_spend(srv.addr, r, 2000) == SpendState::same_message);
    r.message = "<m2@x>|00ff";
    CHECK(*remote_spend(srv.addr, r, 2000) == SpendState::other_message);
    CHECK(srv.log.str().find("event=spend peer=127.0.0.1:") != std::string::npos);
}

TEST_CASE("spend: an authority that is down or silent is a tempfail within the timeout") {
    // A port that was just free: nothing listens there.
    auto l = listen_tcp(*parse_host_port("127.0.0.1:0"));
    REQUIRE(l.ok());
    std::string closed = local_address(*l);
    ::close(*l);
    SpendRecord r{"book:abcd:7", "m", 0, 1};
    auto t0 = std::chrono::steady_clock::now();
    auto down = remote_spend(closed, r, 1000);
    REQUIRE_FALSE(down.ok());
    CHECK(down.error().kind == ErrorKind::tempfail);

    // Listening but never answering: the kernel completes the connection, nobody reads.
    auto silent = listen_tcp(*parse_host_port("127.0.0.1:0"));
    REQUIRE(silent.ok());
    t0 = std::chrono::steady_clock::now();
    auto quiet = remote_spend(local_address(*silent), r, 300);
    auto took = std::chrono::steady_clock::now() - t0;
    REQUIRE_FALSE(quiet.ok());
    CHECK(quiet.error().kind == ErrorKind::tempfail);
    CHECK(took < std::chrono::seconds(3));
    ::close(*silent);
    CHECK_FALSE(remote_spend("no-port", r, 100).ok());
}

TEST_CASE("spend: an overlong request line gets 500 and the connection closes") {
    Server srv(1);
    auto fd = connect_tcp(*parse_host_port(srv.addr), std::chrono::steady_clock::now() + std::chrono::seconds(2));
    REQUIRE(fd.ok());
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(2);
    REQUIRE(write_all(*fd, std::string(5000, 'x') + "\r\n", deadline).ok());
    std::string buf;
    auto line = read_line(*fd, buf, 1024, deadline);
    REQUIRE(line.ok());
    CHECK(*line == "500 line too long");
    ::close(*fd);
    // One request lets the server stop.
    CHECK(remote_spend(srv.addr, SpendRecord{"book:1:1", "m", 0, 1}, 2000).ok());
}
