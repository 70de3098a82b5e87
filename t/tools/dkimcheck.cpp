// Test-only driver (not installed): verifies the DKIM signatures and the ARC chain of the message on stdin
// with mail::dkim::Verifier and prints one line per signature, then one ARC line:
//   dkim 1 pass d=example.org s=sel a=rsa-sha256 testing=0 reason=
//   arc pass i=2 sealer=list.example reason=
// Keys come from the real resolver (--dns 127.0.0.1:PORT, t/dns/zone-server.py).
// Exit: 0 done, 64 usage, 65 unreadable message, 78 no resolver.
#include "libmail/auth/dkim.hpp"
#include "libmail/io/dns.hpp"
#include "libmail/io/net.hpp"
#include "libmail/mail/message.hpp"

#include <ctime>
#include <iostream>
#include <memory>
#include <string_view>

namespace {

int usage() {
    std::cerr << "usage: dkimcheck --dns HOST:PORT < message\n";
    return 64;
}

} // namespace

int main(int argc, char** argv) {
    if (argc != 3 || std::string_view(argv[1]) != "--dns") return usage();
    auto hp = mail::parse_host_port(argv[2]);
    if (!hp) return usage();
    mail::dns::ResolverOptions o;
    o.servers.push_back(*hp);
    o.timeout = std::chrono::milliseconds(3000);
    auto made = mail::dns::make_resolver(o);
    if (!made) {
        std::cerr << "dkimcheck: " << made.error().text << "\n";
        return 78;
    }
    std::unique_ptr<mail::dns::Resolver> resolver = std::move(*made);
    mail::MessageReader msg(std::cin);
    if (auto h = msg.read_header(); !h) {
        std::cerr << "dkimcheck: " << h.error().text << "\n";
        return 65;
    }
    mail::dkim::Options opt;
    opt.now = static_cast<long long>(std::time(nullptr));
    mail::dkim::Verifier v(msg.fields(), opt);
    char buf[4096];
    for (;;) {
        auto n = msg.read_body(buf, sizeof buf);
        if (!n) {
            std::cerr << "dkimcheck: " << n.error().text << "\n";
            return 65;
        }
        if (*n == 0) break;
        v.body(std::string_view(buf, *n));
    }
    v.end_body();
    int k = 0;
    for (const auto& r : v.verify(*resolver))
        std::cout << "dkim " << ++k << " " << mail::dkim::to_string(r.status) << " d=" << r.domain << " s=" << r.selector
                  << " a=" << r.algorithm << " testing=" << (r.testing ? 1 : 0) << " reason=" << r.reason << "\n";
    auto a = v.arc(*resolver);
    const char* st = a.status == mail::dkim::ArcStatus::pass ? "pass" : a.status == mail::dkim::ArcStatus::fail ? "fail" : "none";
    std::cout << "arc " << st << " i=" << a.instances << " sealer=" << a.sealer << " reason=" << a.reason << "\n";
    return 0;
}
