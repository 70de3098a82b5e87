#include "libmail/io/dns.hpp"
#include "libmail/io/mx.hpp"

#include <catch2/catch.hpp>

#include <atomic>
#include <map>
#include <string>
#include <thread>
#include <vector>

using mail::ErrorKind;
using namespace mail::dns;

namespace {

// A builder for DNS responses (RFC 1035 §4.1), uncompressed unless a test writes pointers itself.
std::string u16(unsigned v) { return {static_cast<char>(v >> 8 & 0xff), static_cast<char>(v & 0xff)}; }
std::string u32(std::uint32_t v) { return u16(v >> 16) + u16(v & 0xffff); }

std::string wire(std::string_view dotted) {
    std::string out;
    while (!dotted.empty() && dotted != ".") {
        auto dot = dotted.find('.');
        auto label = dotted.substr(0, dot);
        out += static_cast<char>(label.size());
        out += label;
        dotted = dot == std::string_view::npos ? std::string_view() : dotted.substr(dot + 1);
    }
    return out + std::string(1, '\0');
}

constexpr unsigned noerror = 0x8180;
constexpr unsigned nxdomain = 0x8183;
constexpr unsigned servfail = 0x8182;
constexpr unsigned truncated = 0x8380;

std::string header(unsigned id, unsigned flags, unsigned qd, unsigned an, unsigned ns = 0, unsigned ar = 0) {
    return u16(id) + u16(flags) + u16(qd) + u16(an) + u16(ns) + u16(ar);
}
std::string rr(const std::string& owner, Type type, const std::string& rdata, std::uint32_t ttl = 300) {
    return owner + u16(static_cast<unsigned>(type)) + u16(1) + u32(ttl) + u16(static_cast<unsigned>(rdata.size())) + rdata;
}
std::string soa(const std::string& owner, std::uint32_t ttl, std::uint32_t minimum) {
    std::string rdata = wire("ns.example") + wire("admin.example") + u32(1) + u32(3600) + u32(600) + u32(86400) + u32(minimum);
    return rr(owner, Type::soa, rdata, ttl);
}
std::string txt(std::initializer_list<std::string> strings) {
    std::string out;
    for (const auto& s : strings) out += static_cast<char>(s.size()) + s;
    return out;
}

struct Packet {
    unsigned id = 0x1234;
    unsigned flags = noerror;
    std::string qname = "example.org";
    Type qtype = Type::a;
    std::vector<std::string> an, ns, ar;
    std::string build() const {
        std::string p = header(id, flags, 1, static_cast<unsigned>(an.size()), static_cast<unsigned>(ns.size()),
                               static_cast<unsigned>(ar.size()));
        p += wire(qname) + u16(static_cast<unsigned>(qtype)) + u16(1);
        for (const auto* v : {&an, &ns, &ar})
            for (const auto& r : *v) p += r;
        return p;
    }
};

const std::string qptr("\xC0\x0C", 2);  // the question's name, always at offset 12

Answer parse_and_answer(const Packet& p) {
    auto r = parse_response(p.build());
    INFO((r.ok() ? std::string() : r.error().text));
    REQUIRE(r.ok());
    return answer_from(*r, p.qname, p.qtype);
}

} // namespace

TEST_CASE("dns: build_query writes the header, the question and an EDNS0 OPT record", "[dns]") {
    auto q = build_query(0xBEEF, "Mail.Example.ORG.", Type::mx);
    REQUIRE(q.ok());
    const std::string want = u16(0xBEEF) + u16(0x0100) + u16(1) + u16(0) + u16(0) + u16(1) + wire("Mail.Example.ORG") +
                             u16(15) + u16(1) + std::string(1, '\0') + u16(41) + u16(1232) + u32(0) + u16(0);
    CHECK(*q == want);
    CHECK(build_query(1, ".", Type::ns).ok());
    CHECK(build_query(1, "a..b", Type::a).error().kind == ErrorKind::data);
    CHECK(build_query(1, "", Type::a).error().kind == ErrorKind::data);
    CHECK_FALSE(build_query(1, std::string(64, 'a') + ".org", Type::a).ok());
    CHECK(build_query(1, std::string(63, 'a') + ".org", Type::a).ok());
    std::string long_name;
    while (long_name.size() < 254) long_name += "abcdefg.";
    CHECK_FALSE(build_query(1, long_name.substr(0, 254), Type::a).ok());
}

TEST_CASE("dns: a query parses back as its own question", "[dns]") {
    // A query is not a response (QR clear): the parser refuses it; with QR set it reads the question.
    auto q = build_query(7, "_dmarc.Example.org", Type::txt);
    REQUIRE(q.ok());
    CHECK_FALSE(parse_response(*q).ok());
    std::string resp = *q;
    resp[2] = static_cast<char>(resp[2] | 0x80);
    auto r = parse_response(resp);
    REQUIRE(r.ok());
    CHECK(r->id == 7);
    CHECK(r->question == "_dmarc.example.org");
    CHECK(r->question_type == 16);
    CHECK(r->answers.empty());
}

TEST_CASE("dns: A, AAAA, MX, PTR and TXT records are read, other types and classes skipped", "[dns]") {
    Packet p;
    p.an = {rr(qptr, Type::a, std::string("\xC0\x00\x02\x01", 4)),
            rr(qptr, Type::aaaa, std::string("\x20\x01\x0d\xb8", 4) + std::string(11, '\0') + "\x01"),
            rr(qptr, Type::mx, u16(10) + wire("MX1.example.org")),
            rr(qptr, Type::ptr, wire("host.example.net")),
            rr(qptr, Type::txt, txt({"v=spf1 ", "-all"})),
            qptr + u16(99) + u16(1) + u32(300) + u16(2) + "xx",                          // SPF type: skipped
            qptr + u16(1) + u16(3) + u32(300) + u16(4) + std::string("\x01\x02\x03\x04", 4)};  // class CH
    auto r = parse_response(p.build());
    REQUIRE(r.ok());
    REQUIRE(r->answers.size() == 5);
    CHECK(r->answers[0].text == "192.0.2.1");
    CHECK(r->answers[0].name == "example.org");
    CHECK(r->answers[0].ttl == 300);
    CHECK(r->answers[1].text == "2001:db8::1");
    CHECK(r->answers[2].text == "mx1.example.org");
    CHECK(r->answers[2].preference == 10);
    CHECK(r->answers[3].text == "host.example.net");
    CHECK(r->answers[4].text == "v=spf1 -all");
    CHECK(r->answers[4].strings == std::vector<std::string>{"v=spf1 ", "-all"});
}

TEST_CASE("dns: TXT strings are kept as sent, empty ones included, joined without a separator", "[dns]") {
    Packet p;
    p.qtype = Type::txt;
    p.an = {rr(qptr, Type::txt, txt({"", "a\"b", std::string(255, 'x')})), rr(qptr, Type::txt, "")};
    auto a = parse_and_answer(p);
    REQUIRE(a.status == Status::ok);
    REQUIRE(a.records.size() == 2);
    CHECK(a.records[0].strings.size() == 3);
    CHECK(a.records[0].strings[0].empty());
    CHECK(a.records[0].text == "a\"b" + std::string(255, 'x'));
    CHECK(a.records[1].strings.empty());
    // A character-string running past its record is malformed.
    Packet bad;
    bad.an = {rr(qptr, Type::txt, std::string("\x05" "abc", 4))};
    CHECK(parse_response(bad.build()).error().kind == ErrorKind::data);
}

TEST_CASE("dns: compression pointers are followed backwards, loops and forward pointers refused", "[dns]") {
    Packet p;
    p.qtype = Type::mx;
    // mx.example.org written as the label "mx" and a pointer to the question name.
    p.an = {rr(qptr, Type::mx, u16(5) + std::string("\x02mx", 3) + qptr)};
    auto a = parse_and_answer(p);
    REQUIRE(a.records.size() == 1);
    CHECK(a.records[0].text == "mx.example.org");

    // A pointer to itself.
    std::string loop = header(1, noerror, 1, 0) + std::string("\xC0\x0C", 2) + u16(1) + u16(1);
    auto r = parse_response(loop);
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().text.find("loop") != std::string::npos);
    // Two pointers to each other (the second points forward).
    std::string two = header(1, noerror, 1, 1) + wire("a.org") + u16(1) + u16(1) + std::string("\xC0\x1F", 2) + u16(1) +
                      u16(1) + u32(1) + u16(4) + "abcd" + std::string("\xC0\x1B", 2);
    CHECK_FALSE(parse_response(two).ok());
    // A pointer past the end, an unknown label type, a cut pointer.
    CHECK_FALSE(parse_response(header(1, noerror, 1, 0) + std::string("\xC3\xFF", 2) + u16(1) + u16(1)).ok());
    CHECK_FALSE(parse_response(header(1, noerror, 1, 0) + std::string("\x40", 1) + u16(1) + u16(1)).ok());
    CHECK_FALSE(parse_response(header(1, noerror, 1, 0) + std::string("\xC0", 1)).ok());
}

TEST_CASE("dns: names over 255 octets, labels with dots and controls", "[dns]") {
    // A question name of 245 octets and an owner of one more label pointing to it: 266 octets.
    std::string big = std::string(60, 'a') + "." + std::string(60, 'b') + "." + std::string(60, 'c') + "." + std::string(60, 'd');
    std::string p = header(1, noerror, 1, 1) + wire(big) + u16(1) + u16(1) + std::string(1, '\x14') + std::string(20, 'e') +
                    qptr + u16(1) + u16(1) + u32(1) + u16(4) + "abcd";
    auto r = parse_response(p);
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().text.find("255") != std::string::npos);
    // The question name alone is fine.
    auto q0 = parse_response(header(1, noerror, 1, 0) + wire(big) + u16(1) + u16(1));
    REQUIRE(q0.ok());
    CHECK(q0->question == big);

    // A label holding a dot, a NUL and an upper-case letter cannot forge a name.
    Packet q;
    q.qtype = Type::ptr;
    q.an = {rr(qptr, Type::ptr, std::string("\x05" "a.B\0c", 6) + wire("org"))};
    auto a = parse_and_answer(q);
    REQUIRE(a.records.size() == 1);
    CHECK(a.records[0].text == "a\\046b\\000c.org");
    CHECK(canonical_name("A.b.") == "a.b");
}

TEST_CASE("dns: truncated packets are refused unless TC is set", "[dns]") {
    Packet p;
    p.an = {rr(qptr, Type::a, "\x01\x02\x03\x04")};
    const std::string whole = p.build();
    for (std::size_t n = 0; n < whole.size(); ++n) {
        auto r = parse_response(whole.substr(0, n));
        CHECK_FALSE(r.ok());
        if (!r) CHECK(r.error().kind == ErrorKind::data);
    }
    // With TC set, a response cut after its question is still read (the resolver asks again over TCP).
    Packet t = p;
    t.flags = truncated;
    std::string cut = t.build();
    cut.resize(cut.size() - 3);
    auto r = parse_response(cut);
    REQUIRE(r.ok());
    CHECK(r->truncated);
    CHECK(answer_from(*r, "example.org", Type::a).status == Status::error);
    // Counts beyond the packet.
    CHECK_FALSE(parse_response(header(1, noerror, 1, 40) + wire("a.org") + u16(1) + u16(1)).ok());
    CHECK_FALSE(parse_response(header(1, noerror, 2, 0) + wire("a.org") + u16(1) + u16(1)).ok());
    // A record of the wrong length.
    Packet w;
    w.an = {rr(qptr, Type::a, "\x01\x02\x03")};
    CHECK_FALSE(parse_response(w.build()).ok());
    Packet m;
    m.an = {rr(qptr, Type::mx, u16(1) + wire("a.org") + "x")};
    CHECK_FALSE(parse_response(m.build()).ok());
}

TEST_CASE("dns: CNAME chains are followed in the answer, at most 8 links", "[dns]") {
    Packet p;
    p.qname = "www.example.org";
    p.an = {rr(qptr, Type::cname, wire("Alias.example.net"), 600), rr(wire("alias.example.net"), Type::cname, wire("host.example.com"), 100),
            rr(wire("host.example.com"), Type::a, std::string("\x0a\x00\x00\x01", 4), 300),
            rr(wire("other.example.com"), Type::a, std::string("\x0a\x00\x00\x02", 4), 300)};
    auto a = parse_and_answer(p);
    REQUIRE(a.status == Status::ok);
    REQUIRE(a.records.size() == 1);
    CHECK(a.records[0].text == "10.0.0.1");
    CHECK(a.records[0].name == "host.example.com");
    CHECK(a.ttl == 100);  // the least TTL along the chain

    // Asking for the CNAME itself does not follow it.
    Packet c = p;
    c.qtype = Type::cname;
    auto ca = parse_and_answer(c);
    REQUIRE(ca.records.size() == 1);
    CHECK(ca.records[0].text == "alias.example.net");

    // A loop of two CNAMEs, and a chain of 9.
    Packet loop;
    loop.qname = "a.org";
    loop.an = {rr(qptr, Type::cname, wire("b.org")), rr(wire("b.org"), Type::cname, wire("a.org"))};
    auto la = parse_and_answer(loop);
    CHECK(la.status == Status::error);
    CHECK(la.temporary());
    Packet nine;
    nine.qname = "n0.org";
    for (int i = 0; i < 9; ++i)
        nine.an.push_back(rr(wire("n" + std::to_string(i) + ".org"), Type::cname, wire("n" + std::to_string(i + 1) + ".org")));
    nine.an.push_back(rr(wire("n9.org"), Type::a, "\x01\x01\x01\x01"));
    CHECK(parse_and_answer(nine).status == Status::error);
    nine.an.erase(nine.an.begin());
    nine.qname = "n1.org";
    CHECK(parse_and_answer(nine).status == Status::ok);  // 8 links are fine

    // A CNAME to a name without the type: NODATA.
    Packet dangling;
    dangling.an = {rr(qptr, Type::cname, wire("gone.example.org"))};
    auto da = parse_and_answer(dangling);
    CHECK(da.status == Status::ok);
    CHECK(da.records.empty());
    CHECK(da.empty());
}

TEST_CASE("dns: negative answers carry the SOA's TTL or minimum, whichever is less", "[dns]") {
    Packet nx;
    nx.flags = nxdomain;
    nx.ns = {soa(wire("example.org"), 3600, 60)};
    auto r = parse_response(nx.build());
    REQUIRE(r.ok());
    REQUIRE(r->negative_ttl);
    CHECK(*r->negative_ttl == 60);
    auto a = answer_from(*r, "example.org", Type::a);
    CHECK(a.status == Status::nxdomain);
    CHECK(a.empty());
    CHECK_FALSE(a.temporary());
    CHECK(a.ttl == 60);

    Packet nodata;
    nodata.ns = {soa(wire("example.org"), 30, 900)};
    auto b = parse_and_answer(nodata);
    CHECK(b.status == Status::ok);
    CHECK(b.records.empty());
    CHECK(b.ttl == 30);

    Packet bare;  // no SOA: not to be cached
    bare.flags = nxdomain;
    CHECK(parse_and_answer(bare).ttl == 0);

    // A TTL with the top bit set counts as 0 (RFC 2181 §8).
    Packet big;
    big.an = {rr(qptr, Type::a, "\x01\x02\x03\x04", 0x80000001u)};
    CHECK(parse_and_answer(big).ttl == 0);
}

TEST_CASE("dns: error rcodes are temporary failures", "[dns]") {
    Packet p;
    p.flags = servfail;
    auto a = parse_and_answer(p);
    CHECK(a.status == Status::servfail);
    CHECK(a.temporary());
    CHECK(a.detail == "SERVFAIL");
    p.flags = 0x8185;
    CHECK(parse_and_answer(p).detail == "REFUSED");
}

TEST_CASE("dns: parse_servers takes HOST, HOST:PORT, [IPv6]:PORT and lists of them", "[dns]") {
    auto s = parse_servers("127.0.0.1:5353, [::1]:53,192.0.2.1,2001:db8::1");
    REQUIRE(s.ok());
    REQUIRE(s->size() == 4);
    CHECK((*s)[0].host == "127.0.0.1");
    CHECK((*s)[0].port == "5353");
    CHECK((*s)[1].host == "::1");
    CHECK((*s)[2].port == "53");
    CHECK((*s)[3].host == "2001:db8::1");
    CHECK((*s)[3].port == "53");
    for (const char* bad : {"", "localhost:53", "127.0.0.1:", "127.0.0.1:0", "127.0.0.1:65536", "127.0.0.1:x",
                            "[::1", "[::1]x", "1.2.3.4,,5.6.7.8", "1.2.3.4:53:1"}) {
        auto r = parse_servers(bad);
        INFO(bad);
        REQUIRE_FALSE(r.ok());
        CHECK(r.error().kind == ErrorKind::usage);
        CHECK(r.error().text.find('\n') == std::string::npos);
    }
}

TEST_CASE("dns: reverse_name for IPv4 and IPv6", "[dns]") {
    CHECK(*reverse_name("192.0.2.1") == "1.2.0.192.in-addr.arpa");
    CHECK(*reverse_name("2001:db8::1") ==
          "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa");
    CHECK(reverse_name("example.org").error().kind == ErrorKind::data);
    CHECK_FALSE(reverse_name("1.2.3").ok());
}

namespace {

// A resolver answering from a map, counting the questions.
struct FakeResolver : Resolver {
    std::map<std::string, Answer> answers;
    std::atomic<int> asked{0};
    Answer query(std::string_view name, Type type) override {
        ++asked;
        auto it = answers.find(canonical_name(name) + "/" + std::string(type_name(type)));
        if (it == answers.end()) return Answer{Status::nxdomain, {}, 0, ""};
        return it->second;
    }
};

Answer a_answer(const std::string& name, const std::string& ip, std::uint32_t ttl) {
    Record r;
    r.type = Type::a;
    r.name = name;
    r.text = ip;
    r.ttl = ttl;
    return Answer{Status::ok, {r}, ttl, ""};
}

} // namespace

TEST_CASE("dns: the cache keeps answers for their TTL, capped, and never temporary failures", "[dns]") {
    auto fake = std::make_unique<FakeResolver>();
    FakeResolver& f = *fake;
    f.answers["a.example/A"] = a_answer("a.example", "192.0.2.1", 300);
    f.answers["long.example/A"] = a_answer("long.example", "192.0.2.2", 1000000);
    f.answers["zero.example/A"] = a_answer("zero.example", "192.0.2.3", 0);
    f.answers["fail.example/A"] = Answer{Status::servfail, {}, 300, "SERVFAIL"};
    f.answers["neg.example/TXT"] = Answer{Status::ok, {}, 60, ""};
    auto now = std::chrono::steady_clock::time_point{} + std::chrono::hours(1);
    auto cache = make_cache(std::move(fake), 3, std::chrono::seconds(3600), [&now] { return now; });

    CHECK(cache->query("a.example", Type::a).records.at(0).text == "192.0.2.1");
    CHECK(f.asked == 1);
    now += std::chrono::seconds(100);
    auto again = cache->query("A.Example.", Type::a);
    CHECK(f.asked == 1);
    CHECK(again.ttl == 200);
    CHECK(again.records.at(0).ttl == 200);
    now += std::chrono::seconds(201);
    cache->query("a.example", Type::a);
    CHECK(f.asked == 2);  // expired

    // Capped at max_ttl.
    cache->query("long.example", Type::a);
    CHECK(cache->query("long.example", Type::a).ttl == 3600);
    CHECK(f.asked == 3);
    now += std::chrono::seconds(3601);
    cache->query("long.example", Type::a);
    CHECK(f.asked == 4);

    // TTL 0, temporary failures: asked every time. NODATA with a negative TTL and NXDOMAIN without: as their TTL.
    int before = f.asked;
    cache->query("zero.example", Type::a);
    cache->query("zero.example", Type::a);
    cache->query("fail.example", Type::a);
    cache->query("fail.example", Type::a);
    cache->query("neg.example", Type::txt);
    cache->query("neg.example", Type::txt);
    cache->query("nowhere.example", Type::a);
    cache->query("nowhere.example", Type::a);
    CHECK(f.asked == before + 4 + 1 + 2);
}

TEST_CASE("dns: the cache drops the least recently used beyond its bound", "[dns]") {
    auto fake = std::make_unique<FakeResolver>();
    FakeResolver& f = *fake;
    for (int i = 0; i < 5; ++i) f.answers["h" + std::to_string(i) + "/A"] = a_answer("h" + std::to_string(i), "192.0.2.9", 300);
    auto cache = make_cache(std::move(fake), 2, std::chrono::seconds(3600));
    cache->query("h0", Type::a);
    cache->query("h1", Type::a);
    cache->query("h0", Type::a);  // h0 used: h1 is the oldest now
    cache->query("h2", Type::a);  // drops h1
    CHECK(f.asked == 3);
    cache->query("h0", Type::a);
    CHECK(f.asked == 3);
    cache->query("h1", Type::a);
    CHECK(f.asked == 4);
    // Several threads at once.
    std::vector<std::thread> ts;
    for (int t = 0; t < 4; ++t)
        ts.emplace_back([&cache] {
            for (int i = 0; i < 200; ++i) cache->query("h" + std::to_string(i % 5), Type::a);
        });
    for (auto& t : ts) t.join();
    CHECK(f.asked > 4);
}

TEST_CASE("dns: hosts_from_answer maps MX answers like hosts_from_response", "[dns][mx]") {
    Record mx1{Type::mx, 300, "example.org", "mx2.example.org", {}, 20};
    Record mx2{Type::mx, 300, "example.org", "mx1.example.org", {}, 10};
    auto h = mail::hosts_from_answer("example.org", Answer{Status::ok, {mx1, mx2}, 300, ""}, "25");
    REQUIRE(h.ok());
    REQUIRE(h->size() == 2);
    CHECK((*h)[0].host == "mx1.example.org");
    auto implicit = mail::hosts_from_answer("example.org", Answer{Status::ok, {}, 0, ""}, "25");
    REQUIRE(implicit.ok());
    CHECK(implicit->at(0).host == "example.org");
    Record null_mx{Type::mx, 300, "example.org", "", {}, 0};
    CHECK(mail::hosts_from_answer("example.org", Answer{Status::ok, {null_mx}, 0, ""}, "25").error().kind ==
          ErrorKind::rejected);
    CHECK(mail::hosts_from_answer("example.org", Answer{Status::nxdomain, {}, 0, ""}, "25").error().kind ==
          ErrorKind::rejected);
    CHECK(mail::hosts_from_answer("example.org", Answer{Status::timeout, {}, 0, "timeout"}, "25").error().kind ==
          ErrorKind::tempfail);
    Record odd{Type::mx, 300, "example.org", "a\\032b.org", {}, 0};
    CHECK(mail::hosts_from_answer("example.org", Answer{Status::ok, {odd}, 0, ""}, "25").error().kind ==
          ErrorKind::tempfail);
}

TEST_CASE("dns: mail_targets asks the resolver it is given", "[dns][mx]") {
    FakeResolver f;
    Record mx{Type::mx, 300, "example.org", "mx.example.org", {}, 10};
    f.answers["example.org/MX"] = Answer{Status::ok, {mx}, 300, ""};
    f.answers["mx.example.org/A"] = a_answer("mx.example.org", "192.0.2.25", 300);
    f.answers["mx.example.org/AAAA"] = Answer{Status::timeout, {}, 0, "timeout after 1 ms"};
    auto t = mail::mail_targets("Example.org", {}, "25", std::chrono::seconds(5), {}, &f);
    REQUIRE(t.ok());
    REQUIRE(t->size() == 1);
    CHECK(t->at(0).addresses == std::vector<std::string>{"192.0.2.25"});
    CHECK(t->at(0).error.find("timeout") != std::string::npos);
    CHECK(f.asked == 3);
    f.answers["example.org/MX"] = Answer{Status::servfail, {}, 0, "SERVFAIL"};
    CHECK(mail::mail_targets("example.org", {}, "25", std::chrono::seconds(5), {}, &f).error().kind ==
          ErrorKind::tempfail);
    CHECK(mail::mail_hosts("example.org", {}, "25", std::chrono::seconds(5), &f).error().kind == ErrorKind::tempfail);
}
