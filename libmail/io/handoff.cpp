// Handing the real client on: see handoff.hpp.
#include "libmail/io/handoff.hpp"

#include "libmail/base/text.hpp"
#include "libmail/io/net.hpp"
#include "libmail/io/smtp_client.hpp"

#include <arpa/inet.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <optional>

namespace mail {

namespace {

constexpr std::size_t xclient_line_max = 510;  // 512 with the CRLF (RFC 5321 §4.5.3.1.4)
constexpr std::size_t xclient_value_max = 255;
constexpr std::size_t ptr_names_max = 10;

// The port of HOST:PORT or [IPv6]:PORT: digits only, else "".
std::string port_of(std::string_view peer) {
    auto colon = peer.rfind(':');
    if (colon == std::string_view::npos) return "";
    std::string_view p = peer.substr(colon + 1);
    if (p.empty() || p.size() > 5 || !std::all_of(p.begin(), p.end(), [](char ch) { return ch >= '0' && ch <= '9'; }))
        return "";
    if (colon > 0 && peer.find(':') != colon && peer[colon - 1] != ']') return "";  // a bare IPv6 address
    return std::string(p);
}

// 16 octets of an IPv6 address (IPv4 as IPv4-mapped), or nothing.
struct Addr {
    bool v6 = false;
    unsigned char b[16] = {};
};

std::optional<Addr> addr_of(const std::string& ip) {
    Addr a;
    if (::inet_pton(AF_INET, ip.c_str(), a.b + 12) == 1) {
        a.b[10] = a.b[11] = 0xff;
        return a;
    }
    if (::inet_pton(AF_INET6, ip.c_str(), a.b) == 1) {
        a.v6 = true;
        return a;
    }
    return std::nullopt;
}

void put16(std::string& out, unsigned v) {
    out += static_cast<char>((v >> 8) & 0xff);
    out += static_cast<char>(v & 0xff);
}

} // namespace

std::string RealClient::key() const {
    std::string k = peer + '\n' + local + '\n' + name + '\n' + (name_temporary ? "t" : "") + '\n' + helo + '\n' +
                    (esmtp ? "e" : "") + '\n' + login;
    return k;
}

std::string xtext(std::string_view value) {
    static const char hex[] = "0123456789ABCDEF";
    std::string out;
    out.reserve(value.size());
    for (char ch : value) {
        auto c = static_cast<unsigned char>(ch);
        if (c >= '!' && c <= '~' && c != '+' && c != '=') {
            out += ch;
        } else {
            out += '+';
            out += hex[c >> 4];
            out += hex[c & 15];
        }
    }
    return out;
}

std::vector<std::string> xclient_lines(const RealClient& c, const std::vector<std::string>& offered) {
    auto bounded = [](std::string_view v) {
        std::string x = xtext(v);
        return v.empty() || x.size() > xclient_value_max ? std::string("[UNAVAILABLE]") : x;
    };
    std::string ip = client_ip(c.peer);
    std::string addr = ip.empty() ? "[UNAVAILABLE]" : ip.find(':') != std::string::npos ? "IPV6:" + ip : ip;
    std::string port = port_of(c.peer);
    std::string name = !c.name.empty() ? bounded(c.name) : c.name_temporary ? "[TEMPUNAVAIL]" : "[UNAVAILABLE]";
    std::vector<std::pair<std::string, std::string>> attrs{
        {"ADDR", addr},
        {"PORT", port.empty() ? "[UNAVAILABLE]" : port},
        {"NAME", name},
        {"HELO", bounded(c.helo)},
        {"LOGIN", bounded(c.login)},
        {"PROTO", c.esmtp ? "ESMTP" : "SMTP"},
    };
    std::vector<std::string> lines;
    std::string line;
    for (const auto& [k, v] : attrs) {
        if (!offered.empty() && std::find(offered.begin(), offered.end(), k) == offered.end()) continue;
        std::string a = " " + k + "=" + v;
        if (!line.empty() && line.size() + a.size() > xclient_line_max) {
            lines.push_back(line);
            line.clear();
        }
        if (line.empty()) line = "XCLIENT";
        line += a;
    }
    if (!line.empty()) lines.push_back(line);
    return lines;
}

std::string proxy_v2_header(std::string_view source, std::string_view dest) {
    static const char sig[] = "\r\n\r\n\0\r\nQUIT\n";
    std::string out(sig, 12);
    auto src = addr_of(client_ip(source));
    auto dst = addr_of(client_ip(dest));
    std::string sport = port_of(source), dport = port_of(dest);
    if (!src || !dst || sport.empty() || dport.empty()) {
        out += '\x20';  // version 2, LOCAL
        out += '\x00';  // AF_UNSPEC
        put16(out, 0);
        return out;
    }
    out += '\x21';  // version 2, PROXY
    if (!src->v6 && !dst->v6) {
        out += '\x11';  // TCP over IPv4
        put16(out, 12);
        out.append(reinterpret_cast<const char*>(src->b + 12), 4);
        out.append(reinterpret_cast<const char*>(dst->b + 12), 4);
    } else {
        out += '\x21';  // TCP over IPv6
        put16(out, 36);
        out.append(reinterpret_cast<const char*>(src->b), 16);
        out.append(reinterpret_cast<const char*>(dst->b), 16);
    }
    put16(out, static_cast<unsigned>(std::stoul(sport)));
    put16(out, static_cast<unsigned>(std::stoul(dport)));
    return out;
}

std::string confirmed_name(dns::Resolver& resolver, std::string_view ip, bool& temporary) {
    temporary = false;
    auto rev = dns::reverse_name(ip);
    if (!rev) return "";
    auto want = addr_of(std::string(ip));
    if (!want) return "";
    auto ptr = resolver.query(*rev, dns::Type::ptr);
    if (ptr.temporary()) temporary = true;
    std::size_t tried = 0;
    for (const auto& r : ptr.records) {
        if (tried++ >= ptr_names_max) break;
        if (r.text.empty() || r.text.size() > 253) continue;
        auto a = resolver.query(r.text, want->v6 ? dns::Type::aaaa : dns::Type::a);
        if (a.temporary()) temporary = true;
        for (const auto& x : a.records) {
            auto got = addr_of(x.text);
            if (got && std::memcmp(got->b, want->b, 16) == 0) {
                temporary = false;
                return r.text;
            }
        }
    }
    return "";
}

Result<void> hand_off(SmtpClient& client, XclientMode mode, const RealClient& c, const std::string& fallback_helo) {
    if (mode == XclientMode::no) return {};
    std::string key = c.key();
    if (client.handed_to() == key) return {};
    auto params = client.extension_params("XCLIENT");
    if (!params) {
        if (mode == XclientMode::required) return Error{ErrorKind::tempfail, "the server does not offer XCLIENT"};
        return {};
    }
    for (const auto& line : xclient_lines(c, *params)) {
        auto r = client.command(line);
        if (!r) return Error{ErrorKind::tempfail, "XCLIENT: " + r.error().text};
        // 220: the server starts over as for a new connection (Postfix); 250: the older form of success
        // (XCLIENT_README before Postfix 2.3, smtp-sink).
        if (r->code != 220 && r->code != 250)
            return Error{ErrorKind::tempfail, "XCLIENT refused: " + std::to_string(r->code) + " " +
                                                  (r->lines.empty() ? "" : r->lines.front())};
    }
    // Greet the server as the client did: Postfix records this HELO name, not XCLIENT's.
    std::string helo = c.helo.empty() ? fallback_helo : c.helo;
    if (auto g = client.greet(helo, c.esmtp || c.helo.empty()); !g) return g.error();
    client.set_handed_to(key);
    return {};
}

} // namespace mail
