// Fuzz target: DNS responses as they come from the network (dns::parse_response) and the answers made of
// them (dns::answer_from), with invariants: the parser never reads past the packet (ASan); errors are kind
// data and one line; every name and host is printable (no dot or control forged by a label) and at most
// 4 x 253 octets (escapes); addresses are numeric; TXT text is its strings joined; answer_from gives records
// only of the type asked, with a status that agrees with the rcode. The input, taken as a name, makes a
// query that parses back (as a response) to the same question.
#include "libmail/io/dns.hpp"

#include <arpa/inet.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace {

void check(bool ok) {
    if (!ok) __builtin_trap();
}

bool one_line(const std::string& s) { return s.find('\n') == std::string::npos && s.find('\r') == std::string::npos; }

void check_name(const std::string& n) {
    check(n.size() <= 4 * 253);
    for (char c : n) check(c > 0x20 && c < 0x7f && !(c >= 'A' && c <= 'Z'));
    check(n.empty() || (n.front() != '.' && n.back() != '.'));
    check(n.find("..") == std::string::npos);
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    using namespace mail::dns;
    const std::string_view in(reinterpret_cast<const char*>(data), size);
    auto r = parse_response(in);
    if (!r) {
        check(r.error().kind == mail::ErrorKind::data);
        check(one_line(r.error().text));
    } else {
        check(r->rcode >= 0 && r->rcode <= 15);
        check_name(r->question);
        for (const auto& rec : r->answers) {
            check_name(rec.name);
            check(rec.ttl <= 0x7fffffffu);
            unsigned char buf[16];
            switch (rec.type) {
            case Type::a: check(::inet_pton(AF_INET, rec.text.c_str(), buf) == 1); break;
            case Type::aaaa: check(::inet_pton(AF_INET6, rec.text.c_str(), buf) == 1); break;
            case Type::txt: {
                std::string joined;
                for (const auto& s : rec.strings) joined += s;
                check(joined == rec.text);
                break;
            }
            case Type::mx: check(rec.preference >= 0 && rec.preference <= 65535); [[fallthrough]];
            default: check_name(rec.text);
            }
        }
        for (Type t : {Type::a, Type::aaaa, Type::mx, Type::txt, Type::ptr, Type::cname}) {
            Answer a = answer_from(*r, r->question, t);
            check(one_line(a.detail));
            for (const auto& rec : a.records) check(rec.type == t);
            if (a.status == Status::ok || a.status == Status::nxdomain) check(r->rcode == 0 || r->rcode == 3);
            if (a.status == Status::servfail) check(r->rcode != 0 && r->rcode != 3);
            if (!a.records.empty()) check(a.status == Status::ok);
            if (a.temporary()) check(a.records.empty());
        }
    }

    // The input as a name: a query for it reads back as the question asked.
    if (size <= 300) {
        auto q = build_query(0x4242, in, Type::txt);
        if (q) {
            std::string resp = *q;
            resp[2] = static_cast<char>(resp[2] | 0x80);
            auto back = parse_response(resp);
            check(back.ok());
            check(back->id == 0x4242 && back->question_type == 16);
            check(back->question == canonical_name(in));
        } else {
            check(q.error().kind == mail::ErrorKind::data && one_line(q.error().text));
        }
    }
    return 0;
}
