// The SOURCE/GET extension: ids, and SourceSession driven through SmtpServer over a real store
// (no sockets, no DNS: only the receiving side of SOURCE and the serving side of GET).
#include "libmail/app/context.hpp"
#include "libmail/base/clock.hpp"
#include "libmail/base/config.hpp"
#include "libmail/daemon/source.hpp"
#include "libmail/daemon/source_util.hpp"
#include "libmail/store/store.hpp"
#include "tmpdir.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
#include <filesystem>
#include <set>
#include <string>
#include <vector>

using namespace mail;

namespace {

bool lower_hex(const std::string& s) {
    return std::all_of(s.begin(), s.end(), [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

std::string upper(std::string s) {
    for (char& c : s)
        if (c >= 'a' && c <= 'f') c = static_cast<char>(c - 32);
    return s;
}

const std::string no_message = "550 5.7.1 no message by that id\r\n";

struct Rig {
    TmpDir d;
    std::unique_ptr<Context> ctx;
    std::unique_ptr<Store> store;
    SourcePolicy policy;
    int wakes = 0;

    explicit Rig(bool deliver = true) {
        CommonOptions co;
        co.config = d.write("conf", "");
        co.db = d.file("store.db");
        co.log = "none";
        auto c = make_context("msourced", co, fixed_env({{"HOME", d.path}}));
        REQUIRE(c);
        ctx = std::make_unique<Context>(std::move(*c));
        auto s = open_store(d.file("store.db"));
        REQUIRE(s);
        store = std::move(*s);
        REQUIRE(store->domain_add("b.example", 1));
        policy.hostname = "mx.b.example";
        policy.smtp.hostname = "mx.b.example";
        policy.hold_dir = d.file("hold");
        // The sender domain's MX is the test's client: notices are taken only from there (no DNS asked).
        REQUIRE(add_mx_map_entry(policy.mx_map, "a.example=192.0.2.9:25"));
        // One window for the whole test run: no boundary falls inside a test.
        policy.rate_window = 1000000000;
        if (deliver) {
            DeliveryTarget t;
            t.kind = DeliveryTarget::Kind::maildir;
            t.dir = d.file("Maildir");
            policy.deliver = t;
        }
        policy.wake = [this] { ++wakes; };
    }

    // A held outgoing row for GET, its file holding content.
    SourceOut hold(const std::string& content, const std::string& state = "notified", std::int64_t expires_in = 3600,
                   std::int64_t max_gets = 5) {
        SourceOut o;
        o.id = make_source_id();
        o.domain = "b.example";
        o.sender = "x@a.example";
        o.rcpts = {"y@b.example"};
        o.path = d.write("hold/" + o.id, content);
        o.size = static_cast<std::int64_t>(content.size());
        o.created = now();
        o.expires = now() + expires_in;
        o.max_gets = max_gets;
        o.state = state;
        auto a = store->source_out_add(o);
        REQUIRE(a);
        REQUIRE(*a);
        return o;
    }

    std::vector<SourceIn> partials() {
        auto l = store->source_in_list();
        REQUIRE(l);
        return *l;
    }

    std::size_t delivered() const {
        std::string dir = d.file("Maildir/new");
        if (!std::filesystem::exists(dir)) return 0;
        return static_cast<std::size_t>(std::distance(std::filesystem::directory_iterator(dir), {}));
    }
};

// One session from a client address.
struct Peer {
    SourceSession ss;
    SmtpServer srv;
    Peer(Rig& r, const std::string& client = "192.0.2.9:5555") : ss(r.policy, *r.ctx, *r.store, client), srv(r.policy.smtp, ss) {
        srv.greet();
        (void)srv.take_output();
    }
    std::string say(const std::string& bytes) {
        srv.feed(bytes);
        return srv.take_output();
    }
};

std::vector<std::string> lines_of(const std::string& out) {
    std::vector<std::string> v;
    std::size_t pos = 0;
    while (pos < out.size()) {
        std::size_t e = out.find("\r\n", pos);
        if (e == std::string::npos) e = out.size();
        v.push_back(out.substr(pos, e - pos));
        pos = e + 2;
    }
    return v;
}

std::string run(const MessageSource& src) {
    REQUIRE(static_cast<bool>(src));
    std::string got;
    auto r = src([&](std::string_view p) -> Result<void> {
        got.append(p);
        return {};
    });
    REQUIRE(r.ok());
    return got;
}

const std::string ehlo = "EHLO client.a.example\r\n";
const std::string txn = "MAIL FROM:<x@a.example>\r\nRCPT TO:<y@b.example>\r\n";

} // namespace

// ---- ids ----

TEST_CASE("make_source_id: 32 lower-case hex digits, distinct over 10,000 calls", "[source][source_session]") {
    std::set<std::string> ids;
    for (int i = 0; i < 10000; ++i) {
        std::string id = make_source_id();
        REQUIRE(id.size() == 32);
        REQUIRE(lower_hex(id));
        REQUIRE(valid_source_id(id));
        ids.insert(id);
    }
    CHECK(ids.size() == 10000);
}

TEST_CASE("valid_source_id: 32 hex digits of either case and nothing else", "[source][source_session]") {
    const std::string good = "0123456789abcdef0123456789ABCDEF";
    CHECK(valid_source_id(good));
    CHECK(valid_source_id(std::string(32, 'f')));
    CHECK(valid_source_id(std::string(32, 'F')));
    CHECK(valid_source_id(std::string(32, '0')));
    CHECK_FALSE(valid_source_id(""));
    CHECK_FALSE(valid_source_id(good.substr(1)));           // 31
    CHECK_FALSE(valid_source_id(good + "0"));               // 33
    CHECK_FALSE(valid_source_id(std::string(64, 'a')));
    for (char bad : {'g', 'G', 'x', ' ', '-', '\0', '.', '/', ':', '@', '`', '{'}) {
        std::string s = good;
        s[17] = bad;
        INFO("octet " << int(bad));
        CHECK_FALSE(valid_source_id(s));
    }
    CHECK_FALSE(valid_source_id("<" + good.substr(2) + ">"));
}

// ---- SOURCE ----

TEST_CASE("source: EHLO lists SOURCE", "[source][source_session]") {
    Rig r;
    Peer c(r);
    auto l = lines_of(c.say(ehlo));
    CHECK(std::find(l.begin(), l.end(), "250 SOURCE") != l.end());
}

TEST_CASE("source: a SOURCE notice is recorded as a partial message and ends the transaction", "[source][source_session]") {
    Rig r;
    Peer c(r);
    c.say(ehlo);
    CHECK(c.say(txn) == "250 2.1.0 sender ok\r\n250 2.1.5 recipient ok\r\n");
    const std::string id = make_source_id();
    std::int64_t before = now();
    // An upper-case id is taken and recorded in lower case.
    CHECK(c.say("SOURCE " + upper(id) + "\r\n") ==
          "250 2.6.0 " + id + " noted; the message will be fetched from the MX of a.example\r\n");
    auto p = r.partials();
    REQUIRE(p.size() == 1);
    CHECK(p[0].id == id);
    CHECK(p[0].domain == "a.example");
    CHECK(p[0].sender == "x@a.example");
    CHECK(p[0].rcpts == std::vector<std::string>{"y@b.example"});
    CHECK(p[0].client == "192.0.2.9:5555");
    CHECK(p[0].helo == "client.a.example");
    CHECK(p[0].received >= before);
    CHECK(p[0].expires == p[0].received + r.policy.partial_time);
    CHECK(p[0].next_try == p[0].received);
    CHECK(r.wakes == 1);
    CHECK(c.srv.messages() == 1);
    CHECK(r.delivered() == 0);
    // The transaction is over.
    CHECK(c.say("RCPT TO:<z@b.example>\r\n") == "503 5.5.1 need MAIL before RCPT\r\n");
    CHECK(c.say("MAIL FROM:<x@a.example>\r\n") == "250 2.1.0 sender ok\r\n");
}

TEST_CASE("source: the recipients of the notice are the accepted ones, normalised, without duplicates", "[source][source_session]") {
    Rig r;
    REQUIRE(r.store->domain_add("c.example", 1));
    Peer c(r);
    c.say(ehlo);
    c.say("MAIL FROM:<x@A.Example>\r\nRCPT TO:<y@B.EXAMPLE>\r\nRCPT TO:<q@elsewhere.example>\r\n"
          "RCPT TO:<y@b.example>\r\nRCPT TO:<w@c.example>\r\n");
    const std::string id = make_source_id();
    CHECK(c.say("SOURCE " + id + "\r\n").rfind("250 ", 0) == 0);
    auto p = r.partials();
    REQUIRE(p.size() == 1);
    CHECK(p[0].domain == "a.example");
    CHECK(p[0].rcpts == std::vector<std::string>{"y@b.example", "w@c.example"});
}

TEST_CASE("source: SOURCE with the null sender is refused; the transaction stays", "[source][source_session]") {
    Rig r;
    Peer c(r);
    c.say(ehlo);
    c.say("MAIL FROM:<>\r\nRCPT TO:<y@b.example>\r\n");
    CHECK(c.say("SOURCE " + make_source_id() + "\r\n") ==
          "550 5.7.1 SOURCE needs a sender domain to fetch from; use DATA\r\n");
    CHECK(r.partials().empty());
    CHECK(c.srv.messages() == 0);
    CHECK(r.wakes == 0);
    CHECK(c.say("RCPT TO:<z@b.example>\r\n") == "250 2.1.5 recipient ok\r\n");
}

TEST_CASE("source: SOURCE out of order", "[source][source_session]") {
    Rig r;
    Peer c(r);
    c.say(ehlo);
    const std::string id = make_source_id();
    CHECK(c.say("SOURCE " + id + "\r\n") == "503 5.5.1 need MAIL before SOURCE\r\n");
    c.say("MAIL FROM:<x@a.example>\r\n");
    CHECK(c.say("SOURCE " + id + "\r\n") == "554 5.5.1 no valid recipients\r\n");
    CHECK(r.partials().empty());
    // Still in the transaction: a recipient, then it works.
    CHECK(c.say("RCPT TO:<y@b.example>\r\n") == "250 2.1.5 recipient ok\r\n");
    CHECK(c.say("SOURCE " + id + "\r\n").rfind("250 2.6.0 ", 0) == 0);
    CHECK(r.partials().size() == 1);
}

TEST_CASE("source: a malformed id gets 501", "[source][source_session]") {
    Rig r;
    Peer c(r);
    c.say(ehlo);
    c.say(txn);
    const std::string id = make_source_id();
    for (const std::string& bad : {id.substr(1), id + "a", id.substr(0, 31) + "g", std::string(), "<" + id + ">",
                                   id + " x"}) {
        INFO("SOURCE " << bad);
        CHECK(c.say("SOURCE " + bad + "\r\n") == "501 5.5.4 Syntax: SOURCE <32 hex digits>\r\n");
    }
    CHECK(c.say("SOURCE\r\n") == "501 5.5.4 Syntax: SOURCE <32 hex digits>\r\n");
    CHECK(r.partials().empty());
    CHECK(c.srv.messages() == 0);
}

TEST_CASE("source: a recipient outside the protected domains is refused, so SOURCE has none", "[source][source_session]") {
    Rig r;
    Peer c(r);
    c.say(ehlo);
    c.say("MAIL FROM:<x@a.example>\r\n");
    CHECK(c.say("RCPT TO:<y@elsewhere.example>\r\n") == "554 5.7.1 relay access denied\r\n");
    CHECK(c.say("RCPT TO:<y%b.example@b.example>\r\n") == "554 5.7.1 relay access denied\r\n");
    CHECK(c.say("SOURCE " + make_source_id() + "\r\n") == "554 5.5.1 no valid recipients\r\n");
    CHECK(r.partials().empty());
}

TEST_CASE("source: the same notice twice is one partial message", "[source][source_session]") {
    Rig r;
    Peer c(r);
    c.say(ehlo);
    const std::string id = make_source_id();
    c.say(txn);
    CHECK(c.say("SOURCE " + id + "\r\n").rfind("250 ", 0) == 0);
    c.say(txn);
    CHECK(c.say("SOURCE " + id + "\r\n").rfind("250 ", 0) == 0);
    CHECK(r.partials().size() == 1);
    CHECK(c.srv.messages() == 2);
}

TEST_CASE("source: notices are rate limited per client address", "[source][source_session]") {
    Rig r;
    r.policy.get_limit = 2;
    Peer c(r);
    c.say(ehlo);
    for (int i = 0; i < 2; ++i) {
        c.say(txn);
        CHECK(c.say("SOURCE " + make_source_id() + "\r\n").rfind("250 ", 0) == 0);
    }
    c.say(txn);
    CHECK(c.say("SOURCE " + make_source_id() + "\r\n") == "450 4.7.1 too many notices, try again later\r\n");
    CHECK(r.partials().size() == 2);
    // Another address is counted apart (the port is not part of it).
    Peer same(r, "192.0.2.9:6000");
    same.say(ehlo);
    same.say(txn);
    CHECK(same.say("SOURCE " + make_source_id() + "\r\n").rfind("450 ", 0) == 0);
    // Another address is counted apart: it gets past the limit to the MX check (it is no MX of a.example).
    Peer other(r, "192.0.2.10:5555");
    other.say(ehlo);
    other.say(txn);
    CHECK(other.say("SOURCE " + make_source_id() + "\r\n") ==
          "550 5.7.1 SOURCE is taken only from an MX of a.example; 192.0.2.10 is none: use DATA\r\n");
}

TEST_CASE("source: a notice from a client that is not the sender domain's MX is refused, nothing recorded",
          "[source][source_session]") {
    Rig r;
    for (const char* client : {"192.0.2.10:5555", "[2001:db8::9]:25", "127.0.0.1:25"}) {
        CAPTURE(client);
        Peer c(r, client);
        c.say(ehlo);
        c.say(txn);
        CHECK(c.say("SOURCE " + make_source_id() + "\r\n").rfind("550 5.7.1 SOURCE is taken only from an MX of a.example; ", 0) == 0);
    }
    CHECK(r.partials().empty());
    CHECK(r.wakes == 0);
    // The mapped MX on a dual-stack socket is the same address.
    Peer mapped(r, "[::ffff:192.0.2.9]:25");
    mapped.say(ehlo);
    mapped.say(txn);
    CHECK(mapped.say("SOURCE " + make_source_id() + "\r\n").rfind("250 2.6.0 ", 0) == 0);
    // A session on a pipe (a local user) has no client address and is not checked.
    Peer local(r, "stdin");
    local.say(ehlo);
    local.say(txn);
    CHECK(local.say("SOURCE " + make_source_id() + "\r\n").rfind("250 2.6.0 ", 0) == 0);
    CHECK(r.partials().size() == 2);
}

TEST_CASE("source: GETs and notices count under client_key: IPv4 by address (mapped ones too), IPv6 by its /64", "[source]") {
    auto rate_key = [](const char* ip) { return client_key(ip); };
    CHECK(rate_key("192.0.2.9") == "192.0.2.9");
    CHECK(rate_key("::ffff:192.0.2.9") == "192.0.2.9");
    CHECK(rate_key("::ffff:192.0.2.10") != rate_key("::ffff:192.0.2.9"));
    CHECK(rate_key("2001:db8:1:2:3:4:5:6") == "2001:db8:1:2::/64");
    CHECK(rate_key("2001:db8:1:2::9") == rate_key("2001:db8:1:2:ffff::1"));
    CHECK(rate_key("2001:db8:1:3::9") != rate_key("2001:db8:1:2::9"));
}

TEST_CASE("source: without a delivery target MAIL is refused", "[source][source_session]") {
    Rig r(false);
    Peer c(r);
    c.say(ehlo);
    CHECK(c.say("MAIL FROM:<x@a.example>\r\n") == "550 5.7.1 this server takes no mail; it only serves GET\r\n");
    CHECK(c.say("SOURCE " + make_source_id() + "\r\n") == "503 5.5.1 need MAIL before SOURCE\r\n");
}

// ---- GET ----

TEST_CASE("get: a held message is served: 250, then its bytes", "[source][source_session]") {
    Rig r(false);
    const std::string content = "From: x@a.example\r\nSubject: hi\r\n\r\n.line with a dot\r\nend\r\n";
    auto o = r.hold(content);
    Peer c(r);
    c.say(ehlo);
    CHECK(c.say("GET " + o.id + "\r\nNOOP\r\n") ==
          "250 2.6.0 message follows, " + std::to_string(content.size()) + " octets, ended by <CRLF>.<CRLF>\r\n");
    REQUIRE(c.srv.body_pending());
    CHECK(run(c.srv.take_body()) == content);
    c.srv.body_sent();
    CHECK(c.srv.take_output() == "250 2.0.0 OK\r\n");
    auto rows = r.store->source_out_list();
    REQUIRE(rows);
    REQUIRE(rows->size() == 1);
    CHECK((*rows)[0].gets == 1);
    CHECK(c.srv.messages() == 0);
}

TEST_CASE("get: the id may be given in upper case", "[source][source_session]") {
    Rig r(false);
    auto o = r.hold("x\r\n");
    Peer c(r);
    c.say(ehlo);
    CHECK(c.say("GET " + upper(o.id) + "\r\n").rfind("250 2.6.0 ", 0) == 0);
    CHECK(c.srv.body_pending());
}

TEST_CASE("get: a large held file comes whole", "[source][source_session]") {
    Rig r(false);
    std::string content;
    for (int i = 0; content.size() < 300000; ++i) content += "line " + std::to_string(i) + "\r\n";
    auto o = r.hold(content);
    Peer c(r);
    c.say(ehlo);
    CHECK(c.say("GET " + o.id + "\r\n").rfind("250 ", 0) == 0);
    CHECK(run(c.srv.take_body()) == content);
}

TEST_CASE("get: unknown, malformed, expired, failed and exhausted ids get the same reply", "[source][source_session]") {
    Rig r(false);
    auto expired = r.hold("old\r\n", "notified", -1);
    auto failed = r.hold("f\r\n", "failed");
    auto none_left = r.hold("n\r\n", "notified", 3600, 0);
    auto once = r.hold("once\r\n", "notified", 3600, 1);
    Peer c(r);
    c.say(ehlo);
    std::vector<std::string> ids{make_source_id(), "nonsense", expired.id, failed.id, none_left.id,
                                 expired.id.substr(1), expired.id + "0", "../../etc/passwd"};
    for (const auto& id : ids) {
        INFO("GET " << id);
        CHECK(c.say("GET " + id + "\r\n") == no_message);
        CHECK_FALSE(c.srv.body_pending());
    }
    // Served max_gets times, then the same refusal.
    CHECK(c.say("GET " + once.id + "\r\n").rfind("250 ", 0) == 0);
    CHECK(run(c.srv.take_body()) == "once\r\n");
    c.srv.body_sent();
    CHECK(c.say("GET " + once.id + "\r\n") == no_message);
    CHECK_FALSE(c.srv.body_pending());
}

TEST_CASE("get: out of order or without an id", "[source][source_session]") {
    Rig r;
    auto o = r.hold("x\r\n");
    Peer c(r);
    CHECK(c.say("GET " + o.id + "\r\n") == "503 5.5.1 send HELO or EHLO first\r\n");
    c.say(ehlo);
    CHECK(c.say("GET\r\n") == "501 5.5.4 Syntax: GET <id>\r\n");
    c.say("MAIL FROM:<x@a.example>\r\n");
    CHECK(c.say("GET " + o.id + "\r\n") == "503 5.5.1 GET is not allowed in a transaction\r\n");
    CHECK_FALSE(c.srv.body_pending());
    c.say("RSET\r\n");
    CHECK(c.say("GET " + o.id + "\r\n").rfind("250 ", 0) == 0);
}

TEST_CASE("get: a held row whose file is gone is a temporary failure", "[source][source_session]") {
    Rig r(false);
    auto o = r.hold("x\r\n");
    REQUIRE(std::filesystem::remove(o.path));
    Peer c(r);
    c.say(ehlo);
    CHECK(c.say("GET " + o.id + "\r\n") == "451 4.3.0 temporary failure, try again later\r\n");
    CHECK_FALSE(c.srv.body_pending());
}

TEST_CASE("get: the fourth GET in the window with get_limit 3 gets 450", "[source][source_session]") {
    Rig r(false);
    r.policy.get_limit = 3;
    auto o = r.hold("held\r\n");
    Peer c(r);
    c.say(ehlo);
    for (int i = 0; i < 3; ++i) CHECK(c.say("GET " + make_source_id() + "\r\n") == no_message);
    // Even a good id, and a malformed one: the limit comes first.
    CHECK(c.say("GET " + o.id + "\r\n") == "450 4.7.1 too many GET commands, try again later\r\n");
    CHECK(c.say("GET nonsense\r\n") == "450 4.7.1 too many GET commands, try again later\r\n");
    CHECK_FALSE(c.srv.body_pending());
    // The limit is per client address, across sessions.
    Peer again(r, "192.0.2.9:7777");
    again.say(ehlo);
    CHECK(again.say("GET " + o.id + "\r\n").rfind("450 ", 0) == 0);
    Peer other(r, "[2001:db8::1]:5555");
    other.say(ehlo);
    CHECK(other.say("GET " + o.id + "\r\n").rfind("250 ", 0) == 0);
    auto rows = r.store->source_out_list();
    REQUIRE(rows);
    CHECK((*rows)[0].gets == 1);  // a refused GET serves nothing
}

TEST_CASE("get: the GET limit and the notice limit are counted apart", "[source][source_session]") {
    Rig r;
    r.policy.get_limit = 1;
    Peer c(r);
    c.say(ehlo);
    CHECK(c.say("GET " + make_source_id() + "\r\n") == no_message);
    CHECK(c.say("GET " + make_source_id() + "\r\n").rfind("450 ", 0) == 0);
    c.say(txn);
    CHECK(c.say("SOURCE " + make_source_id() + "\r\n").rfind("250 ", 0) == 0);
}
