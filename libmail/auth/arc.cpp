// ARC chain validation (RFC 8617 §5.2): the sets ARC-Seal / ARC-Message-Signature /
// ARC-Authentication-Results numbered 1..N without gaps or duplicates (N <= 50), cv= none on the first
// seal and pass on the others (any fail ends it), the newest AMS verified like a DKIM signature, and every
// ARC-Seal verified over the sets up to its own, each in the order AAR, AMS, AS (§5.1.1), relaxed.
#include "libmail/auth/dkim_internal.hpp"

#include "libmail/base/text.hpp"

#include <charconv>

namespace mail::dkim {

using detail::Sig;

namespace {

// The instance of an ARC-Authentication-Results value ("i=N; ...") and the rest after the ';'; 0 when bad.
int aar_instance(const std::string& value, std::string* rest) {
    std::string_view v = trim(value);
    if (v.size() < 3 || (v[0] != 'i' && v[0] != 'I')) return 0;
    v.remove_prefix(1);
    v = trim(v);
    if (v.empty() || v[0] != '=') return 0;
    v = trim(v.substr(1));
    int n = 0;
    auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
    if (ec != std::errc{} || n < 1 || n > 50) return 0;
    v = trim(v.substr(static_cast<std::size_t>(p - v.data())));
    if (v.empty() || v[0] != ';') return 0;
    if (rest) *rest = std::string(trim(v.substr(1)));
    return n;
}

} // namespace

ArcResult Verifier::arc(dns::Resolver& resolver) {
    Impl& m = *impl_;
    ArcResult r;
    if (m.seals.empty() && m.ams.empty() && m.aar.empty()) return r;
    auto fail = [&](std::string why) {
        r.status = ArcStatus::fail;
        r.reason = std::move(why);
        return r;
    };
    if (m.arc_too_many) return fail("more than 50 ARC sets");
    int n = 0;
    for (const Sig& s : m.seals) n = std::max(n, s.instance);
    for (const Sig& s : m.ams) n = std::max(n, s.instance);
    std::vector<std::string> aar_rest(m.aar.size());
    std::vector<int> aar_inst(m.aar.size());
    for (std::size_t k = 0; k < m.aar.size(); ++k) {
        aar_inst[k] = aar_instance(m.fields[m.aar[k]].value(), &aar_rest[k]);
        if (aar_inst[k] == 0) return fail("ARC-Authentication-Results without a valid i=");
        n = std::max(n, aar_inst[k]);
    }
    r.instances = n;
    for (const Sig& s : m.seals)
        if (!s.error.empty()) return fail("ARC-Seal: " + s.error);
    for (const Sig& s : m.ams)
        if (!s.error.empty()) return fail("ARC-Message-Signature: " + s.error);
    // Exactly one of each per instance 1..n.
    auto count = static_cast<std::size_t>(n);
    if (m.seals.size() != count || m.ams.size() != count || m.aar.size() != count)
        return fail("ARC sets incomplete, duplicated or with gaps");
    std::vector<const Sig*> as(count + 1, nullptr), ams(count + 1, nullptr);
    std::vector<std::size_t> aar(count + 1, m.fields.size());
    std::vector<const std::string*> rest(count + 1, nullptr);
    for (const Sig& s : m.seals) {
        if (as[static_cast<std::size_t>(s.instance)]) return fail("two ARC-Seal fields with i=" + std::to_string(s.instance));
        as[static_cast<std::size_t>(s.instance)] = &s;
    }
    for (const Sig& s : m.ams) {
        if (ams[static_cast<std::size_t>(s.instance)])
            return fail("two ARC-Message-Signature fields with i=" + std::to_string(s.instance));
        ams[static_cast<std::size_t>(s.instance)] = &s;
    }
    for (std::size_t k = 0; k < m.aar.size(); ++k) {
        auto i = static_cast<std::size_t>(aar_inst[k]);
        if (aar[i] != m.fields.size()) return fail("two ARC-Authentication-Results fields with i=" + std::to_string(i));
        aar[i] = m.aar[k];
        rest[i] = &aar_rest[k];
    }
    for (std::size_t i = 1; i <= count; ++i) {
        if (!as[i] || !ams[i] || aar[i] == m.fields.size()) return fail("ARC set " + std::to_string(i) + " incomplete");
        r.sealers.push_back(as[i]->d);
    }
    r.sealer = as[count]->d;
    r.sealed_results = *rest[count];
    // cv= (§5.2 steps 2, 3).
    for (std::size_t i = 1; i <= count; ++i) {
        const std::string& cv = as[i]->cv;
        if (cv == "fail") return fail("ARC-Seal i=" + std::to_string(i) + " says cv=fail");
        if (i == 1 && cv != "none") return fail("ARC-Seal i=1 without cv=none");
        if (i > 1 && cv != "pass") return fail("ARC-Seal i=" + std::to_string(i) + " without cv=pass");
    }
    // The newest AMS (§5.2 step 4).
    const Sig& top = *ams[count];
    detail::Check c = detail::check_signature(top, m.header_data(top), resolver, m.body_mismatch(top));
    if (c.status != Status::pass) {
        r.temporary = c.status == Status::temperror;
        return fail("ARC-Message-Signature i=" + std::to_string(count) + ": " + std::string(to_string(c.status)) + ", " +
                    c.reason);
    }
    // Every seal, newest first (§5.2 step 6; §5.1.1 for what each covers).
    for (std::size_t i = count; i >= 1; --i) {
        std::string data;
        for (std::size_t j = 1; j <= i; ++j) {
            data += detail::canon_header(m.fields[aar[j]].raw, true);
            data += detail::canon_header(m.fields[ams[j]->field].raw, true);
            if (j < i) data += detail::canon_header(m.fields[as[j]->field].raw, true);
        }
        data += as[i]->self;
        detail::Check s = detail::check_signature(*as[i], data, resolver, {});
        if (s.status != Status::pass) {
            r.temporary = s.status == Status::temperror;
            return fail("ARC-Seal i=" + std::to_string(i) + ": " + std::string(to_string(s.status)) + ", " + s.reason);
        }
    }
    r.status = ArcStatus::pass;
    return r;
}

} // namespace mail::dkim
