// Fuzz target: the DKIM/ARC verifier on arbitrary header fields and body. The input is split at the first
// "\n\n": the first part becomes header fields (one per line; a line starting with SP/HTAB continues the
// previous one), the rest is the body, fed in uneven chunks. A fake resolver answers every key query with
// a record built from the input too, so tag-list parsing of signatures and keys, canonicalisation, the body
// hashes, the key checks and the ARC set logic all run. Invariants: no crash, one result per DKIM-Signature
// up to max_signatures, results are in range, and verification is deterministic.
#include "libmail/auth/dkim.hpp"
#include "libmail/auth/dkim_internal.hpp"

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace {

void check(bool ok) {
    if (!ok) __builtin_trap();
}

class Fake : public mail::dns::Resolver {
public:
    std::string record;
    mail::dns::Answer query(std::string_view name, mail::dns::Type) override {
        mail::dns::Answer a;
        if (name.size() % 5 == 0) {
            a.status = mail::dns::Status::servfail;
            return a;
        }
        mail::dns::Record r;
        r.type = mail::dns::Type::txt;
        r.text = record;
        a.records.push_back(r);
        return a;
    }
};

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::string in(reinterpret_cast<const char*>(data), size);
    auto split = in.find("\n\n");
    std::string head = in.substr(0, split);
    std::string body = split == std::string::npos ? std::string() : in.substr(split + 2);
    std::vector<mail::HeaderField> fields;
    std::string key = "v=DKIM1; p=";
    std::size_t pos = 0;
    while (pos < head.size()) {
        auto e = head.find('\n', pos);
        std::string line = head.substr(pos, e == std::string::npos ? std::string::npos : e - pos + 1);
        pos = e == std::string::npos ? head.size() : e + 1;
        if (line.rfind("KEY ", 0) == 0) {
            key = line.substr(4);
            continue;
        }
        if (!fields.empty() && (line[0] == ' ' || line[0] == '\t')) fields.back().raw += line;
        else fields.push_back(mail::HeaderField{line});
    }
    // tag lists straight
    for (const auto& f : fields) {
        auto t = mail::dkim::detail::parse_tags(f.raw);
        if (t)
            for (const auto& tag : *t) check(tag.value_begin <= tag.value_end && tag.value_end <= f.raw.size());
        (void)mail::dkim::detail::canon_header(f.raw, true);
        (void)mail::dkim::detail::canon_header(f.raw, false);
    }
    Fake resolver;
    resolver.record = key;
    mail::dkim::Options o;
    o.max_signatures = 4;
    o.now = 1700000000;
    std::vector<std::string> first;
    for (int round = 0; round < 2; ++round) {
        mail::dkim::Verifier v(fields, o);
        std::size_t step = 1 + (size % 13);
        for (std::size_t k = 0; k < body.size(); k += step) v.body(std::string_view(body).substr(k, step));
        v.end_body();
        auto res = v.verify(resolver);
        std::size_t sigs = 0;
        for (const auto& f : fields) sigs += f.is("DKIM-Signature") ? 1 : 0;
        check(res.size() == std::min<std::size_t>(sigs, o.max_signatures));
        std::vector<std::string> now;
        for (const auto& r : res) {
            check(r.status != mail::dkim::Status::none);
            now.push_back(std::string(mail::dkim::to_string(r.status)) + r.reason);
        }
        auto a = v.arc(resolver);
        check(a.instances >= 0 && a.instances <= 50);
        if (a.status == mail::dkim::ArcStatus::pass) check(a.sealers.size() == static_cast<std::size_t>(a.instances));
        now.push_back(a.reason);
        if (round == 0) first = now;
        else check(first == now);
    }
    return 0;
}
