#include "libmail/io/serve.hpp"
#include "libmail/io/net.hpp"
#include "tmpdir.hpp"

#include <catch2/catch.hpp>

#include <filesystem>
#include <unistd.h>

using namespace mail;

TEST_CASE("serve: client_ip is the peer's address without port or brackets", "[serve]") {
    CHECK(client_ip("192.0.2.7:25") == "192.0.2.7");
    CHECK(client_ip("[2001:db8::1]:587") == "2001:db8::1");
    CHECK(client_ip("[::ffff:192.0.2.7]:25") == "192.0.2.7");  // a dual-stack socket's IPv4 client
    CHECK(client_ip("2001:db8::1") == "2001:db8::1");
    CHECK(client_ip("[2001:DB8:0:0::1]:1") == "2001:db8::1");  // written one way
    CHECK(client_ip("stdin").empty());
    CHECK(client_ip("local").empty());
    CHECK(client_ip("?").empty());
    CHECK(client_ip("").empty());
    CHECK(client_ip("[2001:db8::1").empty());
    CHECK(client_ip("host.example:25").empty());
}

TEST_CASE("serve: client_key counts an IPv4 address alone and an IPv6 address by its /64", "[serve]") {
    CHECK(client_key("192.0.2.7:25") == "192.0.2.7");
    CHECK(client_key("192.0.2.8:25") == "192.0.2.8");
    CHECK(client_key("[::ffff:192.0.2.7]:1") == "192.0.2.7");
    CHECK(client_key("[2001:db8:1:2:aaaa:bbbb:cccc:dddd]:25") == "2001:db8:1:2::/64");
    CHECK(client_key("[2001:db8:1:2::1]:25") == "2001:db8:1:2::/64");
    CHECK(client_key("[2001:db8:1:3::1]:25") == "2001:db8:1:3::/64");
    CHECK(client_key("[2001:db8::1]:25") == "2001:db8::/64");
    CHECK(client_key("[2001:0db8:0000:0000:0:0:0:2]:25") == "2001:db8::/64");
    CHECK(client_key("[::1]:25") == "::/64");
    CHECK(client_key("stdin").empty());
}

TEST_CASE("listen_unix: replaces a stale socket, never another file; local_address names the path", "[serve]") {
    TmpDir d;
    std::string path = d.file("s.sock");
    auto a = listen_unix(path);
    REQUIRE(a);
    CHECK(local_address(*a) == "unix:" + path);
    ::close(*a);
    auto b = listen_unix(path);  // the first one's socket file is left behind
    REQUIRE(b);
    ::close(*b);
    std::string file = d.write("plain", "keep me");
    auto c = listen_unix(file);
    REQUIRE_FALSE(c);
    CHECK(c.error().text == "unix:" + file + ": exists and is no socket");
    CHECK(std::filesystem::file_size(file) == 7);
    CHECK_FALSE(listen_unix(std::string(200, 'x')));
}
