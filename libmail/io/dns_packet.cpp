// The pure part of the DNS layer (see dns.hpp): query packets, response parsing, CNAME chains, and the
// small text forms (--dns values, reverse names). No sockets here; every read of a packet is bounds-checked.
#include "libmail/io/dns.hpp"

#include <algorithm>
#include <cstring>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

namespace mail::dns {

namespace {

// RFC 1035 §4.1.1: the fixed header.
constexpr std::size_t header_size = 12;
// RFC 1035 §2.3.4: a name on the wire is at most 255 octets (length octets and root label included)...
constexpr std::size_t max_name_wire = 255;
// ...which is at most 253 octets as dotted text; a label at most 63.
constexpr std::size_t max_name_text = 253;
constexpr std::size_t max_label = 63;
// A CNAME chain longer than this is a loop or an attack (the header says at most 8).
constexpr int max_cname_hops = 8;
// --dns takes a handful of servers, not a list to scan.
constexpr std::size_t max_servers = 8;
constexpr unsigned class_in = 1;
constexpr unsigned type_opt = 41;
constexpr unsigned edns_udp_size = 1232;

Error malformed(const std::string& what) { return Error{ErrorKind::data, "malformed DNS response: " + what}; }

unsigned u8(std::string_view p, std::size_t off) { return static_cast<unsigned char>(p[off]); }
unsigned u16(std::string_view p, std::size_t off) { return (u8(p, off) << 8) | u8(p, off + 1); }
std::uint32_t u32(std::string_view p, std::size_t off) {
    return (static_cast<std::uint32_t>(u16(p, off)) << 16) | u16(p, off + 2);
}

char lower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c + 32) : c; }

void put16(std::string& out, unsigned v) {
    out += static_cast<char>((v >> 8) & 0xff);
    out += static_cast<char>(v & 0xff);
}

// An octet of a label as text: printable ASCII as itself (lower-case), the rest (and '.', '\') as \DDD, the
// zone-file escape, so a label can never forge a dot or a control character into a name.
void append_label_octet(std::string& out, unsigned char c) {
    if (c > 0x20 && c < 0x7f && c != '.' && c != '\\') {
        out += lower(static_cast<char>(c));
        return;
    }
    out += '\\';
    out += static_cast<char>('0' + c / 100);
    out += static_cast<char>('0' + (c / 10) % 10);
    out += static_cast<char>('0' + c % 10);
}

struct Name {
    std::string text;     // dotted, lower-case, no trailing dot, "" for the root
    std::size_t end = 0;  // offset just past the name where it sits (before any pointer it follows)
};

// Reads the possibly compressed name at off (RFC 1035 §4.1.4). A pointer must point before itself, so
// every jump goes strictly backwards and no loop is possible; the 255-octet limit bounds the rest.
Result<Name> read_name(std::string_view p, std::size_t off) {
    Name n;
    std::size_t pos = off;
    std::size_t wire = 0;
    bool jumped = false;
    for (;;) {
        if (pos >= p.size()) return malformed("name runs past the end");
        unsigned len = u8(p, pos);
        if ((len & 0xC0) == 0xC0) {
            if (pos + 1 >= p.size()) return malformed("name runs past the end");
            std::size_t target = ((len & 0x3F) << 8) | u8(p, pos + 1);
            if (target >= pos) return malformed("compression pointer loop");
            if (!jumped) n.end = pos + 2;
            jumped = true;
            pos = target;
            continue;
        }
        if ((len & 0xC0) != 0) return malformed("unknown label type");
        wire += 1 + len;
        if (wire > max_name_wire) return malformed("name longer than 255 octets");
        if (len == 0) {
            if (!jumped) n.end = pos + 1;
            break;
        }
        if (pos + 1 + len > p.size()) return malformed("name runs past the end");
        if (!n.text.empty()) n.text += '.';
        for (char c : p.substr(pos + 1, len)) append_label_octet(n.text, static_cast<unsigned char>(c));
        pos += 1 + len;
    }
    return n;
}


bool known_type(unsigned t) {
    switch (t) {
    case 1: case 2: case 5: case 12: case 15: case 16: case 28: return true;
    }
    return false;
}

// RFC 2181 §8: a TTL with the top bit set is taken as 0.
std::uint32_t ttl_value(std::uint32_t t) { return (t & 0x80000000u) ? 0 : t; }

// The RDATA of a record of a known type at [data, data+len) into rec.
Result<void> read_rdata(std::string_view p, std::size_t data, std::size_t len, Record& rec) {
    auto whole_name = [&](std::size_t at) -> Result<void> {
        auto host = read_name(p, at);
        if (!host) return host.error();
        if (host->end != data + len) return malformed(std::string(type_name(rec.type)) + " record length does not match its name");
        rec.text = std::move(host->text);
        return {};
    };
    switch (rec.type) {
    case Type::a:
    case Type::aaaa: {
        const bool v4 = rec.type == Type::a;
        if (len != (v4 ? 4u : 16u)) return malformed("address record of the wrong length");
        char text[INET6_ADDRSTRLEN] = {};
        if (!::inet_ntop(v4 ? AF_INET : AF_INET6, p.data() + data, text, sizeof text))
            return malformed("unprintable address");
        rec.text = text;
        return {};
    }
    case Type::mx:
        if (len < 3) return malformed("short MX record");
        rec.preference = static_cast<int>(u16(p, data));
        return whole_name(data + 2);
    case Type::cname:
    case Type::ptr:
    case Type::ns:
        return whole_name(data);
    case Type::txt: {
        std::size_t pos = data;
        while (pos < data + len) {
            std::size_t n = u8(p, pos);
            if (pos + 1 + n > data + len) return malformed("TXT string runs past its record");
            rec.strings.emplace_back(p.substr(pos + 1, n));
            rec.text += rec.strings.back();
            pos += 1 + n;
        }
        return {};
    }
    case Type::soa: break;
    }
    return {};
}

} // namespace

std::string canonical_name(std::string_view name) {
    if (!name.empty() && name.back() == '.') name.remove_suffix(1);
    std::string out;
    out.reserve(name.size());
    for (char c : name) {
        if (c == '.') out += c;
        else append_label_octet(out, static_cast<unsigned char>(c));
    }
    return out;
}

std::string_view type_name(Type t) {
    switch (t) {
    case Type::a: return "A";
    case Type::ns: return "NS";
    case Type::cname: return "CNAME";
    case Type::soa: return "SOA";
    case Type::ptr: return "PTR";
    case Type::mx: return "MX";
    case Type::txt: return "TXT";
    case Type::aaaa: return "AAAA";
    }
    return "?";
}

Result<std::string> build_query(std::uint16_t id, std::string_view name, Type type) {
    if (name.empty()) return Error{ErrorKind::data, "empty DNS name"};
    if (!name.empty() && name.back() == '.') name.remove_suffix(1);
    if (name.size() > max_name_text) return Error{ErrorKind::data, "DNS name longer than 253 octets"};
    std::string out;
    out.reserve(header_size + name.size() + 2 + 4 + 11);
    put16(out, id);
    put16(out, 0x0100);  // a standard query, RD
    put16(out, 1);       // QDCOUNT
    put16(out, 0);
    put16(out, 0);
    put16(out, 1);       // ARCOUNT: the OPT record
    // An empty name (after the dot) is the root; every other label must be 1..63 octets.
    std::size_t start = 0;
    while (!name.empty() && start <= name.size()) {
        std::size_t dot = name.find('.', start);
        if (dot == std::string_view::npos) dot = name.size();
        std::size_t len = dot - start;
        if (len == 0) return Error{ErrorKind::data, "DNS name with an empty label"};
        if (len > max_label) return Error{ErrorKind::data, "DNS label longer than 63 octets"};
        out += static_cast<char>(len);
        out.append(name.substr(start, len));
        start = dot + 1;
    }
    out += '\0';
    put16(out, static_cast<unsigned>(type));
    put16(out, class_in);
    // RFC 6891 §6.1.2: OPT, root owner, CLASS = the UDP payload we take, TTL 0 (no DO), no options.
    out += '\0';
    put16(out, type_opt);
    put16(out, edns_udp_size);
    put16(out, 0);
    put16(out, 0);
    put16(out, 0);
    return out;
}

Result<Response> parse_response(std::string_view p) {
    if (p.size() < header_size) return malformed("shorter than a header");
    if ((u8(p, 2) & 0x80) == 0) return malformed("not a response");
    Response r;
    r.id = static_cast<std::uint16_t>(u16(p, 0));
    r.truncated = (u8(p, 2) & 0x02) != 0;
    r.rcode = static_cast<int>(u8(p, 3) & 0x0F);
    const unsigned qdcount = u16(p, 4), ancount = u16(p, 6), nscount = u16(p, 8), arcount = u16(p, 10);
    if (qdcount > 1) return malformed("more than one question");

    std::size_t pos = header_size;
    if (qdcount == 1) {
        auto q = read_name(p, pos);
        if (!q) return q.error();
        pos = q->end;
        if (p.size() - pos < 4) return malformed("question runs past the end");
        r.question = std::move(q->text);
        r.question_type = static_cast<std::uint16_t>(u16(p, pos));
        pos += 4;
    }
    // A truncated response may stop anywhere after its question: what it holds is not used for an answer
    // (the resolver asks again over TCP), so its sections need not be whole.
    const unsigned sections[3] = {ancount, nscount, arcount};
    for (int s = 0; s < 3; ++s) {
        for (unsigned i = 0; i < sections[s]; ++i) {
            auto owner = read_name(p, pos);
            if (!owner) {
                if (r.truncated) return r;
                return owner.error();
            }
            pos = owner->end;
            if (p.size() - pos < 10) {
                if (r.truncated) return r;
                return malformed("record runs past the end");
            }
            const unsigned type = u16(p, pos), cls = u16(p, pos + 2);
            const std::uint32_t ttl = ttl_value(u32(p, pos + 4));
            const std::size_t len = u16(p, pos + 8);
            pos += 10;
            if (p.size() - pos < len) {
                if (r.truncated) return r;
                return malformed("record data runs past the end");
            }
            const std::size_t data = pos;
            pos += len;
            if (cls != class_in) continue;
            if (s == 0 && known_type(type)) {
                Record rec;
                rec.type = static_cast<Type>(type);
                rec.ttl = ttl;
                rec.name = std::move(owner->text);
                if (auto v = read_rdata(p, data, len, rec); !v) return v.error();
                r.answers.push_back(std::move(rec));
            } else if (s == 1 && type == static_cast<unsigned>(Type::soa)) {
                // RFC 2308 §5: the negative TTL is the lesser of the SOA's own TTL and its MINIMUM field,
                // the last of the RDATA after two names and four 32-bit fields.
                auto mname = read_name(p, data);
                if (!mname) return mname.error();
                auto rname = read_name(p, mname->end);
                if (!rname) return rname.error();
                if (rname->end + 20 != data + len) return malformed("SOA record length does not match");
                std::uint32_t minimum = ttl_value(u32(p, rname->end + 16));
                std::uint32_t neg = std::min(ttl, minimum);
                r.negative_ttl = r.negative_ttl ? std::min(*r.negative_ttl, neg) : neg;
            }
        }
    }
    return r;
}

Answer answer_from(const Response& r, std::string_view name, Type type) {
    Answer a;
    if (r.truncated) {
        a.status = Status::error;
        a.detail = "truncated response";
        return a;
    }
    if (r.rcode != 0 && r.rcode != 3) {
        a.status = Status::servfail;
        switch (r.rcode) {
        case 1: a.detail = "FORMERR"; break;
        case 2: a.detail = "SERVFAIL"; break;
        case 4: a.detail = "NOTIMP"; break;
        case 5: a.detail = "REFUSED"; break;
        default: a.detail = "rcode " + std::to_string(r.rcode);
        }
        return a;
    }
    std::string current = canonical_name(name);
    std::optional<std::uint32_t> ttl;
    auto least = [&](std::uint32_t t) { ttl = ttl ? std::min(*ttl, t) : t; };
    for (int hops = 0;; ++hops) {
        for (const auto& rec : r.answers)
            if (rec.type == type && rec.name == current) {
                a.records.push_back(rec);
                least(rec.ttl);
            }
        if (!a.records.empty() || type == Type::cname) break;
        auto cn = std::find_if(r.answers.begin(), r.answers.end(),
                               [&](const Record& x) { return x.type == Type::cname && x.name == current; });
        if (cn == r.answers.end()) break;
        if (hops >= max_cname_hops) {
            a.status = Status::error;
            a.detail = "CNAME chain longer than " + std::to_string(max_cname_hops);
            a.ttl = 0;
            return a;
        }
        least(cn->ttl);
        current = cn->text;
    }
    if (r.rcode == 3 && a.records.empty()) a.status = Status::nxdomain;
    if (a.records.empty()) least(r.negative_ttl.value_or(0));
    a.ttl = ttl.value_or(0);
    return a;
}

Result<std::vector<HostPort>> parse_servers(std::string_view text) {
    auto bad = [&](std::string_view item, const std::string& why) {
        std::string shown;
        for (char c : item.substr(0, 80)) shown += (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) ? '?' : c;
        return Error{ErrorKind::usage, "'" + shown + "': " + why};
    };
    std::vector<HostPort> out;
    std::size_t start = 0;
    for (;;) {
        std::size_t comma = text.find(',', start);
        std::string_view item = text.substr(start, comma == std::string_view::npos ? std::string_view::npos : comma - start);
        while (!item.empty() && (item.front() == ' ' || item.front() == '\t')) item.remove_prefix(1);
        while (!item.empty() && (item.back() == ' ' || item.back() == '\t')) item.remove_suffix(1);
        if (item.empty()) return Error{ErrorKind::usage, "want HOST:PORT[,HOST:PORT...] with numeric addresses"};
        HostPort hp;
        std::string_view host = item, port = "53";
        if (item.front() == '[') {
            auto close = item.find(']');
            if (close == std::string_view::npos) return bad(item, "missing ]");
            host = item.substr(1, close - 1);
            std::string_view rest = item.substr(close + 1);
            if (!rest.empty()) {
                if (rest.front() != ':') return bad(item, "want [IPv6]:PORT");
                port = rest.substr(1);
            }
        } else if (auto colon = item.find(':'); colon != std::string_view::npos && item.find(':', colon + 1) == std::string_view::npos) {
            host = item.substr(0, colon);
            port = item.substr(colon + 1);
        }
        std::string h(host);
        unsigned char buf[16];
        if (::inet_pton(AF_INET, h.c_str(), buf) != 1 && ::inet_pton(AF_INET6, h.c_str(), buf) != 1)
            return bad(item, "not a numeric IP address");
        if (port.empty() || port.size() > 5 || !std::all_of(port.begin(), port.end(), [](char c) { return c >= '0' && c <= '9'; }))
            return bad(item, "bad port");
        unsigned long pn = std::stoul(std::string(port));
        if (pn == 0 || pn > 65535) return bad(item, "port out of range");
        hp.host = h;
        hp.port = std::to_string(pn);
        out.push_back(std::move(hp));
        if (out.size() > max_servers) return Error{ErrorKind::usage, "more than " + std::to_string(max_servers) + " DNS servers"};
        if (comma == std::string_view::npos) break;
        start = comma + 1;
    }
    return out;
}

Result<std::string> reverse_name(std::string_view ip) {
    std::string s(ip);
    unsigned char b[16];
    if (::inet_pton(AF_INET, s.c_str(), b) == 1) {
        std::string out;
        for (int i = 3; i >= 0; --i) out += std::to_string(b[i]) + ".";
        return out + "in-addr.arpa";
    }
    if (::inet_pton(AF_INET6, s.c_str(), b) == 1) {
        static const char hex[] = "0123456789abcdef";
        std::string out;
        for (int i = 15; i >= 0; --i) {
            out += hex[b[i] & 0xf];
            out += '.';
            out += hex[b[i] >> 4];
            out += '.';
        }
        return out + "ip6.arpa";
    }
    std::string shown;
    for (char c : ip.substr(0, 60)) shown += (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) ? '?' : c;
    return Error{ErrorKind::data, "'" + shown + "' is not a numeric IP address"};
}

} // namespace mail::dns
