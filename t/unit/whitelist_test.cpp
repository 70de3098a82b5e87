#include "libmail/policy/whitelist.hpp"
#include "tmpdir.hpp"

#include <catch2/catch.hpp>
#include <map>
#include <sstream>

using namespace mail;

namespace {
WlEntry entry(std::string_view text, std::string_view scope = "") {
    auto e = parse_wl_entry(text);
    REQUIRE(e.ok());
    if (!scope.empty()) e->scope = *parse_wl_scope(scope);
    e->created = 1;
    return *e;
}
std::string match(Store& st, std::string_view sender, std::string_view rcpt = "") {
    auto m = wl_match(st, sender, rcpt);
    REQUIRE(m.ok());
    if (!m->has_value()) return "-";
    return wl_entry_text(**m) + ((*m)->scope.empty() ? "" : " " + (*m)->scope);
}
} // namespace

TEST_CASE("whitelist: entry syntax") {
    CHECK(entry("User@Example.ORG").kind == WlKind::address);
    CHECK(entry("User@Example.ORG").value == "user@example.org");
    CHECK(entry("Example.org").kind == WlKind::domain);
    CHECK(entry("@Example.org").value == "example.org");
    CHECK(entry(".Example.org").kind == WlKind::subdomains);
    CHECK(entry("prvs=0123456789=bob@x.org").value == "bob@x.org");
    for (const char* bad : {"", "@", ".", "a@", "@@x", "bad domain", "x@[1.2.3.4]", "a\nb.org", "-x-.org..."}) {
        auto e = parse_wl_entry(bad);
        INFO(bad);
        CHECK_FALSE(e.ok());
        if (!e) CHECK(e.error().kind == ErrorKind::data);
    }
    CHECK(*parse_wl_scope("Example.NET") == "example.net");
    CHECK(*parse_wl_scope("Boss@Example.NET") == "boss@example.net");
    CHECK(parse_wl_recipient("Postmaster@Example.net")->value == "postmaster@example.net");
}

TEST_CASE("whitelist: matching is most specific first, scopes honoured") {
    TmpDir d;
    auto s = open_store(d.file("s.db"));
    REQUIRE(s.ok());
    Store& st = **s;
    for (auto e : {entry("friend@corp.example"), entry("@corp.example"), entry(".example"),
                   entry("other.org", "boss@ours.net"), entry(".lists.org", "ours.net")})
        REQUIRE(st.wl_insert(e).ok());
    auto r = parse_wl_recipient("postmaster@ours.net");
    r->created = 1;
    REQUIRE(st.wl_insert(*r).ok());

    CHECK(match(st, "Friend@CORP.example") == "friend@corp.example");
    CHECK(match(st, "someone@corp.example") == "@corp.example");
    CHECK(match(st, "someone@deep.sub.example") == ".example");
    // An SRS wrapper is the forwarder's address: callers take off only trusted ones (address.hpp).
    CHECK(match(st, "SRS0=HHH=TT=corp.example=friend@forwarder.net") == "-");
    CHECK(match(st, "prvs=0123abcdef=friend@corp.example") == "friend@corp.example");
    CHECK(match(st, "x@other.org") == "-");  // scoped entry needs its recipient
    CHECK(match(st, "x@other.org", "boss@ours.net") == "@other.org boss@ours.net");
    CHECK(match(st, "x@other.org", "clerk@ours.net") == "-");
    CHECK(match(st, "x@a.lists.org", "clerk@ours.net") == ".lists.org ours.net");
    CHECK(match(st, "x@a.lists.org", "clerk@theirs.net") == "-");
    CHECK(match(st, "anyone@anywhere.test", "Postmaster@ours.net") == "rcpt:postmaster@ours.net");
    CHECK(match(st, "anyone@anywhere.test") == "-");
    CHECK(match(st, "") == "-");
}

TEST_CASE("whitelist: import is one transaction and idempotent, export round-trips") {
    TmpDir d;
    auto s = open_store(d.file("s.db"));
    REQUIRE(s.ok());
    Store& st = **s;
    std::istringstream lines("# friends\na@x.org\n@y.org example.net\n.z.org\nrcpt:pm@example.net\n\n");
    auto n = wl_import(st, lines, WlFormat::lines, 100);
    REQUIRE(n.ok());
    CHECK(n->added == 4);
    std::istringstream again("a@x.org\n");
    CHECK(wl_import(st, again, WlFormat::lines, 100)->existing == 1);

    std::istringstream bad("b@x.org\nnot an entry\nc@x.org\n");
    auto f = wl_import(st, bad, WlFormat::lines, 100);
    REQUIRE_FALSE(f.ok());
    CHECK(f.error().kind == ErrorKind::data);
    CHECK(f.error().text.find("line 2") != std::string::npos);
    CHECK(st.wl_stats()->total == 4);  // b@x.org was rolled back

    std::istringstream csv(
        "entry,kind,scope,note,source,created,hits,last_hit\n"
        "\"q@x.org\",address,,\"note, with comma\",outgoing,2024-01-02T03:04:05Z,7,2024-02-01T00:00:00Z\n");
    REQUIRE(wl_import(st, csv, WlFormat::csv, 100)->added == 1);

    std::ostringstream out1;
    REQUIRE(wl_export(st, out1, WlFormat::csv).ok());
    TmpDir d2;
    auto s2 = open_store(d2.file("s.db"));
    std::istringstream in(out1.str());
    REQUIRE(wl_import(**s2, in, WlFormat::csv, 999)->added == 5);
    std::ostringstream out2;
    REQUIRE(wl_export(**s2, out2, WlFormat::csv).ok());
    CHECK(out1.str() == out2.str());
    CHECK(out1.str().find("\"note, with comma\",outgoing,2024-01-02T03:04:05Z,7,2024-02-01T00:00:00Z") !=
          std::string::npos);
}

TEST_CASE("whitelist: CSV and JSON quoting") {
    CHECK(*csv_split("a,\"b,c\",\"d\"\"e\",") == std::vector<std::string>{"a", "b,c", "d\"e", ""});
    CHECK_FALSE(csv_split("a,\"b").has_value());
    CHECK_FALSE(csv_split("a,b\"c").has_value());
    CHECK(csv_field("plain") == "plain");
    CHECK(csv_field("a,b") == "\"a,b\"");
    CHECK(csv_field("say \"hi\"") == "\"say \"\"hi\"\"\"");
    CHECK(json_string("a\"b\\c\n\x01") == "\"a\\\"b\\\\c\\n\\u0001\"");
}

TEST_CASE("whitelist: outgoing recipients are whitelisted for their sender, never at an address literal") {
    CHECK(wl_outgoing_scope("Alice@Ours.Example", {"ours.example"}) == "alice@ours.example");
    CHECK(wl_outgoing_scope("alice@ours.example", {}).empty());  // a personal store
    CHECK(wl_outgoing_scope("alice@elsewhere.example", {"ours.example"}).empty());
    CHECK(wl_outgoing_scope("", {"ours.example"}).empty());
    CHECK(wl_outgoing_scope("not an address", {"ours.example"}).empty());

    auto es = wl_outgoing_entries({"Pal@Far.Example", "x@[192.0.2.1]", "y@[IPv6:2001:db8::1]", "pal@far.example",
                                   "bad@-x-.example", "prvs=0123456789=list@far.example"},
                                  "alice@ours.example", 7);
    REQUIRE(es.size() == 2);
    CHECK(es[0].value == "pal@far.example");
    CHECK(es[1].value == "list@far.example");
    for (const auto& e : es) {
        CHECK(e.kind == WlKind::address);
        CHECK(e.scope == "alice@ours.example");
        CHECK(e.source == "outgoing");
        CHECK(e.created == 7);
    }

    TmpDir d;
    auto s = open_store(d.file("s.db"));
    REQUIRE(s.ok());
    Store& st = **s;
    for (const auto& e : es) REQUIRE(st.wl_insert(e).ok());
    CHECK(match(st, "pal@far.example", "alice@ours.example") == "pal@far.example alice@ours.example");
    CHECK(match(st, "pal@far.example", "bob@ours.example") == "-");
    CHECK(match(st, "pal@far.example") == "-");
    // An address literal sender matches nothing, even an entry an older program left.
    WlEntry lit;
    lit.kind = WlKind::address;
    lit.value = "x@[192.0.2.1]";
    lit.created = 1;
    REQUIRE(st.wl_insert(lit).ok());
    CHECK(match(st, "x@[192.0.2.1]", "bob@ours.example") == "-");
}

TEST_CASE("whitelist: the authentication requirement is stored, exported and imported in both formats") {
    TmpDir d;
    auto st = open_store(d.file("s.db"));
    REQUIRE(st.ok());
    WlEntry a = entry("@partner.example");
    a.auth = WlAuth::dkim;
    WlEntry b = entry("ann@quiet.example", "ours.example");
    b.auth = WlAuth::none;
    WlEntry c = entry("bob@plain.example");
    for (auto* e : {&a, &b, &c}) REQUIRE(*(*st)->wl_insert(*e));
    CHECK(to_string(WlAuth::automatic) == "auto");
    CHECK(parse_wl_auth("dmarc") == WlAuth::dmarc);
    CHECK_FALSE(parse_wl_auth("Auto"));
    for (WlFormat f : {WlFormat::lines, WlFormat::csv}) {
        std::ostringstream out;
        REQUIRE(wl_export(**st, out, f).ok());
        if (f == WlFormat::lines)
            CHECK(out.str() == "ann@quiet.example ours.example auth=none\nbob@plain.example\n@partner.example auth=dkim\n");
        auto copy = open_store(d.file(f == WlFormat::lines ? "l.db" : "c.db"));
        REQUIRE(copy.ok());
        std::istringstream in(out.str());
        REQUIRE(wl_import(**copy, in, f, 5).ok());
        std::map<std::string, WlAuth> got;
        REQUIRE((*copy)->wl_each([&](const WlEntry& e) { got[e.value] = e.auth; }).ok());
        CHECK(got["partner.example"] == WlAuth::dkim);
        CHECK(got["ann@quiet.example"] == WlAuth::none);
        CHECK(got["bob@plain.example"] == WlAuth::automatic);
    }
    std::istringstream bad("x@y.example auth=weak\n");
    auto r = wl_import(**st, bad, WlFormat::lines, 5);
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().text.find("auth") != std::string::npos);
}
