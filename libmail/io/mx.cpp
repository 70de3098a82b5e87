#include "libmail/io/mx.hpp"

#include "libmail/base/text.hpp"

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <memory>

#include <arpa/inet.h>
#include <netdb.h>
#include <sys/socket.h>
#include <netinet/in.h>

namespace mail {

namespace {

// RFC 1035 §2.3.4: a name is at most 253 octets as dotted text, a label at most 63.
constexpr std::size_t max_name_text = 253;
constexpr std::size_t max_label = 63;
// The MX hosts of a domain whose addresses are looked up: a legitimate domain has a handful; a hostile one
// must not make one SOURCE notice cost hundreds of queries.
constexpr std::size_t max_mx_hosts = 10;
constexpr int rcode_nxdomain = 3;

Error malformed(const std::string& what) { return Error{ErrorKind::data, "malformed DNS response: " + what}; }

bool host_char(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
}

// Untrusted text made safe for a one-line diagnostic: no controls, bounded.
std::string printable(std::string_view s) { return scrub(s, 80); }

const char* rcode_name(int rcode) {
    switch (rcode) {
    case 1: return "FORMERR";
    case 2: return "SERVFAIL";
    case 3: return "NXDOMAIN";
    case 4: return "NOTIMP";
    case 5: return "REFUSED";
    }
    return nullptr;
}

// The MX records of an answer: each host a host name (kind data otherwise: the caller decides whether that is
// a malformed packet or a failed lookup), the root as "."; sorted by preference, equal ones in order.
Result<std::vector<MxRecord>> mx_records(const std::vector<dns::Record>& records) {
    std::vector<MxRecord> out;
    for (const auto& rec : records) {
        if (rec.type != dns::Type::mx) continue;
        if (!std::all_of(rec.text.begin(), rec.text.end(), [](char c) { return c == '.' || host_char(c); }))
            return malformed("MX host '" + printable(rec.text) + "' is not a host name");
        out.push_back(MxRecord{rec.preference, rec.text.empty() ? "." : rec.text});
    }
    std::stable_sort(out.begin(), out.end(), [](const MxRecord& a, const MxRecord& b) { return a.preference < b.preference; });
    return out;
}

} // namespace

// The packet parsers are the resolver's (io/dns parse_response); these keep what the MX code needs of it.
Result<MxResponse> parse_mx_message(std::string_view p) {
    auto parsed = dns::parse_response(p);
    if (!parsed) return parsed.error();
    MxResponse r;
    r.rcode = parsed->rcode;
    r.truncated = parsed->truncated;
    r.answers = static_cast<int>(parsed->answers.size());
    auto records = mx_records(parsed->answers);
    if (!records) return records.error();
    r.records = std::move(*records);
    return r;
}

Result<AddressResponse> parse_address_message(std::string_view p) {
    auto parsed = dns::parse_response(p);
    if (!parsed) return parsed.error();
    AddressResponse r;
    r.rcode = parsed->rcode;
    r.truncated = parsed->truncated;
    for (const auto& rec : parsed->answers)
        if (rec.type == dns::Type::a || rec.type == dns::Type::aaaa) r.addresses.push_back(rec.text);
    return r;
}

namespace {

// 16 octets for any numeric address (IPv4 as ::ffff:a.b.c.d), or false.
bool address_bytes(std::string_view ip, unsigned char out[16]) {
    std::string s(ip);
    if (s.size() >= 2 && s.front() == '[' && s.back() == ']') s = s.substr(1, s.size() - 2);
    if (auto pct = s.find('%'); pct != std::string::npos) s.resize(pct);  // a zone index
    in_addr v4;
    if (::inet_pton(AF_INET, s.c_str(), &v4) == 1) {
        std::memset(out, 0, 10);
        out[10] = out[11] = 0xff;
        std::memcpy(out + 12, &v4, 4);
        return true;
    }
    return ::inet_pton(AF_INET6, s.c_str(), out) == 1;
}

bool internal_v4(const unsigned char* a) {
    const unsigned x = a[0], y = a[1];
    return x == 0 || x == 10 || x == 127 || (x == 100 && (y & 0xc0) == 64) || (x == 169 && y == 254) ||
           (x == 172 && (y & 0xf0) == 16) || (x == 192 && y == 168) ||
           (x == 192 && y == 0 && a[2] == 0) ||  // 192.0.0.0/24 IETF protocol assignments (RFC 6890)
           (x == 198 && (y & 0xfe) == 18) ||     // 198.18.0.0/15 benchmarking (RFC 2544)
           x >= 224;                             // 224/4 multicast, 240/4 and broadcast
}

} // namespace

bool internal_address(std::string_view ip) {
    unsigned char a[16];
    if (!address_bytes(ip, a)) return true;
    static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    static const unsigned char nat64[12] = {0, 0x64, 0xff, 0x9b, 0, 0, 0, 0, 0, 0, 0, 0};
    if (std::memcmp(a, mapped, 12) == 0 || std::memcmp(a, nat64, 12) == 0) return internal_v4(a + 12);
    bool zero = true;
    for (int i = 0; i < 15; ++i) zero = zero && a[i] == 0;
    if (zero && (a[15] == 0 || a[15] == 1)) return true;                 // :: and ::1
    static const unsigned char compat[12] = {};
    if (std::memcmp(a, compat, 12) == 0) return true;                    // ::/96 IPv4-compatible (deprecated, RFC 4291)
    static const unsigned char local_nat64[6] = {0, 0x64, 0xff, 0x9b, 0, 1};
    if (std::memcmp(a, local_nat64, 6) == 0) return true;                // 64:ff9b:1::/48 local-use NAT64 (RFC 8215)
    if (a[0] == 0x20 && a[1] == 0x02) return internal_v4(a + 2);         // 2002::/16 6to4: its embedded IPv4 (RFC 3056)
    if (a[0] == 0xff) return true;                                       // ff00::/8 multicast
    if ((a[0] & 0xfe) == 0xfc) return true;                              // fc00::/7 unique local
    if (a[0] == 0xfe && (a[1] & 0xc0) == 0x80) return true;              // fe80::/10 link-local
    if (a[0] == 0xfe && (a[1] & 0xc0) == 0xc0) return true;              // fec0::/10 site-local (deprecated)
    return false;
}

bool same_address(std::string_view a, std::string_view b) {
    unsigned char x[16], y[16];
    return address_bytes(a, x) && address_bytes(b, y) && std::memcmp(x, y, 16) == 0;
}

Result<std::vector<MxRecord>> parse_mx_response(std::string_view packet) {
    auto r = parse_mx_message(packet);
    if (!r) return r.error();
    return std::move(r->records);
}

Result<std::string> normalize_mail_domain(std::string_view domain) {
    const std::string shown = "'" + printable(domain) + "'";
    std::string_view d = domain;
    if (!d.empty() && d.back() == '.') d.remove_suffix(1);
    if (d.empty()) return Error{ErrorKind::data, "empty domain"};
    if (d.size() > max_name_text) return Error{ErrorKind::data, shown + ": domain longer than 253 octets"};
    std::string out;
    out.reserve(d.size());
    std::size_t label = 0;
    for (char c : d) {
        if (c == '.') {
            if (label == 0) return Error{ErrorKind::data, shown + ": empty label in domain"};
            label = 0;
        } else if (!host_char(c)) {
            return Error{ErrorKind::data, shown + ": invalid character in domain"};
        } else if (++label > max_label) {
            return Error{ErrorKind::data, shown + ": label longer than 63 octets"};
        }
        out += lower(c);
    }
    if (label == 0) return Error{ErrorKind::data, shown + ": empty label in domain"};
    return out;
}

Result<void> add_mx_map_entry(MxMap& map, std::string_view text) {
    const std::string want = "'" + printable(text) + "': want DOMAIN=HOST:PORT";
    auto eq = text.find('=');
    if (eq == std::string_view::npos) return Error{ErrorKind::usage, want};
    auto domain = normalize_mail_domain(text.substr(0, eq));
    if (!domain) return Error{ErrorKind::usage, want + " (" + domain.error().text + ")"};
    auto hp = parse_host_port(text.substr(eq + 1));
    if (!hp) return Error{ErrorKind::usage, want};
    map[*domain] = std::move(*hp);
    return {};
}

Result<std::vector<HostPort>> hosts_from_response(std::string_view domain, const MxResponse& response,
                                                  const std::string& port) {
    const std::string d(domain);
    if (response.rcode == rcode_nxdomain) return Error{ErrorKind::rejected, d + ": no such domain"};
    if (response.rcode != 0) {
        const char* name = rcode_name(response.rcode);
        return Error{ErrorKind::tempfail, d + ": MX lookup failed: " +
                                              (name ? std::string(name) : "rcode " + std::to_string(response.rcode))};
    }
    // A truncated answer may lack MX records that exist: taking it for "no MX" would be wrong.
    if (response.truncated) return Error{ErrorKind::tempfail, d + ": MX lookup failed: truncated response"};
    if (response.records.empty()) return std::vector<HostPort>{HostPort{d, port}};  // RFC 5321 §5.1
    std::vector<HostPort> hosts;
    // RFC 7505 §3 forbids a null MX beside others; where one is, it is no host to try.
    for (const auto& mx : response.records)
        if (mx.host != ".") hosts.push_back(HostPort{mx.host, port});
    if (hosts.empty()) return Error{ErrorKind::rejected, d + ": null MX: accepts no mail"};
    return hosts;
}

Result<std::vector<HostPort>> hosts_from_answer(std::string_view domain, const dns::Answer& answer,
                                                const std::string& port) {
    const std::string d(domain);
    switch (answer.status) {
    case dns::Status::nxdomain: return Error{ErrorKind::rejected, d + ": no such domain"};
    case dns::Status::ok: break;
    default: return Error{ErrorKind::tempfail, d + ": MX lookup failed: " + answer.detail};
    }
    MxResponse r;
    r.answers = static_cast<int>(answer.records.size());
    auto records = mx_records(answer.records);
    if (!records) return Error{ErrorKind::tempfail, d + ": MX lookup failed: " + records.error().text};
    r.records = std::move(*records);
    return hosts_from_response(d, r, port);
}

namespace {

using Clock = std::chrono::steady_clock;

// The resolver to ask: the caller's, else one of the system's servers made for this call.
struct Asker {
    dns::Resolver* r = nullptr;
    std::unique_ptr<dns::Resolver> own;
    Result<void> make(dns::Resolver* given, std::chrono::milliseconds timeout) {
        if (given) {
            r = given;
            return {};
        }
        dns::ResolverOptions o;
        o.timeout = std::max(std::chrono::milliseconds(1), timeout);
        auto made = dns::make_resolver(o);
        if (!made) return Error{ErrorKind::tempfail, "no DNS resolver: " + made.error().text};
        own = std::move(*made);
        r = own.get();
        return {};
    }
};

std::chrono::milliseconds left(Clock::time_point until) {
    return std::max(std::chrono::milliseconds(0), std::chrono::duration_cast<std::chrono::milliseconds>(until - Clock::now()));
}

// One A or AAAA lookup of host into t: its addresses added (internal ones counted, not kept), or t.error set
// when it failed. False when the host does not exist (no further lookup of it is needed).
bool add_addresses(MailTarget& t, const std::string& host, dns::Type type, Clock::time_point until, dns::Resolver& r) {
    auto fail = [&](const std::string& e) {
        if (t.error.empty()) t.error = e;
        return true;
    };
    if (left(until).count() <= 0) return fail(host + ": address lookup failed: timeout");
    auto a = r.query(host, type);
    if (a.status == dns::Status::nxdomain) return false;  // no such host: nothing to reach there
    if (a.temporary()) return fail(host + ": address lookup failed: " + a.detail);
    for (auto& rec : a.records) {
        if (internal_address(rec.text)) ++t.internal;
        else if (std::find(t.addresses.begin(), t.addresses.end(), rec.text) == t.addresses.end())
            t.addresses.push_back(rec.text);
    }
    return true;
}

} // namespace

Result<std::vector<HostPort>> mail_hosts(std::string_view domain, const MxMap& map, const std::string& port,
                                         std::chrono::milliseconds timeout, dns::Resolver* resolver) {
    auto d = normalize_mail_domain(domain);
    if (!d) return d.error();
    if (auto it = map.find(*d); it != map.end()) return std::vector<HostPort>{it->second};
    Asker ask;
    if (auto m = ask.make(resolver, timeout); !m) return m.error();
    return hosts_from_answer(*d, ask.r->query(*d, dns::Type::mx), port);
}

Result<std::vector<MailTarget>> mail_targets(std::string_view domain, const MxMap& map, const std::string& port,
                                             std::chrono::milliseconds timeout,
                                             const std::function<bool(const MailTarget&)>& enough,
                                             dns::Resolver* resolver) {
    const auto until = Clock::now() + timeout;
    auto d = normalize_mail_domain(domain);
    if (!d) return d.error();
    std::vector<MailTarget> out;
    if (auto it = map.find(*d); it != map.end()) {
        // The administrator's own entry: taken as written, whatever the address.
        MailTarget t;
        t.host = it->second;
        t.mapped = true;
        addrinfo hints{};
        hints.ai_socktype = SOCK_STREAM;
        addrinfo* res = nullptr;
        if (::getaddrinfo(t.host.host.c_str(), nullptr, &hints, &res) == 0) {
            for (addrinfo* ai = res; ai; ai = ai->ai_next) {
                char text[NI_MAXHOST] = {};
                if (::getnameinfo(ai->ai_addr, ai->ai_addrlen, text, sizeof text, nullptr, 0, NI_NUMERICHOST) == 0)
                    t.addresses.emplace_back(text);
            }
            ::freeaddrinfo(res);
        }
        out.push_back(std::move(t));
        return out;
    }
    Asker ask;
    if (auto m = ask.make(resolver, timeout); !m) return m.error();
    auto hosts = hosts_from_answer(*d, ask.r->query(*d, dns::Type::mx), port);
    if (!hosts) return hosts.error();
    // A host whose lookup fails (a server dropping AAAA queries, the shared deadline) is kept with its error
    // and whatever resolved: one broken host must not cost the domain its others.
    for (auto& hp : *hosts) {
        if (out.size() >= max_mx_hosts) break;
        MailTarget t;
        t.host = std::move(hp);
        for (dns::Type type : {dns::Type::a, dns::Type::aaaa}) {
            if (!add_addresses(t, t.host.host, type, until, *ask.r)) break;
            if (enough && enough(t)) {
                out.push_back(std::move(t));
                return out;
            }
        }
        out.push_back(std::move(t));
    }
    return out;
}

bool targets_failed(const std::vector<MailTarget>& targets) {
    return std::any_of(targets.begin(), targets.end(), [](const MailTarget& t) { return !t.error.empty(); });
}

bool is_target_address(const std::vector<MailTarget>& targets, std::string_view ip) {
    for (const auto& t : targets)
        for (const auto& a : t.addresses)
            if (same_address(a, ip) && (t.mapped || !internal_address(a))) return true;
    return false;
}

} // namespace mail
