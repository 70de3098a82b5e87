// Tag lists (RFC 6376 §3.2) and the signature fields built from them: DKIM-Signature (§3.5),
// ARC-Message-Signature and ARC-Seal (RFC 8617 §4.1.2, §4.1.3).
#include "libmail/auth/dkim_internal.hpp"

#include "libmail/base/codec.hpp"
#include "libmail/base/text.hpp"

#include <charconv>

namespace mail::dkim::detail {

namespace {

bool ws(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }
bool alpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
bool digit(char c) { return c >= '0' && c <= '9'; }

std::string unfold_trim(std::string_view v) {
    std::string out;
    for (char c : trim(v))
        if (c != '\r' && c != '\n') out.push_back(c);
    return out;
}

// A decimal number of at most 18 digits (larger values are capped: they are later than any clock).
std::optional<long long> number(std::string_view v) {
    if (v.empty()) return std::nullopt;
    for (char c : v)
        if (!digit(c)) return std::nullopt;
    if (v.size() > 18) return 999999999999999999LL;
    long long n = 0;
    std::from_chars(v.data(), v.data() + v.size(), n);
    return n;
}

// The domain part of an i= value (after the last '@').
std::string_view domain_of(std::string_view i) {
    auto at = i.rfind('@');
    return at == std::string_view::npos ? std::string_view{} : i.substr(at + 1);
}

bool in_domain(std::string_view sub, std::string_view d) {
    if (iequals(sub, d)) return true;
    return sub.size() > d.size() + 1 && sub[sub.size() - d.size() - 1] == '.' &&
           iequals(sub.substr(sub.size() - d.size()), d);
}

constexpr std::size_t max_tags = 64;

} // namespace

std::optional<Tags> parse_tags(std::string_view text, std::string* why) {
    auto fail = [&](std::string w) -> std::optional<Tags> {
        if (why) *why = std::move(w);
        return std::nullopt;
    };
    Tags out;
    std::size_t pos = 0;
    while (pos <= text.size()) {
        std::size_t semi = text.find(';', pos);
        std::size_t end = semi == std::string_view::npos ? text.size() : semi;
        std::string_view spec = text.substr(pos, end - pos);
        if (trim(spec).empty()) {
            // Only the end may be empty: "a=1;" or an empty list.
            if (semi != std::string_view::npos && !trim(text.substr(semi + 1)).empty())
                return fail("empty tag-spec");
            break;
        }
        auto eq = spec.find('=');
        if (eq == std::string_view::npos) return fail("tag without '='");
        std::string_view name = trim(spec.substr(0, eq));
        if (name.empty() || !alpha(name[0])) return fail("bad tag name");
        for (char c : name)
            if (!alpha(c) && !digit(c) && c != '_') return fail("bad tag name");
        std::string_view value = spec.substr(eq + 1);
        for (char c : value) {
            auto u = static_cast<unsigned char>(c);
            if (!ws(c) && (u < 0x21 || u > 0x7e)) return fail("bad octet in tag value");
        }
        // No signature or key record of any RFC has more than a couple of dozen tags: a field of thousands
        // would make the duplicate check below cost quadratic time.
        if (out.size() >= max_tags) return fail("more than " + std::to_string(max_tags) + " tags");
        for (const Tag& t : out)
            if (t.name == name) return fail("duplicate tag " + std::string(name));
        Tag t;
        t.name = std::string(name);
        t.value = unfold_trim(value);
        t.value_begin = pos + eq + 1;
        t.value_end = end;
        out.push_back(std::move(t));
        if (semi == std::string_view::npos) break;
        pos = semi + 1;
    }
    return out;
}

const std::string* find_tag(const Tags& tags, std::string_view name) {
    for (const Tag& t : tags)
        if (t.name == name) return &t.value;
    return nullptr;
}

std::string strip_ws(std::string_view value) {
    std::string out;
    for (char c : value)
        if (!ws(c)) out.push_back(c);
    return out;
}

Sig parse_sig(const std::vector<HeaderField>& fields, std::size_t index, Sig::Kind kind) {
    Sig sig;
    sig.kind = kind;
    sig.field = index;
    const std::string& raw = fields[index].raw;
    auto colon = raw.find(':');
    std::string_view text = std::string_view(raw).substr(colon == std::string::npos ? raw.size() : colon + 1);
    std::string why;
    auto tags = parse_tags(text, &why);
    if (!tags) {
        sig.error = "signature syntax: " + why;
        return sig;
    }
    sig.tags = std::move(*tags);
    auto get = [&](std::string_view n) { return find_tag(sig.tags, n); };
    auto need = [&](std::string_view n) -> const std::string* {
        const std::string* v = get(n);
        if (!v && sig.error.empty()) sig.error = "missing tag " + std::string(n) + "=";
        return v;
    };
    const std::string* a = need("a");
    const std::string* b = need("b");
    const std::string* d = need("d");
    const std::string* s = need("s");
    const std::string* bh = kind == Sig::Kind::seal ? nullptr : need("bh");
    const std::string* h = kind == Sig::Kind::seal ? nullptr : need("h");
    if (kind == Sig::Kind::dkim) need("v");
    else need("i");
    if (kind == Sig::Kind::seal) need("cv");
    if (d) sig.d = lower(*d);
    if (s) sig.s = *s;
    if (a) sig.a = lower(*a);
    if (b) sig.b_text = strip_ws(*b);
    if (!sig.error.empty()) return sig;

    if (kind == Sig::Kind::dkim && *get("v") != "1") {
        sig.error = "unsupported version v=" + *get("v");
        return sig;
    }
    if (sig.a == "rsa-sha256") {
    } else if (sig.a == "rsa-sha1") {
        sig.sha1 = true;
    } else if (sig.a == "ed25519-sha256") {
        sig.ed25519 = true;
    } else {
        sig.error = "unknown algorithm a=" + sig.a;
        return sig;
    }
    if (sig.d.empty() || sig.s.empty()) {
        sig.error = "empty d= or s=";
        return sig;
    }
    auto bd = base64_decode(sig.b_text);
    if (!bd || bd->empty()) {
        sig.error = "b= is not base64";
        return sig;
    }
    sig.b = std::move(*bd);
    if (bh) {
        auto bhd = base64_decode(strip_ws(*bh));
        if (!bhd || bhd->empty()) {
            sig.error = "bh= is not base64";
            return sig;
        }
        sig.bh = std::move(*bhd);
    }
    if (kind == Sig::Kind::seal) {
        sig.hrelaxed = true;
        if (get("h")) {
            sig.error = "ARC-Seal with h=";
            return sig;
        }
        sig.cv = lower(*get("cv"));
    } else {
        std::string c = get("c") ? lower(*get("c")) : std::string("simple/simple");
        auto slash = c.find('/');
        std::string hc = c.substr(0, slash), bc = slash == std::string::npos ? "simple" : c.substr(slash + 1);
        if ((hc != "simple" && hc != "relaxed") || (bc != "simple" && bc != "relaxed")) {
            sig.error = "unknown canonicalization c=" + c;
            return sig;
        }
        sig.hrelaxed = hc == "relaxed";
        sig.brelaxed = bc == "relaxed";
        std::string_view hv = *h;
        std::size_t p = 0;
        while (p <= hv.size()) {
            auto e = hv.find(':', p);
            std::string_view name = trim(hv.substr(p, e == std::string_view::npos ? hv.npos : e - p));
            if (name.empty()) {
                sig.error = "empty name in h=";
                return sig;
            }
            sig.h.emplace_back(name);
            if (sig.h.size() > 256) {
                sig.error = "too many names in h=";
                return sig;
            }
            if (e == std::string_view::npos) break;
            p = e + 1;
        }
        if (const std::string* l = get("l")) {
            auto n = number(*l);
            if (!n) {
                sig.error = "bad l=";
                return sig;
            }
            sig.l = *n;
        }
    }
    if (kind == Sig::Kind::dkim) {
        bool from = false;
        for (const auto& n : sig.h) from = from || iequals(n, "from");
        if (!from) {
            sig.error = "From is not signed";
            return sig;
        }
        if (const std::string* q = get("q")) {
            bool dns = false;
            for (std::string_view rest = *q; !rest.empty();) {
                auto e = rest.find(':');
                std::string_view one = trim(rest.substr(0, e));
                if (iequals(one, "dns/txt")) dns = true;
                rest = e == std::string_view::npos ? std::string_view{} : rest.substr(e + 1);
            }
            if (!dns) {
                sig.error = "no supported query method q=";
                return sig;
            }
        }
        if (const std::string* i = get("i")) {
            sig.i = *i;
            if (i->find('@') == std::string::npos || !in_domain(domain_of(*i), sig.d)) {
                sig.error = "i= is not in d=";
                return sig;
            }
        } else {
            sig.i = "@" + sig.d;
        }
        for (auto [tag, out] : {std::pair{"t", &sig.t}, std::pair{"x", &sig.x}}) {
            if (const std::string* v = get(tag)) {
                auto n = number(*v);
                if (!n) {
                    sig.error = std::string("bad ") + tag + "=";
                    return sig;
                }
                *out = *n;
            }
        }
        if (sig.t >= 0 && sig.x >= 0 && sig.x < sig.t) {
            sig.error = "x= is before t=";
            return sig;
        }
    } else {
        auto n = number(*get("i"));
        if (!n || *n < 1 || *n > 50) {
            sig.error = "bad instance i=";
            return sig;
        }
        sig.instance = static_cast<int>(*n);
    }
    // The field itself with the b= value emptied (§3.7), canonicalised, without its final CRLF.
    for (const Tag& t : sig.tags) {
        if (t.name != "b") continue;
        std::size_t base = colon + 1;
        std::string emptied = raw.substr(0, base + t.value_begin) + raw.substr(base + t.value_end);
        sig.self = canon_header(emptied, sig.hrelaxed);
        if (sig.self.size() >= 2 && sig.self.compare(sig.self.size() - 2, 2, "\r\n") == 0)
            sig.self.resize(sig.self.size() - 2);
    }
    return sig;
}

} // namespace mail::dkim::detail
