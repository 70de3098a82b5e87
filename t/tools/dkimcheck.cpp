// Test-only driver (not installed): verifies the DKIM signatures and the ARC chain of the message on stdin
// with mail::dkim::Verifier and prints one line per signature, then one ARC line:
//   dkim 1 pass d=example.org s=sel a=rsa-sha256 testing=0 reason=
//   arc pass i=2 sealer=list.example reason=
// Keys come from the real resolver (--dns 127.0.0.1:PORT, t/dns/zone-server.py), or, with --zone FILE,
// from the zone file read directly (for unit-level runs without a server).
// Exit: 0 done, 64 usage, 65 unreadable message, 78 no resolver.
#include "libmail/auth/dkim.hpp"
#include "libmail/io/dns.hpp"
#include "libmail/io/net.hpp"
#include "libmail/mail/message.hpp"

#include <ctime>
#include <fstream>
#include <iostream>
#include <map>
#include <sstream>

namespace {

// TXT records of a zone file (t/dns/zone-server.py's format: NAME [TTL] TXT "a" "b" | rest; NAME [TYPE] SERVFAIL).
class ZoneResolver : public mail::dns::Resolver {
public:
    explicit ZoneResolver(std::istream& in) {
        std::string line;
        while (std::getline(in, line)) {
            std::istringstream ls(line);
            std::string name, w;
            if (!(ls >> name) || name[0] == '#') continue;
            name = lower(name);
            if (!name.empty() && name.back() == '.') name.pop_back();
            ls >> w;
            if (!w.empty() && std::isdigit(static_cast<unsigned char>(w[0]))) ls >> w;
            if (w == "SERVFAIL" || w == "TIMEOUT" || w == "REFUSED") {
                fails_[name] = true;
                continue;
            }
            std::string rest;
            std::getline(ls, rest);
            if (w == "TXT" || w == "txt") {
                std::string t = rest.substr(rest.find_first_not_of(" \t") == std::string::npos ? 0 : rest.find_first_not_of(" \t"));
                while (!t.empty() && (t.back() == ' ' || t.back() == '\r')) t.pop_back();
                if (t == "SERVFAIL" || t == "TIMEOUT" || t == "REFUSED") {
                    fails_[name] = true;
                    continue;
                }
                txt_[name].push_back(strings(rest));
            } else {
                other_[name] = true;
            }
        }
    }
    mail::dns::Answer query(std::string_view qname, mail::dns::Type type) override {
        std::string name = lower(std::string(qname));
        if (!name.empty() && name.back() == '.') name.pop_back();
        mail::dns::Answer a;
        if (fails_.count(name)) {
            a.status = mail::dns::Status::servfail;
            a.detail = "SERVFAIL";
            return a;
        }
        if (type != mail::dns::Type::txt || !txt_.count(name)) {
            a.status = other_.count(name) ? mail::dns::Status::ok : mail::dns::Status::nxdomain;
            return a;
        }
        for (const auto& s : txt_[name]) {
            mail::dns::Record r;
            r.type = type;
            r.name = name;
            r.strings = s;
            for (const auto& p : s) r.text += p;
            a.records.push_back(std::move(r));
        }
        return a;
    }

private:
    static std::string lower(std::string s) {
        for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        return s;
    }
    static std::vector<std::string> strings(const std::string& rest) {
        std::vector<std::string> out;
        std::size_t i = rest.find_first_not_of(" \t");
        if (i == std::string::npos) return {""};
        if (rest[i] != '"') return {rest.substr(i, rest.find_last_not_of(" \t\r") - i + 1)};
        while (i < rest.size()) {
            if (rest[i] == '"') {
                std::string s;
                for (++i; i < rest.size() && rest[i] != '"'; ++i) {
                    if (rest[i] == '\\' && i + 1 < rest.size()) ++i;
                    s += rest[i];
                }
                out.push_back(s);
            }
            ++i;
        }
        return out;
    }
    std::map<std::string, std::vector<std::vector<std::string>>> txt_;
    std::map<std::string, bool> fails_, other_;
};

int usage() {
    std::cerr << "usage: dkimcheck --dns HOST:PORT | --zone FILE  < message\n";
    return 64;
}

} // namespace

int main(int argc, char** argv) {
    std::unique_ptr<mail::dns::Resolver> resolver;
    std::string dns, zone;
    for (int k = 1; k < argc; ++k) {
        std::string a = argv[k];
        if (a == "--dns" && k + 1 < argc) dns = argv[++k];
        else if (a == "--zone" && k + 1 < argc) zone = argv[++k];
        else return usage();
    }
    if (dns.empty() == zone.empty()) return usage();
    if (!dns.empty()) {
        auto hp = mail::parse_host_port(dns);
        if (!hp) return usage();
        mail::dns::ResolverOptions o;
        o.servers.push_back(*hp);
        o.timeout = std::chrono::milliseconds(3000);
        auto r = mail::dns::make_resolver(o);
        if (!r) {
            std::cerr << "dkimcheck: " << r.error().text << "\n";
            return 78;
        }
        resolver = std::move(*r);
    } else {
        std::ifstream in(zone);
        if (!in) {
            std::cerr << "dkimcheck: cannot read " << zone << "\n";
            return 78;
        }
        resolver = std::make_unique<ZoneResolver>(in);
    }
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
