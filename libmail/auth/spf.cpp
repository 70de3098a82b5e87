// SPF (RFC 7208): check_host() over the Resolver interface. Parsing is
// spf_parse.cpp, macros spf_macro.cpp.
#include "libmail/auth/spf.hpp"
#include "libmail/auth/spf_internal.hpp"

#include <algorithm>
#include <chrono>
#include <ctime>

namespace mail::spf {

std::string_view to_string(SpfResult r) {
    switch (r) {
    case SpfResult::none: return "none";
    case SpfResult::neutral: return "neutral";
    case SpfResult::pass: return "pass";
    case SpfResult::fail: return "fail";
    case SpfResult::softfail: return "softfail";
    case SpfResult::temperror: return "temperror";
    case SpfResult::permerror: return "permerror";
    }
    return "none";
}

namespace {

constexpr int max_dns_terms = 10;       // §4.6.4
constexpr int max_void_lookups = 2;     // §4.6.4
constexpr std::size_t max_names = 10;   // MX and PTR names looked at (§4.6.4)
constexpr int max_depth = 20;           // include/redirect nesting (already bounded by the 10 terms)
constexpr std::size_t max_explanation = 1000;
constexpr auto max_time = std::chrono::seconds(20);  // §4.6.4: at least 20 s for the whole evaluation

// What ends an evaluation early: a result with its reason.
struct Stop {
    SpfResult result;
    std::string why;
};

// Syntactic checks of §4.3: labels of 1..63 octets, at most 253 in all, at least two labels.
bool valid_domain(std::string_view d) {
    if (!d.empty() && d.back() == '.') d.remove_suffix(1);
    if (d.empty() || d.size() > 253) return false;
    std::size_t labels = 0, start = 0;
    for (std::size_t i = 0; i <= d.size(); ++i) {
        if (i == d.size() || d[i] == '.') {
            std::size_t len = i - start;
            if (len == 0 || len > 63) return false;
            ++labels;
            start = i + 1;
        }
    }
    return labels >= 2;
}

// §7.3 / §4.8: an expanded name longer than 253 octets loses labels on the left; a trailing dot goes.
std::string fit_domain(std::string s) {
    if (!s.empty() && s.back() == '.') s.pop_back();
    while (s.size() > 253) {
        auto dot = s.find('.');
        if (dot == std::string::npos) break;
        s.erase(0, dot + 1);
    }
    return s;
}

bool name_ok_for_query(std::string_view d) {
    if (d.empty() || d.size() > 253) return false;
    std::size_t start = 0;
    for (std::size_t i = 0; i <= d.size(); ++i) {
        if (i == d.size() || d[i] == '.') {
            if (i - start == 0 || i - start > 63) return false;
            start = i + 1;
        }
    }
    return true;
}

// The PTR name of an address: the labels of %{i} reversed under in-addr.arpa or ip6.arpa.
std::string reverse_of(const Ip& ip) {
    std::string d = dotted_ip(ip);
    std::string out;
    std::size_t end = d.size();
    while (true) {
        auto dot = d.rfind('.', end - 1);
        std::size_t start = dot == std::string::npos ? 0 : dot + 1;
        out += d.substr(start, end - start);
        out += '.';
        if (dot == std::string::npos) break;
        end = dot;
    }
    return out + (ip.v6 ? "ip6.arpa" : "in-addr.arpa");
}

class Evaluator {
public:
    Evaluator(dns::Resolver& r, const Query& q, Ip ip)
        : r_(r), q_(q), ip_(ip), deadline_(std::chrono::steady_clock::now() + max_time) {}

    Outcome run(std::string_view domain, std::string_view sender) {
        Outcome o;
        o.domain = lower(domain);
        if (!o.domain.empty() && o.domain.back() == '.') o.domain.pop_back();
        std::string s(sender);
        auto at = s.rfind('@');
        if (at == std::string::npos) s = "postmaster@" + s;
        else if (at == 0) s = "postmaster" + s;
        sender_ = s;
        try {
            auto r = check(o.domain, 0, &o.explanation, &o.mechanism);
            o.result = r;
        } catch (const Stop& st) {
            o.result = st.result;
            o.explanation = st.why;
        }
        if (o.mechanism.empty()) o.mechanism = "default";
        o.lookups = lookups_;
        o.void_lookups = voids_;
        return o;
    }

private:
    dns::Resolver& r_;
    const Query& q_;
    Ip ip_;
    std::string sender_;
    std::chrono::steady_clock::time_point deadline_;
    int lookups_ = 0;
    int voids_ = 0;
    std::optional<std::string> validated_;  // %{p}, once computed

    MacroContext context(const std::string& domain) {
        MacroContext c;
        c.sender = sender_;
        c.domain = domain;
        c.ip = q_.ip;
        c.helo = q_.helo;
        c.receiver = q_.receiver;
        c.timestamp = static_cast<long long>(std::time(nullptr));
        return c;
    }

    // The DNS answer; temporary failures and the overall time limit end the evaluation with temperror.
    dns::Answer ask(const std::string& name, dns::Type type, bool count_void = true) {
        if (std::chrono::steady_clock::now() > deadline_)
            throw Stop{SpfResult::temperror, "time limit of the SPF evaluation exceeded"};
        dns::Answer a = r_.query(name, type);
        if (a.temporary())
            throw Stop{SpfResult::temperror, "DNS failure for " + name + " " + std::string(dns::type_name(type)) +
                                                 (a.detail.empty() ? "" : ": " + a.detail)};
        if (count_void && a.empty()) {
            if (++voids_ > max_void_lookups)
                throw Stop{SpfResult::permerror, "more than " + std::to_string(max_void_lookups) + " void DNS lookups"};
        }
        return a;
    }

    void count_term() {
        if (++lookups_ > max_dns_terms)
            throw Stop{SpfResult::permerror, "more than " + std::to_string(max_dns_terms) + " DNS-querying terms"};
    }

    // The validated domain name of the client (§7.3 %{p}): "unknown" when none or on DNS errors.
    std::string validated_name(const std::string& domain) {
        if (validated_) return *validated_;
        std::string best = "unknown";
        try {
            auto names = validated_names();
            for (const auto& n : names) {
                if (n == domain) {
                    best = n;
                    break;
                }
            }
            if (best == "unknown") {
                for (const auto& n : names) {
                    if (n.size() > domain.size() && n.compare(n.size() - domain.size(), domain.size(), domain) == 0 &&
                        n[n.size() - domain.size() - 1] == '.') {
                        best = n;
                        break;
                    }
                }
            }
            if (best == "unknown" && !names.empty()) best = names.front();
        } catch (const Stop& st) {
            if (st.result != SpfResult::temperror) throw;
        }
        validated_ = best;
        return best;
    }

    // §5.5: the PTR names of the client whose A/AAAA records include it (at most the first 10 names).
    std::vector<std::string> validated_names() {
        std::vector<std::string> out;
        std::string rev = reverse_of(ip_);
        dns::Answer ptr;
        try {
            ptr = ask(rev, dns::Type::ptr);
        } catch (const Stop& st) {
            if (st.result == SpfResult::temperror) return out;  // §5.5: a DNS error: no match
            throw;
        }
        std::size_t n = 0;
        for (const auto& rec : ptr.records) {
            if (n++ >= max_names) break;
            std::string name = lower(rec.text);
            if (!name_ok_for_query(name)) continue;
            try {
                // Not counted as void: the names come from the client's own PTR records (§4.6.4 counts terms).
                auto a = ask(name, ip_.v6 ? dns::Type::aaaa : dns::Type::a, false);
                for (const auto& x : a.records) {
                    auto ip = parse_ip(x.text);
                    if (ip && cidr_match(*ip, ip_, -1)) {
                        out.push_back(name);
                        break;
                    }
                }
            } catch (const Stop& st) {
                if (st.result != SpfResult::temperror) throw;  // §5.5: this name is skipped
            }
        }
        return out;
    }

    // Expands a domain-spec into a name to ask (§4.8); "" when it does not expand to something askable.
    std::string target(const std::string& spec, const std::string& domain) {
        if (spec.empty()) return domain;
        MacroContext c = context(domain);
        if (spec.find("%{p") != std::string::npos || spec.find("%{P") != std::string::npos)
            c.validated = validated_name(domain);
        auto e = expand(spec, c, false);
        if (!e) throw Stop{SpfResult::permerror, e.error().text};
        return lower(fit_domain(std::move(*e)));
    }

    bool match_addresses(const std::string& name, int cidr4, int cidr6) {
        if (!name_ok_for_query(name)) return false;
        auto a = ask(name, ip_.v6 ? dns::Type::aaaa : dns::Type::a);
        int bits = ip_.v6 ? cidr6 : cidr4;
        for (const auto& rec : a.records) {
            auto ip = parse_ip(rec.text);
            if (ip && cidr_match(*ip, ip_, bits)) return true;
        }
        return false;
    }

    // check_host() for domain (§4): the result; the explanation and matching term when at depth 0.
    SpfResult check(const std::string& domain, int depth, std::string* explanation, std::string* mechanism) {
        if (depth > max_depth) throw Stop{SpfResult::permerror, "include/redirect nested too deep"};
        // §4.3: a malformed domain gives none.
        if (!valid_domain(domain)) return SpfResult::none;
        // §4.4, §4.5: the record.
        auto txt = ask(domain, dns::Type::txt, depth > 0);
        if (txt.status == dns::Status::nxdomain) return SpfResult::none;
        std::vector<std::string> records;
        for (const auto& rec : txt.records)
            if (is_spf_record(rec.text)) records.push_back(rec.text);
        if (records.empty()) return SpfResult::none;
        if (records.size() > 1) throw Stop{SpfResult::permerror, "more than one SPF record for " + domain};
        auto terms = parse_record(records.front());
        if (!terms) throw Stop{SpfResult::permerror, terms.error().text + " (in the record of " + domain + ")"};

        const Term* redirect = nullptr;
        const Term* exp = nullptr;
        for (const auto& t : *terms) {
            if (t.kind != Term::Kind::modifier) continue;
            if (t.name == "redirect") redirect = &t;
            if (t.name == "exp") exp = &t;
        }

        for (const auto& t : *terms) {
            if (t.kind != Term::Kind::mechanism) continue;
            if (matches(t, domain, depth)) {
                SpfResult r = t.qualifier == '-'   ? SpfResult::fail
                              : t.qualifier == '~' ? SpfResult::softfail
                              : t.qualifier == '?' ? SpfResult::neutral
                                                   : SpfResult::pass;
                if (mechanism) {
                    *mechanism = (t.qualifier == '+' ? std::string() : std::string(1, t.qualifier)) + t.name;
                    if (!t.domain_spec.empty()) *mechanism += ":" + t.domain_spec;
                    if (t.cidr4 >= 0) *mechanism += "/" + std::to_string(t.cidr4);
                    if (t.cidr6 >= 0) *mechanism += (t.name == "ip6" ? "/" : "//") + std::to_string(t.cidr6);
                }
                if (r == SpfResult::fail && exp && explanation) *explanation = explain(*exp, domain);
                return r;
            }
        }
        if (redirect) {
            // §6.1: evaluated as a DNS term; the target's result is the result, none becomes permerror.
            count_term();
            std::string to = target(redirect->domain_spec, domain);
            if (mechanism) *mechanism = "redirect=" + redirect->domain_spec;
            SpfResult r = check(to, depth + 1, explanation, nullptr);
            if (r == SpfResult::none) throw Stop{SpfResult::permerror, "redirect=" + to + " has no SPF record"};
            return r;
        }
        return SpfResult::neutral;
    }

    bool matches(const Term& t, const std::string& domain, int depth) {
        const std::string& m = t.name;
        if (m == "all") return true;
        if (m == "ip4" || m == "ip6") {
            if ((m == "ip6") != ip_.v6) return false;
            auto net = parse_ip(t.domain_spec);
            return net && cidr_match(*net, ip_, m == "ip6" ? t.cidr6 : t.cidr4);
        }
        count_term();
        std::string name = target(t.domain_spec, domain);
        if (m == "include") {
            // §5.2: pass matches; fail, softfail, neutral do not; temperror and permerror propagate; none is permerror.
            SpfResult r = check(name, depth + 1, nullptr, nullptr);
            switch (r) {
            case SpfResult::pass: return true;
            case SpfResult::fail:
            case SpfResult::softfail:
            case SpfResult::neutral: return false;
            case SpfResult::temperror: throw Stop{SpfResult::temperror, "include:" + name + " gave temperror"};
            case SpfResult::permerror: throw Stop{SpfResult::permerror, "include:" + name + " gave permerror"};
            case SpfResult::none: throw Stop{SpfResult::permerror, "include:" + name + " has no SPF record"};
            }
            return false;
        }
        if (m == "a") return match_addresses(name, t.cidr4, t.cidr6);
        if (m == "mx") {
            if (!name_ok_for_query(name)) return false;
            auto mx = ask(name, dns::Type::mx);
            if (mx.records.size() > max_names)
                throw Stop{SpfResult::permerror, "more than " + std::to_string(max_names) + " MX records for " + name};
            auto recs = mx.records;
            std::stable_sort(recs.begin(), recs.end(),
                             [](const dns::Record& a, const dns::Record& b) { return a.preference < b.preference; });
            for (const auto& rec : recs) {
                std::string host = lower(rec.text);
                if (host.empty()) continue;  // a null MX (RFC 7505)
                if (match_addresses(host, t.cidr4, t.cidr6)) return true;
            }
            return false;
        }
        if (m == "ptr") {
            for (const auto& n : validated_names()) {
                if (n == name) return true;
                if (n.size() > name.size() && n.compare(n.size() - name.size(), name.size(), name) == 0 &&
                    n[n.size() - name.size() - 1] == '.')
                    return true;
            }
            return false;
        }
        if (m == "exists") {
            if (!name_ok_for_query(name)) return false;
            auto a = ask(name, dns::Type::a);  // §5.7: always A, whatever the client's family
            return !a.records.empty();
        }
        return false;
    }

    // §6.2: the explanation, or "" when anything about it fails.
    std::string explain(const Term& exp, const std::string& domain) {
        try {
            std::string name = target(exp.domain_spec, domain);
            if (!name_ok_for_query(name)) return {};
            if (std::chrono::steady_clock::now() > deadline_) return {};
            dns::Answer a = r_.query(name, dns::Type::txt);
            if (a.status != dns::Status::ok || a.records.size() != 1) return {};
            MacroContext c = context(domain);
            const std::string& text = a.records.front().text;
            if (text.find("%{p") != std::string::npos || text.find("%{P") != std::string::npos)
                c.validated = validated_name(domain);
            auto e = expand(text, c, true);
            if (!e) return {};
            std::string out = std::move(*e);
            for (char ch : out)
                if (static_cast<unsigned char>(ch) < 0x20 || static_cast<unsigned char>(ch) > 0x7e) return {};
            if (out.size() > max_explanation) out.resize(max_explanation);
            return out;
        } catch (const Stop&) {
            return {};
        }
    }
};

Outcome evaluate(dns::Resolver& resolver, const Query& q, std::string_view domain, std::string_view sender,
                 const char* identity) {
    auto ip = parse_ip(q.ip);
    if (!ip) {
        Outcome o;
        o.domain = std::string(domain);
        o.identity = identity;
        o.result = SpfResult::permerror;
        o.explanation = "the client address is not a numeric IP address: " + std::string(q.ip);
        o.mechanism = "default";
        return o;
    }
    Evaluator e(resolver, q, *ip);
    Outcome o = e.run(domain, sender);
    o.identity = identity;
    return o;
}

} // namespace

Outcome check_host(dns::Resolver& resolver, const Query& q, std::string_view domain, std::string_view sender) {
    return evaluate(resolver, q, domain, sender, "mailfrom");
}

Outcome check_mailfrom(dns::Resolver& resolver, const Query& q) {
    if (q.sender.empty()) {
        // §2.4: the null sender is postmaster@HELO.
        if (q.helo.empty() || q.helo.front() == '[' || !valid_domain(q.helo)) {
            Outcome o;
            o.identity = "mailfrom";
            o.domain = q.helo;
            o.mechanism = "default";
            return o;
        }
        return evaluate(resolver, q, q.helo, "postmaster@" + q.helo, "mailfrom");
    }
    auto at = q.sender.rfind('@');
    std::string domain = at == std::string::npos ? q.sender : q.sender.substr(at + 1);
    return evaluate(resolver, q, domain, q.sender, "mailfrom");
}

Outcome check_helo(dns::Resolver& resolver, const Query& q) {
    if (q.helo.empty() || q.helo.front() == '[' || !valid_domain(q.helo)) {
        Outcome o;
        o.identity = "helo";
        o.domain = q.helo;
        o.mechanism = "default";
        return o;
    }
    return evaluate(resolver, q, q.helo, "postmaster@" + q.helo, "helo");
}

} // namespace mail::spf
