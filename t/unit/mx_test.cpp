#include "libmail/io/mx.hpp"

#include <catch2/catch.hpp>

#include <chrono>
#include <fstream>
#include <initializer_list>
#include <iterator>
#include <string>
#include <vector>

using mail::ErrorKind;
using mail::MxRecord;
using mail::parse_mx_response;

namespace {

// A small builder for DNS responses (RFC 1035 §4.1), uncompressed unless a test writes pointers itself.
std::string u16(unsigned v) { return {static_cast<char>(v >> 8 & 0xff), static_cast<char>(v & 0xff)}; }
std::string u32(unsigned v) { return u16(v >> 16) + u16(v & 0xffff); }

// A name in wire form: length-prefixed labels and the root label.
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

constexpr unsigned noerror = 0x8180;   // QR, RD, RA; rcode 0
constexpr unsigned nxdomain = 0x8183;  // ... rcode 3
constexpr unsigned type_mx = 15;
constexpr unsigned type_cname = 5;

std::string header(unsigned flags, unsigned qd, unsigned an, unsigned ns = 0, unsigned ar = 0) {
    return u16(0x1234) + u16(flags) + u16(qd) + u16(an) + u16(ns) + u16(ar);
}
std::string question(std::string_view name) { return wire(name) + u16(type_mx) + u16(1); }
std::string rr(const std::string& owner, unsigned type, const std::string& rdata) {
    return owner + u16(type) + u16(1) + u32(300) + u16(static_cast<unsigned>(rdata.size())) + rdata;
}
std::string mx(const std::string& owner, unsigned pref, const std::string& host) {
    return rr(owner, type_mx, u16(pref) + host);
}
// Pointer to the question's name, which always sits at offset 12.
const std::string qname_ptr("\xC0\x0C", 2);

// A NOERROR response to an MX query for qname with these answer records.
std::string response(std::string_view qname, const std::vector<std::string>& answers, unsigned flags = noerror) {
    std::string p = header(flags, 1, static_cast<unsigned>(answers.size())) + question(qname);
    for (const auto& a : answers) p += a;
    return p;
}

std::string mx_wire(std::string_view qname, std::initializer_list<std::pair<unsigned, const char*>> mxs) {
    std::vector<std::string> answers;
    for (auto [pref, host] : mxs) answers.push_back(mx(wire(qname), pref, wire(host)));
    return response(qname, answers);
}

std::vector<std::string> hosts_of(const std::vector<MxRecord>& v) {
    std::vector<std::string> out;
    for (const auto& r : v) out.push_back(r.host);
    return out;
}
std::vector<int> prefs_of(const std::vector<MxRecord>& v) {
    std::vector<int> out;
    for (const auto& r : v) out.push_back(r.preference);
    return out;
}

void check_data(std::string_view packet) {
    auto r = parse_mx_response(packet);
    REQUIRE_FALSE(r);
    CHECK(r.error().kind == ErrorKind::data);
    CHECK(r.error().text.find("malformed DNS response") == 0);
}

// The seeds in t/fixtures/mx, built here so the fixtures are checked against the builder.
std::string one_mx() { return mx_wire("example.org", {{10, "MAIL.Example.ORG"}}); }
std::string sorted_mx() {
    return mx_wire("example.org", {{30, "c.example.org"}, {10, "a.example.org"}, {20, "b.example.org"}, {10, "d.example.net"}});
}
std::string compressed_mx() {
    // mx1.<qname>, then mx2.<mx1's name>: a pointer into the question and a pointer to a pointer.
    std::string p = header(noerror, 1, 2) + question("example.org");
    const std::size_t first_host = p.size() + 2 + 10 + 2;  // after owner, fixed fields, preference
    p += mx(qname_ptr, 5, "\x03mx1" + qname_ptr);
    p += mx(qname_ptr, 7, "\x03mx2" + u16(0xC000 | static_cast<unsigned>(first_host)));
    return p;
}
std::string cname_mx() {
    return response("www.example.org", {rr(qname_ptr, type_cname, wire("example.org")),
                                        mx(wire("example.org"), 10, wire("mx.example.org"))});
}
std::string null_mx() { return mx_wire("example.org", {{0, "."}}); }
std::string nxdomain_response() { return header(nxdomain, 1, 0) + question("nope.example.org"); }
std::string pointer_loop() {
    std::string p = header(noerror, 1, 1) + question("example.org");
    const std::size_t host = p.size() + 2 + 10 + 2;
    return p + mx(qname_ptr, 10, u16(0xC000 | static_cast<unsigned>(host)));
}

std::string read_fixture(const std::string& name) {
    std::ifstream in(std::string(MAILSTAMP_FIXTURES) + "/mx/" + name, std::ios::binary);
    REQUIRE(in);
    return std::string(std::istreambuf_iterator<char>(in), {});
}

} // namespace

TEST_CASE("parse_mx_response reads one MX, lower-case without the trailing dot", "[mx]") {
    auto r = parse_mx_response(one_mx());
    REQUIRE(r);
    REQUIRE(r->size() == 1);
    CHECK((*r)[0].preference == 10);
    CHECK((*r)[0].host == "mail.example.org");
}

TEST_CASE("parse_mx_response sorts by preference, equal ones keep their order", "[mx]") {
    auto r = parse_mx_response(sorted_mx());
    REQUIRE(r);
    CHECK(prefs_of(*r) == std::vector<int>{10, 10, 20, 30});
    CHECK(hosts_of(*r) == std::vector<std::string>{"a.example.org", "d.example.net", "b.example.org", "c.example.org"});

    auto eq = parse_mx_response(mx_wire("example.org", {{10, "a"}, {5, "b"}, {10, "c"}, {10, "d"}, {5, "e"}, {65535, "f"}, {0, "g"}}));
    REQUIRE(eq);
    CHECK(hosts_of(*eq) == std::vector<std::string>{"g", "b", "e", "a", "c", "d", "f"});
    CHECK(prefs_of(*eq) == std::vector<int>{0, 5, 5, 10, 10, 10, 65535});
}

TEST_CASE("parse_mx_response follows compression pointers", "[mx]") {
    auto r = parse_mx_response(compressed_mx());
    REQUIRE(r);
    CHECK(hosts_of(*r) == std::vector<std::string>{"mx1.example.org", "mx2.mx1.example.org"});
    CHECK(prefs_of(*r) == std::vector<int>{5, 7});
}

TEST_CASE("parse_mx_response skips CNAME and other records", "[mx]") {
    auto r = parse_mx_response(cname_mx());
    REQUIRE(r);
    CHECK(hosts_of(*r) == std::vector<std::string>{"mx.example.org"});

    // Only a CNAME, or a record of another type or class: no MX.
    auto only = parse_mx_response(response("www.example.org", {rr(qname_ptr, type_cname, wire("example.org"))}));
    REQUIRE(only);
    CHECK(only->empty());
    const std::string chaos = qname_ptr + u16(type_mx) + u16(3) + u32(0) + u16(3) + u16(1) + wire(".");
    auto other = parse_mx_response(response("example.org", {rr(qname_ptr, 16, "\x03txt"), chaos}));
    REQUIRE(other);
    CHECK(other->empty());
    // The authority section is read (the resolver takes the negative TTL from its SOA): a count claiming
    // records the packet does not have is malformed, as any other count beyond the packet.
    check_data(header(noerror, 1, 0, 1, 1) + question("example.org"));
}

TEST_CASE("parse_mx_response returns a null MX as '.'", "[mx]") {
    auto r = parse_mx_response(null_mx());
    REQUIRE(r);
    REQUIRE(r->size() == 1);
    CHECK((*r)[0].preference == 0);
    CHECK((*r)[0].host == ".");
}

TEST_CASE("parse_mx_response rejects every truncation", "[mx]") {
    for (const std::string& full : {one_mx(), sorted_mx(), compressed_mx(), cname_mx(), null_mx()}) {
        REQUIRE(parse_mx_response(full));
        for (std::size_t n = 0; n < full.size(); ++n) {
            CAPTURE(n);
            check_data(std::string_view(full).substr(0, n));
        }
    }
}

TEST_CASE("parse_mx_response rejects pointer loops and bad pointers", "[mx]") {
    check_data(pointer_loop());
    // Two names pointing at each other.
    {
        std::string p = header(noerror, 1, 2) + question("example.org");
        const std::size_t a = p.size() + 2 + 10 + 2;
        const std::size_t b = a + 2 + 2 + 10 + 2;
        p += mx(qname_ptr, 1, u16(0xC000 | static_cast<unsigned>(b)));
        p += mx(qname_ptr, 2, u16(0xC000 | static_cast<unsigned>(a)));
        check_data(p);
    }
    // A label then a pointer back to it: grows until the length limit.
    {
        std::string p = header(noerror, 1, 1) + question("example.org");
        const std::size_t host = p.size() + 2 + 10 + 2;
        check_data(p + mx(qname_ptr, 1, "\x01x" + u16(0xC000 | static_cast<unsigned>(host))));
    }
    // Pointer past the end; pointer cut in half; the reserved label types 01 and 10.
    check_data(response("example.org", {mx(qname_ptr, 1, "\xC0\xF0")}));
    check_data(response("example.org", {mx(qname_ptr, 1, "\xC0")}));
    check_data(response("example.org", {mx(qname_ptr, 1, "\x3Fxx")}));
    check_data(response("example.org", {mx(qname_ptr, 1, std::string("\x40\x00", 2))}));
    check_data(response("example.org", {mx(qname_ptr, 1, std::string("\x80\x00", 2))}));
}

TEST_CASE("parse_mx_response bounds names at 255 octets", "[mx]") {
    const std::string l63(63, 'a'), l61(61, 'b'), l62(62, 'c');
    // 3·64 + 62 + 1 = 255: the longest name, 253 octets as text.
    const std::string longest = l63 + "." + l63 + "." + l63 + "." + l61;
    auto ok = parse_mx_response(mx_wire("example.org", {{1, longest.c_str()}}));
    REQUIRE(ok);
    CHECK((*ok)[0].host == longest);
    CHECK((*ok)[0].host.size() == 253);
    const std::string too_long = l63 + "." + l63 + "." + l63 + "." + l62;
    check_data(mx_wire("example.org", {{1, too_long.c_str()}}));
    // Also when the parts come together through a pointer.
    std::string p = header(noerror, 1, 1) + question(l63 + "." + l63 + "." + l63);
    check_data(p + mx(qname_ptr, 1, std::string(1, '\x3E') + l62 + qname_ptr));
    auto fits = parse_mx_response(p + mx(qname_ptr, 1, std::string(1, '\x3D') + l61 + qname_ptr));
    REQUIRE(fits);
    CHECK((*fits)[0].host.size() == 253);
}

TEST_CASE("parse_mx_response rejects counts beyond the packet", "[mx]") {
    std::string body = question("example.org") + mx(qname_ptr, 10, wire("mx.example.org"));
    REQUIRE(parse_mx_response(header(noerror, 1, 1) + body));
    check_data(header(noerror, 1, 2) + body);
    check_data(header(noerror, 1, 65535) + body);
    check_data(header(noerror, 2, 1) + body);
    check_data(header(noerror, 65535, 0) + body.substr(0, 17));
}

TEST_CASE("parse_mx_response rejects other malformed packets", "[mx]") {
    check_data("");
    check_data(std::string(11, '\x80'));
    // A query, not a response.
    check_data(header(0x0100, 1, 0) + question("example.org"));
    // MX data too short, or longer than its name.
    check_data(response("example.org", {rr(qname_ptr, type_mx, u16(10))}));
    check_data(response("example.org", {rr(qname_ptr, type_mx, u16(10) + wire("mx.example.org") + "x")}));
    // rdlength past the end.
    check_data(header(noerror, 1, 1) + question("example.org") + qname_ptr + u16(type_mx) + u16(1) + u32(0) + u16(200) +
               u16(10) + wire("mx"));
    // A host that is not a host name.
    check_data(mx_wire("example.org", {{10, "mx\r\nx.example.org"}}));
    check_data(mx_wire("example.org", {{10, "m x.example.org"}}));
    check_data(response("example.org", {mx(qname_ptr, 10, std::string("\x04" "a.bc\x00", 6))}));
    check_data(mx_wire("example.org", {{10, "m\xC3\xA9.example.org"}}));
}

TEST_CASE("parse_mx_message keeps rcode, TC and answer count", "[mx]") {
    auto nx = mail::parse_mx_message(nxdomain_response());
    REQUIRE(nx);
    CHECK(nx->rcode == 3);
    CHECK(nx->answers == 0);
    CHECK_FALSE(nx->truncated);
    auto cn = mail::parse_mx_message(cname_mx());
    REQUIRE(cn);
    CHECK(cn->rcode == 0);
    CHECK(cn->answers == 2);
    CHECK(cn->records.size() == 1);
    auto tc = mail::parse_mx_message(header(noerror | 0x0200, 1, 0) + question("example.org"));
    REQUIRE(tc);
    CHECK(tc->truncated);
}

TEST_CASE("mx: hosts_from_response maps rcodes, implicit and null MX", "[mx]") {
    mail::MxResponse r;
    auto implicit = mail::hosts_from_response("example.org", r, "25");
    REQUIRE(implicit);
    REQUIRE(implicit->size() == 1);
    CHECK((*implicit)[0].host == "example.org");
    CHECK((*implicit)[0].port == "25");

    r.records = {{10, "a.example.org"}, {20, "b.example.org"}};
    auto two = mail::hosts_from_response("example.org", r, "2525");
    REQUIRE(two);
    REQUIRE(two->size() == 2);
    CHECK((*two)[0].host == "a.example.org");
    CHECK((*two)[1].host == "b.example.org");
    CHECK((*two)[1].port == "2525");

    r.records = {{0, "."}};
    auto null = mail::hosts_from_response("example.org", r, "25");
    REQUIRE_FALSE(null);
    CHECK(null.error().kind == ErrorKind::rejected);
    CHECK(null.error().text == "example.org: null MX: accepts no mail");
    // From a real packet, the same way.
    auto parsed = mail::parse_mx_message(null_mx());
    REQUIRE(parsed);
    CHECK(mail::hosts_from_response("example.org", *parsed, "25").error().kind == ErrorKind::rejected);
    // A null MX beside others (RFC 7505 §3 forbids it) is skipped.
    r.records = {{0, "."}, {10, "mx.example.org"}};
    auto mixed = mail::hosts_from_response("example.org", r, "25");
    REQUIRE(mixed);
    REQUIRE(mixed->size() == 1);
    CHECK((*mixed)[0].host == "mx.example.org");

    r.records.clear();
    r.rcode = 3;
    auto nx = mail::hosts_from_response("nope.example.org", r, "25");
    REQUIRE_FALSE(nx);
    CHECK(nx.error().kind == ErrorKind::rejected);
    CHECK(nx.error().text == "nope.example.org: no such domain");
    for (int rc : {1, 2, 4, 5, 9}) {
        r.rcode = rc;
        auto f = mail::hosts_from_response("example.org", r, "25");
        REQUIRE_FALSE(f);
        CHECK(f.error().kind == ErrorKind::tempfail);
    }
    r.rcode = 0;
    r.truncated = true;
    CHECK(mail::hosts_from_response("example.org", r, "25").error().kind == ErrorKind::tempfail);
}

TEST_CASE("mx: normalize_mail_domain lower-cases and validates", "[mx]") {
    CHECK(*mail::normalize_mail_domain("Example.ORG.") == "example.org");
    CHECK(*mail::normalize_mail_domain("a-b_c.example") == "a-b_c.example");
    CHECK(*mail::normalize_mail_domain("localhost") == "localhost");
    const std::string l63(63, 'a');
    CHECK(*mail::normalize_mail_domain(l63 + ".org") == l63 + ".org");
    const std::string longest = l63 + "." + l63 + "." + l63 + "." + std::string(61, 'b');
    CHECK(*mail::normalize_mail_domain(longest + ".") == longest);
    for (const std::string& bad : std::initializer_list<std::string>{
             "", ".", "..", "a..b", ".a", "a.b..", "exa mple.org", "[192.0.2.1]", "a@b", "m\xC3\xA9.org",
             "a\r\n.org", std::string(64, 'a') + ".org", longest + "b", l63 + "." + l63 + "." + l63 + "." + l63}) {
        CAPTURE(bad);
        auto r = mail::normalize_mail_domain(bad);
        REQUIRE_FALSE(r);
        CHECK(r.error().kind == ErrorKind::data);
        CHECK(r.error().text.find('\n') == std::string::npos);
        CHECK(r.error().text.find('\r') == std::string::npos);
    }
}

TEST_CASE("add_mx_map_entry reads DOMAIN=HOST:PORT", "[mx]") {
    mail::MxMap map;
    REQUIRE(mail::add_mx_map_entry(map, "example.org=mx.test:2525"));
    REQUIRE(mail::add_mx_map_entry(map, "Other.EXAMPLE.=[::1]:2526"));
    REQUIRE(mail::add_mx_map_entry(map, "third.example=127.0.0.1:25"));
    REQUIRE(map.size() == 3);
    CHECK(map.at("example.org").host == "mx.test");
    CHECK(map.at("example.org").port == "2525");
    CHECK(map.at("other.example").host == "::1");
    CHECK(map.at("other.example").port == "2526");
    CHECK(map.at("third.example").host == "127.0.0.1");
    // A later entry replaces an earlier one.
    REQUIRE(mail::add_mx_map_entry(map, "EXAMPLE.org=mx2.test:25"));
    CHECK(map.size() == 3);
    CHECK(map.at("example.org").host == "mx2.test");

    for (const char* bad : {"example.org=mx.test", "mx.test:25", "", "=", "=mx.test:25", "example.org=",
                            "example.org=:25", "example.org=mx.test:", "example.org=mx.test:99999",
                            "example.org=mx.test:2x", "bad domain=mx.test:25", "a..b=mx.test:25",
                            "example.org=[::1]", "example.org=::1:25"}) {
        CAPTURE(bad);
        mail::MxMap m;
        auto r = mail::add_mx_map_entry(m, bad);
        REQUIRE_FALSE(r);
        CHECK(r.error().kind == ErrorKind::usage);
        CHECK(m.empty());
    }
}

TEST_CASE("mx: mail_hosts uses the map without DNS and rejects bad domains", "[mx]") {
    using namespace std::chrono_literals;
    mail::MxMap map;
    REQUIRE(mail::add_mx_map_entry(map, "example.org=127.0.0.1:2525"));
    for (const char* d : {"example.org", "EXAMPLE.org", "example.org."}) {
        CAPTURE(d);
        auto r = mail::mail_hosts(d, map, "25", 1s);
        REQUIRE(r);
        REQUIRE(r->size() == 1);
        CHECK((*r)[0].host == "127.0.0.1");
        CHECK((*r)[0].port == "2525");
    }
    for (const char* bad : {"", ".", "a..b", "exa mple.org", "[127.0.0.1]", "example.org\r\n"}) {
        CAPTURE(bad);
        auto r = mail::mail_hosts(bad, map, "25", 1s);
        REQUIRE_FALSE(r);
        CHECK(r.error().kind == ErrorKind::data);
    }
}

TEST_CASE("the t/fixtures/mx seeds are the test packets", "[mx]") {
    CHECK(read_fixture("one-mx.bin") == one_mx());
    CHECK(read_fixture("sorted.bin") == sorted_mx());
    CHECK(read_fixture("compressed.bin") == compressed_mx());
    CHECK(read_fixture("cname.bin") == cname_mx());
    CHECK(read_fixture("null-mx.bin") == null_mx());
    CHECK(read_fixture("nxdomain.bin") == nxdomain_response());
    CHECK(read_fixture("pointer-loop.bin") == pointer_loop());
}

TEST_CASE("parse_address_message reads A and AAAA records, skips CNAMEs, never reads past the packet", "[mx]") {
    const std::string a = rr(qname_ptr, 1, std::string("\xC0\x00\x02\x19", 4));
    const std::string aaaa = rr(qname_ptr, 28, std::string("\x20\x01\x0d\xb8", 4) + std::string(11, '\0') + "\x01");
    const std::string cname = rr(qname_ptr, type_cname, wire("other.example"));
    auto r = mail::parse_address_message(response("mx.example", {cname, a, aaaa}));
    REQUIRE(r);
    CHECK(r->rcode == 0);
    CHECK(r->addresses == std::vector<std::string>{"192.0.2.25", "2001:db8::1"});
    // An A record of the wrong length, and every truncation of a good packet: malformed, never a crash.
    CHECK(mail::parse_address_message(response("mx.example", {rr(qname_ptr, 1, "\x01\x02\x03")})).error().kind ==
          ErrorKind::data);
    const std::string good = response("mx.example", {a, aaaa});
    for (std::size_t n = 0; n < good.size(); ++n) CHECK_FALSE(mail::parse_address_message(good.substr(0, n)));
    auto nx = mail::parse_address_message(response("mx.example", {}, nxdomain));
    REQUIRE(nx);
    CHECK(nx->rcode == 3);
    CHECK(nx->addresses.empty());
}

TEST_CASE("internal_address: loopback, private, link-local, multicast and reserved, in every spelling", "[mx]") {
    for (const char* ip : {"127.0.0.1", "127.1.2.3", "10.1.2.3", "172.16.0.1", "172.31.255.255", "192.168.1.1",
                           "169.254.1.1", "100.64.0.1", "0.0.0.0", "224.0.0.1", "239.1.1.1", "240.0.0.1",
                           "255.255.255.255", "::1", "::", "fe80::1", "fc00::1", "fd12:3456::1", "ff02::1",
                           "fec0::1", "::ffff:127.0.0.1", "::ffff:10.0.0.1", "64:ff9b::a00:1", "[::1]", "fe80::1%eth0",
                           "not an address", ""})
        CHECK(mail::internal_address(ip));
    for (const char* ip : {"192.0.2.25", "8.8.8.8", "172.32.0.1", "172.15.255.255", "100.128.0.1", "169.253.1.1",
                           "2001:db8::1", "::ffff:192.0.2.1", "223.255.255.255"})
        CHECK_FALSE(mail::internal_address(ip));
}

TEST_CASE("internal_address: IPv4-compatible, local-use NAT64, 6to4 of internal IPv4, 192.0.0/24 and 198.18/15", "[mx]") {
    for (const char* ip : {"::10.0.0.1", "::127.0.0.1", "::8.8.8.8", "::2", "::ffff:0:0",  // ::/96 IPv4-compatible (deprecated)
                           "64:ff9b:1::a00:1", "64:ff9b:1::808:808", "64:ff9b:1:ffff::1",   // 64:ff9b:1::/48, RFC 8215
                           "2002:a00:1::1", "2002:7f00:1::", "2002:c0a8:101::1", "2002:a9fe:101::1",  // 6to4 of internal
                           "192.0.0.1", "192.0.0.170", "192.0.0.255", "::ffff:192.0.0.8",     // 192.0.0.0/24, RFC 6890
                           "198.18.0.1", "198.19.255.255", "::ffff:198.18.1.1", "64:ff9b::c612:1"})  // 198.18/15, RFC 2544
        CHECK(mail::internal_address(ip));
    // Their neighbours, and the documentation ranges the tests use as public addresses inside namespaces.
    for (const char* ip : {"192.0.1.255", "192.0.3.1", "198.17.255.255", "198.20.0.1", "2002:808:808::1", "2002:c000:21a::1",
                           "64:ff9b:2::a00:1", "64:ff9b::808:808", "192.0.2.25", "198.51.100.1", "203.0.113.9",
                           "2001:db8::25", "2003::1", "::1:0:0:0:1"})
        CHECK_FALSE(mail::internal_address(ip));
}

TEST_CASE("same_address compares numerically; is_target_address counts internal addresses only when mapped", "[mx]") {
    CHECK(mail::same_address("192.0.2.1", "::ffff:192.0.2.1"));
    CHECK(mail::same_address("2001:db8::1", "2001:0db8:0:0::1"));
    CHECK_FALSE(mail::same_address("192.0.2.1", "192.0.2.2"));
    CHECK_FALSE(mail::same_address("stdin", "stdin"));
    mail::MailTarget dns{{"mx.example", "25"}, false, {"192.0.2.25", "127.0.0.1"}, 0, {}};
    mail::MailTarget map{{"127.0.0.1", "2525"}, true, {"127.0.0.1"}, 0, {}};
    CHECK(mail::is_target_address({dns}, "192.0.2.25"));
    CHECK(mail::is_target_address({dns}, "::ffff:192.0.2.25"));
    CHECK_FALSE(mail::is_target_address({dns}, "127.0.0.1"));  // never from DNS, even if listed
    CHECK_FALSE(mail::is_target_address({dns}, "192.0.2.26"));
    CHECK(mail::is_target_address({map}, "127.0.0.1"));
}

TEST_CASE("mx: mail_targets keeps an --mx-map entry whole, with its addresses, and asks no DNS", "[mx]") {
    mail::MxMap map;
    REQUIRE(mail::add_mx_map_entry(map, "b.example=127.0.0.1:2525"));
    auto t = mail::mail_targets("B.Example.", map, "25", std::chrono::milliseconds(1000));
    REQUIRE(t);
    REQUIRE(t->size() == 1);
    CHECK((*t)[0].mapped);
    CHECK((*t)[0].host.port == "2525");
    CHECK((*t)[0].addresses == std::vector<std::string>{"127.0.0.1"});
    CHECK(mail::is_target_address(*t, "127.0.0.1"));
}

TEST_CASE("mx: targets_failed is true when one host's address lookup failed, whatever the others resolved", "[mx]") {
    mail::MailTarget ok{{"mx1.example", "25"}, false, {"192.0.2.25"}, 0, {}};
    mail::MailTarget half{{"mx2.example", "25"}, false, {"192.0.2.26"}, 0, "mx2.example: address lookup failed: timeout"};
    CHECK_FALSE(mail::targets_failed({}));
    CHECK_FALSE(mail::targets_failed({ok}));
    CHECK(mail::targets_failed({ok, half}));
    // What resolved still counts for the MX-client check.
    CHECK(mail::is_target_address({ok, half}, "192.0.2.26"));
}
