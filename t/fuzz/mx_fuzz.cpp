// Fuzz target: DNS responses to MX queries (the packet comes from the
// network), with invariants: the parser never reads past the packet (ASan);
// what it returns is sorted by preference, every host is "." or a host name
// of at most 253 octets that normalize_mail_domain keeps as it is; the
// records, written back as a plain packet, parse to the same list; errors
// are one line; hosts_from_response gives a non-empty list or an error.
#include "libmail/io/mx.hpp"

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace {

void check(bool ok) {
    if (!ok) __builtin_trap();
}

bool one_line(const std::string& s) { return s.find('\n') == std::string::npos && s.find('\r') == std::string::npos; }

void put16(std::string& out, unsigned v) {
    out += static_cast<char>(v >> 8 & 0xff);
    out += static_cast<char>(v & 0xff);
}

void put_name(std::string& out, std::string_view host) {
    if (host != ".") {
        while (!host.empty()) {
            auto dot = host.find('.');
            auto label = host.substr(0, dot);
            out += static_cast<char>(label.size());
            out += label;
            host = dot == std::string_view::npos ? std::string_view() : host.substr(dot + 1);
        }
    }
    out += '\0';
}

// The records as an uncompressed NOERROR response with an empty question section.
std::string encode(const std::vector<mail::MxRecord>& records) {
    std::string p;
    put16(p, 0);
    put16(p, 0x8180);
    put16(p, 0);
    put16(p, static_cast<unsigned>(records.size()));
    put16(p, 0);
    put16(p, 0);
    for (const auto& r : records) {
        std::string rdata;
        put16(rdata, static_cast<unsigned>(r.preference));
        put_name(rdata, r.host);
        p += '\0';  // owner: the root
        put16(p, 15);
        put16(p, 1);
        put16(p, 0);
        put16(p, 300);
        put16(p, static_cast<unsigned>(rdata.size()));
        p += rdata;
    }
    return p;
}

void check_host(const std::string& host) {
    if (host == ".") return;
    check(!host.empty() && host.size() <= 253);
    check(host.front() != '.' && host.back() != '.');
    check(host.find("..") == std::string::npos);
    std::size_t label = 0;
    for (char c : host) {
        check((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.');
        label = c == '.' ? 0 : label + 1;
        check(label <= 63);
    }
    auto n = mail::normalize_mail_domain(host);
    check(n.ok() && *n == host);
}

bool same(const std::vector<mail::MxRecord>& a, const std::vector<mail::MxRecord>& b) {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i)
        if (a[i].preference != b[i].preference || a[i].host != b[i].host) return false;
    return true;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view in(reinterpret_cast<const char*>(data), size);
    auto records = mail::parse_mx_response(in);
    auto message = mail::parse_mx_message(in);
    check(records.ok() == message.ok());
    if (!records) {
        check(records.error().kind == mail::ErrorKind::data);
        check(one_line(records.error().text));
        return 0;
    }
    check(same(*records, message->records));
    check(message->rcode >= 0 && message->rcode <= 15);
    check(message->answers >= static_cast<int>(records->size()));

    int last = 0;
    std::size_t usable = 0;
    for (const auto& r : *records) {
        check(r.preference >= last && r.preference <= 65535);
        last = r.preference;
        check_host(r.host);
        if (r.host != ".") ++usable;
    }

    auto again = mail::parse_mx_response(encode(*records));
    check(again.ok() && same(*again, *records));

    auto hosts = mail::hosts_from_response("example.org", *message, "25");
    if (hosts) {
        check(!hosts->empty());
        for (const auto& hp : *hosts) check(!hp.host.empty() && hp.host != "." && hp.port == "25");
        check(hosts->size() == (records->empty() ? 1 : usable));
    } else {
        check(one_line(hosts.error().text));
        check(hosts.error().kind == mail::ErrorKind::rejected || hosts.error().kind == mail::ErrorKind::tempfail);
    }
    if (message->rcode == 0 && !message->truncated) check(hosts.ok() == (records->empty() || usable > 0));
    return 0;
}
