// The unit tests' resolver: answers from a map of (name, type) to Answer. A name that is nowhere in the map
// is NXDOMAIN, a name that is there with another type is NODATA; names are compared lower-case without a
// trailing dot. Every query is recorded (asked) and counted (queries).
#pragma once
#include "libmail/io/dns.hpp"

#include <cctype>
#include <map>
#include <string>
#include <utility>
#include <vector>

namespace mail::test {

class FakeDns : public dns::Resolver {
public:
    std::map<std::pair<std::string, dns::Type>, dns::Answer> answers;
    std::vector<std::string> asked;  ///< each query's name as asked
    int queries = 0;

    dns::Answer query(std::string_view name, dns::Type type) override {
        ++queries;
        asked.emplace_back(name);
        std::string n(name);
        if (!n.empty() && n.back() == '.') n.pop_back();
        for (auto& c : n) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        auto it = answers.find({n, type});
        if (it != answers.end()) return it->second;
        for (const auto& [k, v] : answers)
            if (k.first == n) return dns::Answer{dns::Status::ok, {}, 0, ""};
        return dns::Answer{dns::Status::nxdomain, {}, 0, ""};
    }

    /// One more record of type for name.
    void add(const std::string& name, dns::Type type, std::string text, int pref = 0) {
        auto& a = answers[{name, type}];
        dns::Record r;
        r.type = type;
        r.name = name;
        r.text = std::move(text);
        r.preference = pref;
        if (type == dns::Type::txt) r.strings = {r.text};
        a.records.push_back(std::move(r));
    }
    void txt(const std::string& name, const std::string& text) { add(name, dns::Type::txt, text); }
    /// The TXT records of name, replacing any it had.
    void txts(const std::string& name, const std::vector<std::string>& texts) {
        answers.erase({name, dns::Type::txt});
        answers[{name, dns::Type::txt}];
        for (const auto& t : texts) txt(name, t);
    }
    void a(const std::string& name, const std::string& ip) { add(name, dns::Type::a, ip); }
    void aaaa(const std::string& name, const std::string& ip) { add(name, dns::Type::aaaa, ip); }
    void mx(const std::string& name, int pref, const std::string& host) { add(name, dns::Type::mx, host, pref); }
    void ptr(const std::string& name, const std::string& host) { add(name, dns::Type::ptr, host); }
    /// Queries of type for name fail with s (a temporary failure by default, on TXT).
    void fail(const std::string& name, dns::Type type, dns::Status s) {
        answers[{name, type}] = dns::Answer{s, {}, 0, s == dns::Status::timeout ? "timeout after 2000 ms" : "SERVFAIL"};
    }
    void fail(const std::string& name, dns::Status s = dns::Status::timeout) { fail(name, dns::Type::txt, s); }
};

} // namespace mail::test
