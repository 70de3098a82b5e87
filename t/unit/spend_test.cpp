#include "libmail/io/net.hpp"
#include "libmail/policy/postage.hpp"
#include "libmail/policy/spend.hpp"
#include "tmpdir.hpp"

#include <catch2/catch.hpp>

#include <future>
#include <sstream>
#include <sys/socket.h>
#include <thread>
#include <unistd.h>

using namespace mail;

namespace {
KeyPair fixed_key(char c) {
    KeyPair k;
    k.priv = std::string(32, c);
    k.pub = *ed25519_public(k.priv);
    return k;
}

// Stamps of one book of the authority fixed_key(1), owned by fixed_key(2).
struct Stamps {
    KeyPair auth = fixed_key(1), owner = fixed_key(2);
    BookCert book = *issue_book_with_id(auth, owner.pub, 10, 1900000000, std::string(16, '\x07'));
    std::int64_t date = 1800000000;
    PostageStamp stamp(std::int64_t index, std::string_view msgid) const {
        std::string h(32, 'h'), hh(32, 'f');
        return *parse_postage(*make_postage(book, owner.priv, index, "bob@ours.example", date, msgid, h, hh));
    }
    std::string text(std::int64_t index, std::string_view msgid) const { return format_postage(stamp(index, msgid)); }
};

const std::string nonce1 = "00112233445566778899aabbccddeeff";
const std::string nonce2 = "ffeeddccbbaa99887766554433221100";

// A spend server on an ephemeral loopback port, serving n requests.
struct Server {
    TmpDir dir;
    std::unique_ptr<Store> store;
    std::ostringstream log;
    std::string addr;
    std::thread thread;
    explicit Server(int n, std::vector<KeyPair> keys = {fixed_key(1)}) {
        store = std::move(*open_store(dir.file("a.db")));
        std::promise<std::string> bound;
        auto f = bound.get_future();
        SpendServerOptions opt;
        opt.listen = {"127.0.0.1:0"};
        opt.max_requests = n;
        opt.idle_timeout_ms = 2000;
        opt.on_listen = [&bound](const std::string& a) { bound.set_value(a); };
        thread = std::thread([this, opt, keys] { REQUIRE(serve_spend(*store, keys, opt, log).ok()); });
        addr = f.get();
    }
    ~Server() { thread.join(); }
};
} // namespace

TEST_CASE("spend: the answers record a stamp once per message, signed over the request and nonce") {
    TmpDir d;
    auto s = open_store(d.file("s.db"));
    REQUIRE(s.ok());
    Stamps st;
    std::vector<KeyPair> keys{st.auth};
    std::int64_t now = st.date + 100;
    std::string t0 = st.text(0, "<m1@x>");
    std::string a = spend_answer(**s, keys, "SPEND " + nonce1 + " " + t0, now);
    CHECK(a.rfind("250 fresh ", 0) == 0);
    auto r = parse_spend_answer(a, nonce1, t0, st.auth.pub);
    REQUIRE(r.ok());
    CHECK(*r == SpendState::fresh);
    // The same answer does not serve another nonce, another stamp, or another key.
    CHECK(parse_spend_answer(a, nonce2, t0, st.auth.pub).error().kind == ErrorKind::data);
    CHECK_FALSE(parse_spend_answer(a, nonce1, st.text(0, "<m2@x>"), st.auth.pub).ok());
    CHECK_FALSE(parse_spend_answer(a, nonce1, t0, fixed_key(3).pub).ok());
    // Nor with its code changed, nor unsigned.
    CHECK_FALSE(parse_spend_answer("550" + a.substr(3), nonce1, t0, st.auth.pub).ok());
    CHECK_FALSE(parse_spend_answer("250 fresh", nonce1, t0, st.auth.pub).ok());
    CHECK_FALSE(parse_spend_answer("250", nonce1, t0, st.auth.pub).ok());
    CHECK_FALSE(parse_spend_answer("", nonce1, t0, st.auth.pub).ok());

    std::string again = spend_answer(**s, keys, "SPEND " + nonce2 + " " + t0, now);
    CHECK(*parse_spend_answer(again, nonce2, t0, st.auth.pub) == SpendState::same_message);
    std::string t0b = st.text(0, "<m2@x>");  // index 0 stamped again, on another message: a double spend
    std::string spent = spend_answer(**s, keys, "SPEND " + nonce1 + " " + t0b, now);
    CHECK(*parse_spend_answer(spent, nonce1, t0b, st.auth.pub) == SpendState::other_message);

    // Nothing spends what the owner did not sign.
    CHECK(spend_answer(**s, keys, "SPEND book:07070707070707070707070707070707:1 m1 1900000000", now).rfind("530 ", 0) == 0);
    std::string forged = t0;
    forged.replace(forged.find("; i=0;"), 6, "; i=1;");
    CHECK(spend_answer(**s, keys, "SPEND " + nonce1 + " " + forged, now) == "554 bad signature");
    std::string t1 = st.text(1, "<m3@x>");
    CHECK(spend_answer(**s, {fixed_key(3)}, "SPEND " + nonce1 + " " + t1, now) == "554 not a book of this authority");
    CHECK(spend_answer(**s, keys, "SPEND " + nonce1 + " " + t1, st.date + 40 * 86400) == "554 expired");
    // ... and index 1 is still fresh for its owner.
    CHECK(spend_answer(**s, keys, "SPEND " + nonce1 + " " + t1, now).rfind("250 fresh ", 0) == 0);

    CHECK(spend_answer(**s, keys, "SPEND " + nonce1, now).rfind("500", 0) == 0);
    CHECK(spend_answer(**s, keys, "SPEND short " + t1, now) == "500 bad nonce");
    CHECK(spend_answer(**s, keys, "SPEND " + nonce1 + " v=2; junk", now) == "500 malformed stamp");
    CHECK(spend_answer(**s, keys, "HELO x", now).rfind("500", 0) == 0);
}

TEST_CASE("spend: remote_spend against a server on loopback") {
    Server srv(3);
    Stamps st;
    auto a = remote_spend(srv.addr, st.stamp(7, "<m1@x>"), 2000);
    REQUIRE(a.ok());
    CHECK(*a == SpendState::fresh);
    CHECK(*remote_spend(srv.addr, st.stamp(7, "<m1@x>"), 2000) == SpendState::same_message);
    CHECK(*remote_spend(srv.addr, st.stamp(7, "<m2@x>"), 2000) == SpendState::other_message);
    CHECK(srv.log.str().find("event=spend peer=127.0.0.1:") != std::string::npos);
}

TEST_CASE("spend: an authority that is down or silent is a tempfail within the timeout") {
    // A port that was just free: nothing listens there.
    auto l = listen_tcp(*parse_host_port("127.0.0.1:0"));
    REQUIRE(l.ok());
    std::string closed = local_address(*l);
    ::close(*l);
    PostageStamp r = Stamps().stamp(7, "<m@x>");
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

TEST_CASE("spend: a server whose key did not issue the book is not believed") {
    Server srv(1, {fixed_key(3)});
    auto a = remote_spend(srv.addr, Stamps().stamp(2, "<m@x>"), 2000);
    REQUIRE_FALSE(a.ok());
    CHECK(a.error().kind == ErrorKind::data);
}

TEST_CASE("spend: an overlong request line gets 500 and the connection closes") {
    Server srv(1);
    auto fd = connect_tcp(*parse_host_port(srv.addr), std::chrono::steady_clock::now() + std::chrono::seconds(2));
    REQUIRE(fd.ok());
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(2);
    REQUIRE(write_all(*fd, std::string(spend_max_line + 100, 'x') + "\r\n", deadline).ok());
    std::string buf;
    auto line = read_line(*fd, buf, 1024, deadline);
    REQUIRE(line.ok());
    CHECK(*line == "500 line too long");
    ::close(*fd);
    // One request lets the server stop.
    CHECK(remote_spend(srv.addr, Stamps().stamp(1, "<m@x>"), 2000).ok());
}
