// DMARC (RFC 7489): see dmarc.hpp.
//
// Choices written down here (mverify(1) and the closing note repeat them):
// - Discovery (§6.6.3): the TXT records at _dmarc.FROM; those not starting with the version tag
//   "v=DMARC1" are dropped. None left (or NXDOMAIN): the same at _dmarc.ORG, ORG being the organizational
//   domain, when it differs. Several records left at the place where the search stopped, or one that is
//   not valid: no policy (status none), and the search does not go on to the organizational domain (step
//   5 ends discovery there). A temporary DNS failure at either step is temperror: the answer is unknown.
// - A record without a valid p=, or with an invalid sp=, is discarded (§6.6.3 step 6), except when its
//   rua= holds at least one syntactically valid URI: then it counts as p=none (the exception the same
//   step allows), so the domain's reports are not lost and nothing is enforced.
// - Other known tags with bad values take their defaults (§6.3): pct=100, adkim=r, aspf=r. Unknown tags
//   are ignored. A repeated tag: the first one counts.
// - pct is kept in the Record and the Outcome; the status stays fail when it applies to fewer than 100%
//   of messages. Deciding whether this message is in the sampled percentage (§6.6.4) belongs to the
//   caller, which also knows whether it enforces policies at all.
// - Alignment is computed even when no record is found (with the relaxed defaults), so a caller can ask
//   for an aligned pass from a domain that publishes no DMARC record.
// - A DKIM signature counts for alignment when it passed and its key is not in testing mode (t=y).
// - A From domain that cannot be a DNS name (an address literal, an empty label, over 253 octets) has no
//   policy: status none, nothing is asked.
#include "libmail/auth/dmarc.hpp"

#include "libmail/base/text.hpp"

#include <libpsl.h>

#include <charconv>

namespace mail::dmarc {

namespace {

// The list, loaded once: Debian's publicsuffix data (psl_latest picks the newest of the distribution's
// file and the built-in copy), or the built-in list when no file can be read. Never freed: it lives as
// long as the process.
const psl_ctx_t* psl() {
    static const psl_ctx_t* ctx = [] {
        const psl_ctx_t* c = psl_latest(nullptr);
        return c ? c : psl_builtin();
    }();
    return ctx;
}

std::string normal(std::string_view d) {
    std::string s = lower(trim(d));
    if (!s.empty() && s.back() == '.') s.pop_back();
    return s;
}

// True for a name that can be asked: labels of 1..63 octets, 253 octets in all, no literal.
bool askable(std::string_view d) {
    if (d.empty() || d.size() > 253 - 7 || d.front() == '[') return false;  // room for "_dmarc."
    std::size_t label = 0;
    for (char c : d) {
        if (c == '.') {
            if (label == 0) return false;
            label = 0;
        } else {
            if (is_control(c) || c == ' ') return false;
            if (++label > 63) return false;
        }
    }
    return label > 0;
}

bool is_wsp(char c) { return c == ' ' || c == '\t'; }

// Strips SP/HTAB (and the CRLF of folded TXT data) around a tag or value.
std::string_view strip(std::string_view s) { return trim(s); }

// A valid DMARC URI (§6.2): a URI with a scheme, optionally "!size". Syntactic check only.
bool valid_uri(std::string_view u) {
    u = strip(u);
    auto bang = u.find('!');
    if (bang != std::string_view::npos) u = u.substr(0, bang);
    auto colon = u.find(':');
    if (colon == std::string_view::npos || colon == 0 || colon + 1 >= u.size()) return false;
    for (std::size_t i = 0; i < colon; ++i) {
        char c = u[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                  (i > 0 && ((c >= '0' && c <= '9') || c == '+' || c == '-' || c == '.'));
        if (!ok) return false;
    }
    for (char c : u)
        if (is_control(c) || is_wsp(c)) return false;
    return true;
}

bool valid_policy(std::string_view v) { return v == "none" || v == "quarantine" || v == "reject"; }

// The text starts with the version tag "v=DMARC1" (WSP allowed around '='), followed by ';', WSP or the end.
bool starts_with_version(std::string_view txt) {
    std::size_t i = 0;
    while (i < txt.size() && is_wsp(txt[i])) ++i;
    if (i >= txt.size() || (txt[i] != 'v' && txt[i] != 'V')) return false;
    ++i;
    while (i < txt.size() && is_wsp(txt[i])) ++i;
    if (i >= txt.size() || txt[i] != '=') return false;
    ++i;
    while (i < txt.size() && is_wsp(txt[i])) ++i;
    if (txt.substr(i, 6) != "DMARC1") return false;
    i += 6;
    while (i < txt.size() && is_wsp(txt[i])) ++i;
    return i == txt.size() || txt[i] == ';';
}

// Where discovery ended.
struct Found {
    enum class Kind { none, record, temporary } kind = Kind::none;
    std::string domain;   // where the record was found
    Record record;
    std::string reason;
};

// The DMARC records at _dmarc.name: how many start with v=DMARC1, the text of the first.
struct AtName {
    bool temporary = false;
    std::string detail;
    std::vector<std::string> records;
};

AtName records_at(dns::Resolver& resolver, const std::string& name) {
    AtName out;
    dns::Answer a = resolver.query("_dmarc." + name, dns::Type::txt);
    if (a.temporary()) {
        out.temporary = true;
        out.detail = a.detail.empty() ? std::string("DNS lookup failed") : scrub(a.detail, 200);
        return out;
    }
    if (a.status != dns::Status::ok) return out;
    for (const auto& r : a.records)
        if (r.type == dns::Type::txt && starts_with_version(r.text)) out.records.push_back(r.text);
    return out;
}

Found discover(dns::Resolver& resolver, const std::string& from) {
    Found f;
    std::string org = organizational_domain(from);
    for (int step = 0; step < 2; ++step) {
        const std::string& name = step == 0 ? from : org;
        if (step == 1 && org == from) break;
        AtName at = records_at(resolver, name);
        if (at.temporary) {
            f.kind = Found::Kind::temporary;
            f.reason = "DMARC record lookup at _dmarc." + name + ": " + at.detail;
            return f;
        }
        if (at.records.empty()) continue;
        if (at.records.size() > 1) {
            f.reason = "several DMARC records at _dmarc." + name;
            return f;
        }
        auto rec = parse_record(at.records.front());
        if (!rec) {
            f.reason = "invalid DMARC record at _dmarc." + name + ": " + rec.error().text;
            return f;
        }
        f.kind = Found::Kind::record;
        f.domain = name;
        f.record = *rec;
        return f;
    }
    f.reason = "no DMARC record";
    return f;
}

} // namespace

std::string organizational_domain(std::string_view domain) {
    std::string d = normal(domain);
    if (d.empty()) return d;
    const char* reg = psl_registrable_domain(psl(), d.c_str());
    if (!reg) return d;  // a public suffix itself, or a name the list cannot place
    return std::string(reg);
}

Result<Record> parse_record(std::string_view txt) {
    if (txt.size() > 4096) return Error{ErrorKind::data, "record too long"};
    if (!starts_with_version(txt)) return Error{ErrorKind::data, "does not start with v=DMARC1"};
    Record rec;
    std::optional<std::string> p, sp, pct, adkim, aspf, rua;
    std::size_t pos = txt.find(';');
    while (pos != std::string_view::npos && pos < txt.size()) {
        std::size_t next = txt.find(';', pos + 1);
        std::string_view part = txt.substr(pos + 1, next == std::string_view::npos ? std::string_view::npos
                                                                                    : next - pos - 1);
        pos = next;
        part = strip(part);
        if (part.empty()) continue;
        auto eq = part.find('=');
        if (eq == std::string_view::npos) continue;  // not a tag: ignored as a syntax error of the remainder
        std::string tag = lower(strip(part.substr(0, eq)));
        std::string value(strip(part.substr(eq + 1)));
        auto take = [&](std::optional<std::string>& slot) {
            if (!slot) slot = value;
        };
        if (tag == "p") take(p);
        else if (tag == "sp") take(sp);
        else if (tag == "pct") take(pct);
        else if (tag == "adkim") take(adkim);
        else if (tag == "aspf") take(aspf);
        else if (tag == "rua") take(rua);
        // v again, ruf, fo, rf, ri and unknown tags: ignored
    }
    bool p_ok = p && valid_policy(lower(*p));
    bool sp_ok = !sp || valid_policy(lower(*sp));
    if (!p_ok || !sp_ok) {
        bool rua_ok = false;
        if (rua) {
            std::string_view list = *rua;
            while (!list.empty()) {
                auto comma = list.find(',');
                if (valid_uri(list.substr(0, comma))) rua_ok = true;
                if (comma == std::string_view::npos) break;
                list.remove_prefix(comma + 1);
            }
        }
        if (!rua_ok)
            return Error{ErrorKind::data, !p ? "no p= tag" : !p_ok ? "invalid p= value" : "invalid sp= value"};
        rec.p = "none";  // §6.6.3 step 6: a valid rua= makes it p=none
        return rec;
    }
    rec.p = lower(*p);
    if (sp) rec.sp = lower(*sp);
    if (pct) {
        int n = -1;
        const char* b = pct->data();
        const char* e = b + pct->size();
        auto [ptr, ec] = std::from_chars(b, e, n);
        if (ec == std::errc() && ptr == e && n >= 0 && n <= 100) rec.pct = n;
    }
    if (adkim && lower(*adkim) == "s") rec.strict_dkim = true;
    if (aspf && lower(*aspf) == "s") rec.strict_spf = true;
    return rec;
}

std::string_view to_string(Status s) {
    switch (s) {
    case Status::none: return "none";
    case Status::pass: return "pass";
    case Status::fail: return "fail";
    case Status::temperror: return "temperror";
    case Status::permerror: return "permerror";
    }
    return "none";
}

bool aligned(std::string_view a, std::string_view b, bool strict) {
    std::string x = normal(a), y = normal(b);
    if (x.empty() || y.empty()) return false;
    if (x == y) return true;
    if (strict) return false;
    return organizational_domain(x) == organizational_domain(y);
}

Outcome check(dns::Resolver& resolver, std::string_view from_domain, const spf::Outcome& spf_mailfrom,
              const std::vector<dkim::SignatureResult>& dkim) {
    Outcome o;
    o.from_domain = normal(from_domain);
    if (o.from_domain.empty()) {
        o.status = Status::permerror;
        o.reason = "no single RFC5322.From domain";
        return o;
    }
    if (!askable(o.from_domain)) {
        o.reason = "From domain is not a DNS name";
        return o;
    }
    Found f = discover(resolver, o.from_domain);
    bool strict_spf = false, strict_dkim = false;
    if (f.kind == Found::Kind::record) {
        strict_spf = f.record.strict_spf;
        strict_dkim = f.record.strict_dkim;
    }
    o.spf_aligned = spf_mailfrom.result == spf::SpfResult::pass &&
                    aligned(spf_mailfrom.domain, o.from_domain, strict_spf);
    for (const auto& s : dkim)
        if (s.status == dkim::Status::pass && !s.testing && aligned(s.domain, o.from_domain, strict_dkim))
            o.dkim_aligned = true;

    if (f.kind == Found::Kind::temporary) {
        o.status = Status::temperror;
        o.reason = f.reason;
        return o;
    }
    if (f.kind == Found::Kind::none) {
        o.status = Status::none;
        o.reason = f.reason;
        return o;
    }
    o.policy_domain = f.domain;
    o.record = f.record;
    // sp= applies to a From domain below the organizational domain whose record was found there (§6.3).
    o.policy = (o.policy_domain != o.from_domain && !f.record.sp.empty()) ? f.record.sp : f.record.p;
    if (o.spf_aligned || o.dkim_aligned) {
        o.status = Status::pass;
        o.reason = o.dkim_aligned && o.spf_aligned ? "SPF and DKIM aligned"
                   : o.dkim_aligned                ? "DKIM aligned"
                                                   : "SPF aligned";
    } else {
        o.status = Status::fail;
        o.reason = "no aligned SPF or DKIM pass";
    }
    return o;
}

} // namespace mail::dmarc
