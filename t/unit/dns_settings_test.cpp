#include "libmail/app/context.hpp"
#include "libmail/app/settings.hpp"

#include "tmpdir.hpp"

#include <catch2/catch.hpp>

using namespace mail;

namespace {

Result<Context> ctx_with(const TmpDir& d, const std::string& conf, std::map<std::string, std::string> env,
                         std::optional<std::string> dns, LogRole role = LogRole::command) {
    CommonOptions co;
    co.config = d.write("conf", conf);
    co.db = d.file("store.db");
    co.log = "none";
    co.dns = std::move(dns);
    co.uses_dns = true;
    env["HOME"] = d.path;
    return make_context("msourced", co, fixed_env(env), role);
}

} // namespace

TEST_CASE("dns settings: --dns, then MAILSTAMP_DNS, then config dns, then resolv.conf", "[dns]") {
    TmpDir d;
    const std::string conf = "[common]\ndns = 192.0.2.3\ndns-timeout = 2\n";
    auto c = ctx_with(d, conf, {{"MAILSTAMP_DNS", "192.0.2.2:5353"}}, std::string("[2001:db8::1]:53,192.0.2.1"));
    REQUIRE(c);
    REQUIRE(c->dns_options.servers.size() == 2);
    CHECK(c->dns_options.servers[0].host == "2001:db8::1");
    CHECK(c->dns_options.timeout == std::chrono::seconds(2));
    CHECK(c->dns_options.cache_entries == 0);  // a command: no cache
    auto e = ctx_with(d, conf, {{"MAILSTAMP_DNS", "192.0.2.2:5353"}}, std::nullopt);
    REQUIRE(e);
    CHECK(e->dns_options.servers.at(0).port == "5353");
    auto f = ctx_with(d, conf, {}, std::nullopt, LogRole::daemon);
    REQUIRE(f);
    CHECK(f->dns_options.servers.at(0).host == "192.0.2.3");
    CHECK(f->dns_options.cache_entries == 10000);  // a daemon: the bounded cache
    auto none = ctx_with(d, "", {}, std::nullopt);
    REQUIRE(none);
    CHECK(none->dns_options.servers.empty());
    CHECK(none->dns_options.timeout == std::chrono::seconds(5));
    CHECK(none->dns_options.attempts == 2);
}

TEST_CASE("dns settings: bad values are usage errors from the command line, config errors otherwise", "[dns]") {
    TmpDir d;
    auto c = ctx_with(d, "", {}, std::string("resolver.example:53"));
    REQUIRE_FALSE(c);
    CHECK(c.error().kind == ErrorKind::usage);
    CHECK(c.error().text.rfind("--dns: ", 0) == 0);
    auto e = ctx_with(d, "", {{"MAILSTAMP_DNS", "1.2.3.4:0"}}, std::nullopt);
    REQUIRE_FALSE(e);
    CHECK(e.error().kind == ErrorKind::config);
    CHECK(e.error().text.rfind("$MAILSTAMP_DNS: ", 0) == 0);
    auto f = ctx_with(d, "dns-attempts = 9\n", {}, std::nullopt);
    REQUIRE_FALSE(f);
    CHECK(f.error().kind == ErrorKind::config);
}

namespace {
struct Fixed : dns::Resolver {
    dns::Answer query(std::string_view, dns::Type) override { return dns::Answer{dns::Status::nxdomain, {}, 0, ""}; }
};
} // namespace

TEST_CASE("dns settings: Context::resolver is made once, and can be replaced", "[dns]") {
    TmpDir d;
    auto c = ctx_with(d, "", {}, std::string("127.0.0.1:1"));
    REQUIRE(c);
    dns::Resolver& r = c->resolver();
    CHECK(&r == &c->resolver());
    c->set_resolver(std::make_unique<Fixed>());
    CHECK(c->resolver().query("example.org", dns::Type::a).status == dns::Status::nxdomain);
}
