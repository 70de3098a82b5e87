// Sender authentication of one message, all methods together: see auth.hpp.
//
// Rules written down here (mverify(1), mailstamp(7) and the closing note repeat them):
//
// The client from Received (client_from_received). Each Received field records the host that connected
// (the client) and was written by the host that accepted the connection. The topmost field was written by
// whoever handed the message to us (our own MTA, or the relay in front of us): it is believed because
// nobody can add a field above it. Field N+1 (counting from the top, 0 first) was written by the client that
// field N records; so it is believed only when that client is a trusted relay. The walk: from the topmost
// Received field down, parse each field's client; when that client is a trusted relay (a listed address
// or CIDR block, or a loopback address: a content filter reinjecting on 127.0.0.1 or ::1 is always our own
// host), go on to the next field, which it wrote; the first client that is not trusted is the SMTP client
// of the message, with the HELO name that field records. Nothing (SPF is not evaluated by the filter) when
// a believed field records no client address (local submission, a form not understood), when every
// client down to the bottom is trusted (the message started inside), or after 50 fields.
// Understood forms of the from clause:
//   Postfix   from HELO (RDNS [IP])            ("unknown" for no RDNS; [IPv6:...] for IPv6)
//   Sendmail  from HELO (RDNS [IP])  /  from HELO ([IP])  /  from HELO (user@RDNS [IP] (may be forged))
//   Exim      from RDNS ([IP] helo=HELO)  /  from [IP] (helo=HELO)  /  from RDNS ([IP])  (HELO = RDNS)
//             (an optional ":port" after "]" and "ident=" are accepted)
// The IP is the first bracketed address inside the from clause's comments, else the bracketed from name
// itself; the HELO name is a "helo=" in those comments, else the from name.
//
// Trusted upstream results (upstream_results): the topmost Authentication-Results field whose authserv-id
// is listed (compared ignoring case) is taken as it is: its spf result with smtp.mailfrom (or, without it,
// smtp.helo) fills the SPF outcomes, every dkim result one signature, the first dmarc and arc results the
// DMARC and ARC outcomes. Lower fields, even under a trusted id, are not looked at (the topmost trusted
// host had the last word). Result words of RFC 5451 are mapped: hardfail = fail; SPF "policy" = neutral
// (not a pass, not temporary). DMARC alignment flags are recomputed from those results (relaxed).
//
// ARC (arc_trusted): the chain validated (arc=pass), its highest-instance sealer is a listed trusted sealer,
// and that instance's ARC-Authentication-Results say dmarc=pass for the same From domain (when they
// name one with header.from). When such a sealer's chain could not be checked because a key lookup failed
// temporarily (arc_temporary), the message is a retry unless DMARC passed anyway: the list mail of a trusted
// sealer is never refused or held as forged over a DNS hiccup.
//
// Method results (method_results): RFC 8601 resinfo syntax; values that are not a plain token or
// local-part@domain are quoted; reasons go into comments, with '(', ')' and '\' escaped as quoted-pairs and
// controls scrubbed, so every comment is balanced.
#include "libmail/auth/auth.hpp"

#include "libmail/base/text.hpp"
#include "libmail/mail/address.hpp"

#include <arpa/inet.h>

#include <array>
#include <cstring>

namespace mail::auth {

bool Results::spf_pass(std::string_view domain) const {
    return spf_mailfrom.result == spf::SpfResult::pass && iequals(spf_mailfrom.domain, domain);
}
bool Results::dkim_pass(std::string_view domain) const {
    for (const auto& s : dkim)
        if (s.status == dkim::Status::pass && !s.testing && iequals(s.domain, domain)) return true;
    return false;
}
bool Results::dmarc_pass() const { return dmarc.status == dmarc::Status::pass || arc_trusted; }
bool Results::temporary() const {
    if (spf_mailfrom.result == spf::SpfResult::temperror || dmarc.status == dmarc::Status::temperror) return true;
    // A trusted sealer's chain that could not be checked may still vouch for the author, unless DMARC passed.
    if (arc_temporary && dmarc.status != dmarc::Status::pass) return true;
    for (const auto& s : dkim)
        if (s.status == dkim::Status::temperror) return true;
    return false;
}

namespace {

// ---------------------------------------------------------------- RFC 8601 scanning

bool is_wsp(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }
bool is_keyword_char(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
}

constexpr std::size_t max_comment_depth = 32;
constexpr std::size_t max_results = 64;
constexpr std::size_t max_comments = 64;

class Scanner {
public:
    explicit Scanner(std::string_view s) : s_(s) {}
    bool end() const { return i_ >= s_.size(); }
    char peek() const { return end() ? '\0' : s_[i_]; }
    void next() { ++i_; }
    std::size_t pos() const { return i_; }
    void seek(std::size_t p) { i_ = p; }
    std::vector<std::string>* comments = nullptr;  // where comments go, when wanted

    // Whitespace and comments (nested, with quoted-pairs); an unterminated comment runs to the end.
    void cfws() {
        while (!end()) {
            if (is_wsp(s_[i_])) {
                ++i_;
            } else if (s_[i_] == '(') {
                comment();
            } else {
                break;
            }
        }
    }

    // [A-Za-z0-9_-]+, may be empty.
    std::string keyword() {
        std::size_t b = i_;
        while (!end() && is_keyword_char(s_[i_])) ++i_;
        return std::string(s_.substr(b, i_ - b));
    }

    // A quoted-string or a run of octets up to WSP, ';', '(', ')' or '"'; a quoted local part may be followed
    // at once by "@domain".
    std::string value() {
        std::string out;
        if (peek() == '"') {
            out = quoted();
            if (peek() != '@') return out;
        }
        while (!end()) {
            char c = s_[i_];
            if (is_wsp(c) || c == ';' || c == '(' || c == ')' || c == '"') break;
            out += c;
            ++i_;
        }
        return out;
    }

    // Moves past the next ';' outside quoted strings and comments (or to the end); stops before it.
    void skip_to_semicolon() {
        while (!end()) {
            char c = s_[i_];
            if (c == ';') return;
            if (c == '"') {
                quoted();
            } else if (c == '(') {
                auto* saved = comments;
                comments = nullptr;
                comment();
                comments = saved;
            } else {
                ++i_;
            }
        }
    }

private:
    std::string quoted() {
        std::string out;
        ++i_;  // the opening quote
        while (!end() && s_[i_] != '"') {
            if (s_[i_] == '\\' && i_ + 1 < s_.size()) ++i_;
            out += s_[i_++];
        }
        if (!end()) ++i_;  // the closing quote
        return out;
    }

    void comment() {
        std::size_t depth = 0;
        std::string text;
        do {
            char c = s_[i_];
            if (c == '\\' && i_ + 1 < s_.size()) {
                if (depth > 0) text += s_[i_ + 1];
                i_ += 2;
                continue;
            }
            if (c == '(') {
                if (depth > 0) text += c;
                ++depth;
            } else if (c == ')') {
                --depth;
                if (depth > 0) text += c;
            } else {
                text += c;
            }
            ++i_;
            if (depth > max_comment_depth) {  // absurd nesting: the rest is one comment
                i_ = s_.size();
                break;
            }
        } while (!end() && depth > 0);
        if (comments && comments->size() < max_comments) comments->push_back(std::string(trim(text)));
    }

    std::string_view s_;
    std::size_t i_ = 0;
};

// One resinfo at the scanner (just after its ';' and CFWS); false when it does not parse.
bool parse_resinfo(Scanner& sc, MethodResult& m) {
    sc.comments = &m.comments;
    std::string method = sc.keyword();
    if (method.empty()) return false;
    m.method = lower(method);
    sc.cfws();
    if (sc.peek() == '/') {
        sc.next();
        sc.cfws();
        m.version = sc.keyword();
        if (m.version.empty()) return false;
        sc.cfws();
    }
    if (sc.peek() != '=') return false;
    sc.next();
    sc.cfws();
    std::string result = sc.keyword();
    if (result.empty()) return false;
    m.result = lower(result);
    for (;;) {
        sc.cfws();
        if (sc.end() || sc.peek() == ';') return true;
        std::string ptype = sc.keyword();
        if (ptype.empty()) return false;
        sc.cfws();
        if (iequals(ptype, "reason") && sc.peek() == '=') {
            sc.next();
            sc.cfws();
            m.reason = sc.value();
            continue;
        }
        if (sc.peek() != '.') return false;
        sc.next();
        sc.cfws();
        std::string property = sc.keyword();
        if (property.empty()) return false;
        sc.cfws();
        if (sc.peek() != '=') return false;
        sc.next();
        sc.cfws();
        std::string v = sc.value();
        if (m.properties.size() < 32) m.properties.emplace_back(lower(ptype) + "." + lower(property), std::move(v));
    }
}

// ---------------------------------------------------------------- addresses and CIDR blocks

struct Ip {
    int family = 0;  // AF_INET or AF_INET6
    std::array<unsigned char, 16> octets{};
};

// A numeric address (IPv4-mapped IPv6 as IPv4), or nothing.
std::optional<Ip> parse_ip(std::string_view text) {
    if (text.empty() || text.size() > 64) return std::nullopt;
    std::string s(text);
    Ip ip;
    if (inet_pton(AF_INET, s.c_str(), ip.octets.data()) == 1) {
        ip.family = AF_INET;
        return ip;
    }
    if (inet_pton(AF_INET6, s.c_str(), ip.octets.data()) == 1) {
        static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
        if (std::memcmp(ip.octets.data(), mapped, 12) == 0) {
            Ip v4;
            v4.family = AF_INET;
            std::memcpy(v4.octets.data(), ip.octets.data() + 12, 4);
            return v4;
        }
        ip.family = AF_INET6;
        return ip;
    }
    return std::nullopt;
}

std::string ip_text(const Ip& ip) {
    char buf[INET6_ADDRSTRLEN] = {};
    inet_ntop(ip.family, ip.octets.data(), buf, sizeof buf);
    return buf;
}

bool in_block(const Ip& ip, std::string_view block) {
    block = trim(block);
    int prefix = -1;
    auto slash = block.find('/');
    std::string_view addr = block.substr(0, slash);
    if (slash != std::string_view::npos) {
        std::string_view n = block.substr(slash + 1);
        if (n.empty() || n.size() > 3) return false;
        prefix = 0;
        for (char c : n) {
            if (c < '0' || c > '9') return false;
            prefix = prefix * 10 + (c - '0');
        }
    }
    auto net = parse_ip(addr);
    if (!net || net->family != ip.family) return false;
    int bits = ip.family == AF_INET ? 32 : 128;
    if (prefix < 0) prefix = bits;
    // An IPv4-mapped IPv6 block ("::ffff:10.0.0.0/104") was turned into IPv4: its prefix counts from bit 96.
    if (net->family == AF_INET && addr.find(':') != std::string_view::npos) prefix -= 96;
    if (prefix < 0 || prefix > bits) return false;
    for (int b = 0; b < prefix; ++b) {
        int byte = b / 8, bit = 7 - b % 8;
        if (((ip.octets[byte] >> bit) & 1) != ((net->octets[byte] >> bit) & 1)) return false;
    }
    return true;
}

bool is_loopback(const Ip& ip) {
    if (ip.family == AF_INET) return ip.octets[0] == 127;
    static const unsigned char one[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
    return std::memcmp(ip.octets.data(), one, 16) == 0;
}

bool trusted_relay(const Ip& ip, const std::vector<std::string>& relays) {
    if (is_loopback(ip)) return true;
    for (const auto& r : relays)
        if (in_block(ip, r)) return true;
    return false;
}

// ---------------------------------------------------------------- Received

struct ReceivedFrom {
    std::string name;  // the from name
    std::string ip;    // "" when none found
    std::string helo;
};

// The address in "[...]" (an optional "IPv6:" prefix) at the start of text, or "".
std::string bracket_ip(std::string_view text) {
    auto close = text.find(']');
    if (text.empty() || text.front() != '[' || close == std::string_view::npos) return "";
    std::string_view inner = text.substr(1, close - 1);
    if (istarts_with(inner, "IPv6:")) inner.remove_prefix(5);
    auto ip = parse_ip(inner);
    return ip ? ip_text(*ip) : "";
}

std::optional<ReceivedFrom> parse_received(std::string_view v) {
    // Top-level words and comments, up to the ';' before the date.
    struct Tok {
        std::string text;
        bool comment = false;
    };
    std::vector<Tok> toks;
    std::size_t i = 0;
    while (i < v.size() && toks.size() < 64) {
        char c = v[i];
        if (is_wsp(c)) {
            ++i;
            continue;
        }
        if (c == ';') break;
        if (c == '(') {
            std::size_t depth = 0, b = i;
            do {
                if (v[i] == '\\' && i + 1 < v.size()) {
                    i += 2;
                    continue;
                }
                if (v[i] == '(') ++depth;
                else if (v[i] == ')') --depth;
                ++i;
            } while (i < v.size() && depth > 0 && depth <= max_comment_depth);
            toks.push_back({std::string(v.substr(b + 1, i - b - 1)), true});  // without the outer '('
            continue;
        }
        std::size_t b = i;
        while (i < v.size() && !is_wsp(v[i]) && v[i] != '(' && v[i] != ';') ++i;
        toks.push_back({std::string(v.substr(b, i - b)), false});
    }
    if (toks.empty() || toks[0].comment || !iequals(toks[0].text, "from")) return std::nullopt;
    ReceivedFrom rf;
    std::vector<std::string> comments;
    for (std::size_t k = 1; k < toks.size(); ++k) {
        const Tok& t = toks[k];
        if (!t.comment) {
            if (iequals(t.text, "by") || iequals(t.text, "via") || iequals(t.text, "with") ||
                iequals(t.text, "id") || iequals(t.text, "for"))
                break;
            if (rf.name.empty() && comments.empty()) rf.name = t.text;
            continue;
        }
        comments.push_back(t.text);
    }
    for (const auto& c : comments) {
        // The client's own HELO text (Exim "helo=NAME", qmail "HELO NAME") is what the client said, not what
        // the MTA saw: an address literal in it is never taken for the client's address.
        std::string seen = c;
        const std::string low = lower(c);
        for (std::size_t p = 0; (p = low.find("helo", p)) != std::string::npos; p += 4) {
            if (p > 0 && !is_wsp(c[p - 1]) && c[p - 1] != '(') continue;
            std::size_t b = p + 4;
            if (b >= c.size() || (c[b] != '=' && !is_wsp(c[b]))) continue;
            while (b < c.size() && (c[b] == '=' || is_wsp(c[b]))) ++b;
            std::size_t e = b;
            while (e < c.size() && !is_wsp(c[e]) && c[e] != ')' && c[e] != '(') ++e;
            if (rf.helo.empty() && e > b) rf.helo = c.substr(b, e - b);
            for (std::size_t k = p; k < e; ++k) seen[k] = ' ';
        }
        for (std::size_t p = seen.find('['); p != std::string::npos && rf.ip.empty(); p = seen.find('[', p + 1))
            rf.ip = bracket_ip(std::string_view(seen).substr(p));
    }
    if (rf.ip.empty()) rf.ip = bracket_ip(rf.name);
    if (rf.helo.empty()) rf.helo = rf.name;
    return rf;
}

// ---------------------------------------------------------------- mapping words

spf::SpfResult spf_word(std::string_view w) {
    if (w == "pass") return spf::SpfResult::pass;
    if (w == "fail" || w == "hardfail") return spf::SpfResult::fail;
    if (w == "softfail") return spf::SpfResult::softfail;
    if (w == "neutral" || w == "policy") return spf::SpfResult::neutral;
    if (w == "temperror") return spf::SpfResult::temperror;
    if (w == "permerror") return spf::SpfResult::permerror;
    return spf::SpfResult::none;
}
dkim::Status dkim_word(std::string_view w) {
    if (w == "pass") return dkim::Status::pass;
    if (w == "fail" || w == "hardfail") return dkim::Status::fail;
    if (w == "policy") return dkim::Status::policy;
    if (w == "neutral") return dkim::Status::neutral;
    if (w == "temperror") return dkim::Status::temperror;
    if (w == "permerror") return dkim::Status::permerror;
    return dkim::Status::none;
}
dmarc::Status dmarc_word(std::string_view w) {
    if (w == "pass") return dmarc::Status::pass;
    if (w == "fail") return dmarc::Status::fail;
    if (w == "temperror") return dmarc::Status::temperror;
    if (w == "permerror") return dmarc::Status::permerror;
    return dmarc::Status::none;
}

std::string domain_of(std::string_view address_or_domain) {
    auto at = address_or_domain.rfind('@');
    return normalize_domain(at == std::string_view::npos ? address_or_domain : address_or_domain.substr(at + 1));
}

// The domain of the single address of the single From field, "" otherwise.
std::string from_domain_of(const std::vector<HeaderField>& fields) {
    const HeaderField* from = nullptr;
    for (const auto& f : fields) {
        if (!f.is("From")) continue;
        if (from) return "";
        from = &f;
    }
    if (!from) return "";
    auto list = parse_address_list(from->value());
    if (!list || list->size() != 1 || (*list)[0].domain.empty()) return "";
    return normalize_domain((*list)[0].domain);
}

// "p=WORD" in the comments of a dmarc result (OpenDMARC writes "(p=reject dis=none)").
std::string policy_in(const std::vector<std::string>& comments) {
    for (const auto& c : comments) {
        std::string l = lower(c);
        for (std::size_t p = 0; (p = l.find("p=", p)) != std::string::npos; p += 2) {
            if (p > 0 && !is_wsp(l[p - 1]) && l[p - 1] != ',' && l[p - 1] != ';') continue;
            std::size_t e = p + 2;
            while (e < l.size() && is_keyword_char(l[e])) ++e;
            std::string w = l.substr(p + 2, e - p - 2);
            if (w == "none" || w == "quarantine" || w == "reject") return w;
        }
    }
    return "";
}

Results results_from(const AuthResults& ar, const std::vector<HeaderField>& fields) {
    Results r;
    r.upstream = ar.authserv_id;
    r.from_domain = from_domain_of(fields);
    bool have_mailfrom = false, have_helo = false, have_dmarc = false, have_arc = false;
    for (const auto& m : ar.results) {
        if (m.method == "spf") {
            std::string mailfrom = m.property("smtp.mailfrom");
            std::string helo = m.property("smtp.helo");
            spf::Outcome o;
            o.result = spf_word(m.result);
            o.explanation = m.reason;
            if (!mailfrom.empty() && !have_mailfrom) {
                o.identity = "mailfrom";
                o.domain = domain_of(mailfrom);
                r.spf_mailfrom = o;
                if (mailfrom.find('@') != std::string::npos) r.mail_from = mailfrom;
                have_mailfrom = r.spf_checked = true;
            } else if (mailfrom.empty() && !helo.empty() && !have_helo) {
                o.identity = "helo";
                o.domain = normalize_domain(helo);
                r.spf_helo = o;
                have_helo = true;
            }
        } else if (m.method == "dkim") {
            dkim::SignatureResult s;
            s.status = dkim_word(m.result);
            s.identity = m.property("header.i");
            s.domain = m.property("header.d");
            s.domain = s.domain.empty() ? domain_of(s.identity) : normalize_domain(s.domain);
            if (s.identity.empty() && !s.domain.empty()) s.identity = "@" + s.domain;
            s.selector = m.property("header.s");
            s.algorithm = m.property("header.a");
            s.b = m.property("header.b");
            s.reason = m.reason;
            if (r.dkim.size() < 16) r.dkim.push_back(std::move(s));
        } else if (m.method == "dmarc" && !have_dmarc) {
            have_dmarc = true;
            r.dmarc.status = dmarc_word(m.result);
            std::string from = m.property("header.from");
            if (!from.empty()) r.dmarc.from_domain = domain_of(from);
            else r.dmarc.from_domain = r.from_domain;
            r.dmarc.policy = policy_in(m.comments);
            r.dmarc.reason = m.reason;
        } else if (m.method == "arc" && !have_arc) {
            have_arc = true;
            r.arc.status = m.result == "pass"   ? dkim::ArcStatus::pass
                           : m.result == "fail" ? dkim::ArcStatus::fail
                                                : dkim::ArcStatus::none;
            r.arc.reason = m.reason;
        }
    }
    if (!have_dmarc) r.dmarc.from_domain = r.from_domain;
    const std::string& from = r.dmarc.from_domain;
    r.dmarc.spf_aligned = r.spf_mailfrom.result == spf::SpfResult::pass && dmarc::aligned(r.spf_mailfrom.domain, from, false);
    for (const auto& s : r.dkim)
        if (s.status == dkim::Status::pass && dmarc::aligned(s.domain, from, false)) r.dmarc.dkim_aligned = true;
    return r;
}

// ---------------------------------------------------------------- writing method results

bool is_token_char(char c) {
    if (is_control(c) || c == ' ' || static_cast<unsigned char>(c) >= 0x80) return false;
    return std::strchr("()<>@,;:\\\"/[]?=", c) == nullptr;
}
bool is_atext_or_dot(char c) {
    if (is_control(c) || c == ' ' || static_cast<unsigned char>(c) >= 0x80) return false;
    return std::strchr("()<>@,;:\\\"[]", c) == nullptr;
}

// A pvalue: as it is when it is a token or a dot-atom local-part@domain, else a quoted-string.
std::string pvalue(std::string_view v) {
    bool token = !v.empty();
    for (char c : v) token = token && is_token_char(c);
    if (token) return std::string(v);
    auto at = v.rfind('@');
    if (at != std::string_view::npos && at > 0 && at + 1 < v.size()) {
        bool ok = true;
        for (char c : v.substr(0, at)) ok = ok && is_atext_or_dot(c);
        for (char c : v.substr(at + 1)) ok = ok && is_token_char(c);
        if (ok) return std::string(v);
    }
    std::string out = "\"";
    for (char c : scrub(v, 256)) {
        if (c == '"' || c == '\\') out += '\\';
        out += c;
    }
    return out + "\"";
}

// A balanced comment: " (text)", or "" for empty text.
std::string comment(std::string_view text) {
    std::string t = scrub(trim(text), 200);
    if (t.empty()) return "";
    std::string out = " (";
    for (char c : t) {
        if (c == '(' || c == ')' || c == '\\') out += '\\';
        out += c;
    }
    return out + ")";
}

std::string spf_reason(const spf::Outcome& o) {
    if (!o.explanation.empty()) return o.explanation;
    if (o.mechanism == "default") return "no mechanism matched";
    if (!o.mechanism.empty()) return "matched " + o.mechanism;
    return "";
}

} // namespace

// ---------------------------------------------------------------- public

std::string MethodResult::property(std::string_view name) const {
    for (const auto& [k, v] : properties)
        if (k == name) return v;
    return "";
}

std::optional<AuthResults> parse_authentication_results(std::string_view value) {
    Scanner sc(value);
    sc.cfws();
    // ARC-Authentication-Results: "i=N;" first.
    if (sc.peek() == 'i' || sc.peek() == 'I') {
        std::size_t at = sc.pos();
        sc.next();
        sc.cfws();
        if (sc.peek() == '=') {
            sc.next();
            sc.cfws();
            std::string n = sc.keyword();
            sc.cfws();
            if (sc.peek() == ';' && !n.empty()) {
                sc.next();
                sc.cfws();
            } else {
                sc.seek(at);
            }
        } else {
            sc.seek(at);
        }
    }
    AuthResults ar;
    ar.authserv_id = sc.value();
    if (ar.authserv_id.empty()) return std::nullopt;
    sc.cfws();
    if (sc.peek() >= '0' && sc.peek() <= '9') {
        std::string v = sc.keyword();
        if (v != "1") return std::nullopt;
        sc.cfws();
    }
    while (!sc.end()) {
        if (sc.peek() != ';') {
            sc.skip_to_semicolon();
            continue;
        }
        sc.next();
        sc.cfws();
        if (sc.end()) break;
        std::size_t at = sc.pos();
        std::string w = sc.keyword();
        sc.cfws();
        if (iequals(w, "none") && (sc.end() || sc.peek() == ';')) continue;  // no-result
        sc.seek(at);
        MethodResult m;
        bool ok = parse_resinfo(sc, m);
        sc.comments = nullptr;
        if (ok) {
            if (ar.results.size() < max_results) ar.results.push_back(std::move(m));
        } else {
            sc.skip_to_semicolon();
        }
    }
    return ar;
}

std::vector<std::string> Results::method_results() const {
    std::vector<std::string> out;
    if (spf_checked) {
        std::string mf = mail_from.find('@') != std::string::npos ? mail_from : spf_mailfrom.domain;
        std::string line = "spf=" + std::string(spf::to_string(spf_mailfrom.result)) + comment(spf_reason(spf_mailfrom));
        if (!mf.empty()) line += " smtp.mailfrom=" + pvalue(mf);
        out.push_back(std::move(line));
    }
    if (spf_helo.identity == "helo" && !spf_helo.domain.empty())
        out.push_back("spf=" + std::string(spf::to_string(spf_helo.result)) + comment(spf_reason(spf_helo)) +
                      " smtp.helo=" + pvalue(spf_helo.domain));
    if (dkim.empty()) out.push_back("dkim=none (no signatures)");
    for (std::size_t k = 0; k < dkim.size(); ++k) {
        const auto& s = dkim[k];
        std::string why = s.reason;
        if (s.testing) why = why.empty() ? "key in testing mode" : why + ", key in testing mode";
        std::string line = "dkim=" + std::string(dkim::to_string(s.status)) + comment(why);
        if (!s.domain.empty()) line += " header.d=" + pvalue(s.domain);
        if (!s.selector.empty()) line += " header.s=" + pvalue(s.selector);
        if (!s.b.empty()) {
            // RFC 6008: a prefix of b=, 8 characters, longer when another signature shares them.
            std::size_t n = std::min<std::size_t>(8, s.b.size());
            for (bool clash = true; clash && n < s.b.size();) {
                clash = false;
                for (std::size_t j = 0; j < dkim.size(); ++j)
                    if (j != k && dkim[j].b.compare(0, n, s.b, 0, n) == 0 && dkim[j].b.size() >= n) clash = true;
                if (clash) ++n;
            }
            line += " header.b=" + pvalue(s.b.substr(0, n));
        }
        if (!s.algorithm.empty()) line += " header.a=" + pvalue(s.algorithm);
        out.push_back(std::move(line));
    }
    {
        std::string why;
        if (dmarc.record || !dmarc.policy.empty()) {
            why = "p=" + (dmarc.policy.empty() ? std::string("none") : dmarc.policy);
            if (dmarc.record && dmarc.record->pct != 100) why += " pct=" + std::to_string(dmarc.record->pct);
            if (dmarc.status != dmarc::Status::pass && !dmarc.reason.empty()) why += ", " + dmarc.reason;
        } else {
            why = dmarc.reason;
        }
        std::string line = "dmarc=" + std::string(dmarc::to_string(dmarc.status)) + comment(why);
        std::string from = dmarc.from_domain.empty() ? from_domain : dmarc.from_domain;
        if (!from.empty()) line += " header.from=" + pvalue(from);
        out.push_back(std::move(line));
    }
    {
        std::string why;
        std::string status = arc.status == dkim::ArcStatus::pass   ? "pass"
                             : arc.status == dkim::ArcStatus::fail ? "fail"
                                                                   : "none";
        if (arc.status == dkim::ArcStatus::pass) {
            why = "i=" + std::to_string(arc.instances);
            if (!arc.sealers.empty()) {
                why += ", chain";
                for (std::size_t k = 0; k < arc.sealers.size(); ++k) why += (k ? " > " : " ") + arc.sealers[k];
            } else if (!arc.sealer.empty()) {
                why += ", sealer " + arc.sealer;
            }
            if (arc_trusted) why += ", trusted sealer says dmarc=pass";
        } else {
            why = arc.reason;
        }
        out.push_back("arc=" + status + comment(why));
    }
    return out;
}

std::optional<Client> client_from_received(const std::vector<HeaderField>& fields,
                                           const std::vector<std::string>& trusted_relays) {
    int seen = 0;
    for (const auto& f : fields) {
        if (!f.is("Received")) continue;
        if (++seen > 50) return std::nullopt;
        auto rf = parse_received(f.value());
        if (!rf || rf->ip.empty()) return std::nullopt;  // a believed field names no client
        auto ip = parse_ip(rf->ip);
        if (!ip) return std::nullopt;
        if (trusted_relay(*ip, trusted_relays)) continue;  // the next field was written by that relay
        return Client{rf->ip, rf->helo};
    }
    return std::nullopt;
}

std::optional<Results> upstream_results(const std::vector<HeaderField>& fields, const Settings& settings) {
    if (settings.trusted_authserv_ids.empty()) return std::nullopt;
    for (const auto& f : fields) {
        if (!f.is("Authentication-Results")) continue;
        auto ar = parse_authentication_results(f.value());
        if (!ar) continue;
        for (const auto& id : settings.trusted_authserv_ids)
            if (iequals(trim(id), ar->authserv_id)) return results_from(*ar, fields);
    }
    return std::nullopt;
}

Publishes publishes(dns::Resolver& resolver, std::string_view domain) {
    Publishes p;
    std::string d = normalize_domain(trim(domain));
    if (d.empty()) return p;
    dns::Answer a = resolver.query(d, dns::Type::txt);
    if (a.temporary()) p.temporary = true;
    for (const auto& r : a.records) {
        if (r.type != dns::Type::txt) continue;
        // "v=spf1" then a space or the end (RFC 7208 §4.5), case-insensitive.
        if (istarts_with(r.text, "v=spf1") && (r.text.size() == 6 || r.text[6] == ' ')) p.spf = true;
    }
    // A DMARC record as check() would find it: discovery with no identifiers to align.
    dmarc::Outcome o = dmarc::check(resolver, d, spf::Outcome{}, {});
    if (o.status == dmarc::Status::temperror) p.temporary = true;
    if (o.record) p.dmarc = true;
    return p;
}

spf::Outcome spf_at_mail(dns::Resolver& resolver, const Client& client, std::string_view mail_from,
                         const Settings& settings) {
    if (client.ip.empty()) {
        spf::Outcome o;
        o.identity = "mailfrom";
        o.explanation = "no client address";
        return o;
    }
    spf::Query q;
    q.ip = client.ip;
    q.helo = client.helo;
    q.sender = std::string(mail_from);
    q.receiver = settings.receiver;
    // check_mailfrom takes postmaster@HELO for the null sender (RFC 7208 §2.4).
    spf::Outcome o = spf::check_mailfrom(resolver, q);
    if (o.identity.empty()) o.identity = "mailfrom";
    return o;
}

struct Checker::Impl {
    dns::Resolver& resolver;
    Settings settings;
    std::vector<HeaderField> fields;
    dkim::Verifier verifier;
    bool ended = false;

    Impl(dns::Resolver& r, const Settings& s, const std::vector<HeaderField>& f)
        : resolver(r), settings(s), fields(f), verifier(f, dkim::Options{8, s.now}) {}
};

Checker::Checker(dns::Resolver& resolver, const Settings& settings, const std::vector<HeaderField>& fields)
    : impl_(std::make_unique<Impl>(resolver, settings, fields)) {}
Checker::~Checker() = default;

void Checker::body(std::string_view chunk) {
    if (!impl_->ended) impl_->verifier.body(chunk);
}

Results Checker::finish(const Client& client, std::string_view mail_from, const std::optional<spf::Outcome>& spf) {
    Impl& im = *impl_;
    if (!im.ended) {
        im.verifier.end_body();
        im.ended = true;
    }
    if (client.ip.empty() && !spf) {
        if (auto up = upstream_results(im.fields, im.settings)) {
            if (up->mail_from.empty()) up->mail_from = std::string(mail_from);
            return *up;
        }
    }
    Results r;
    r.mail_from = std::string(mail_from);
    r.from_domain = from_domain_of(im.fields);
    if (spf || !client.ip.empty()) {
        spf::Query q;
        q.ip = client.ip;
        q.helo = client.helo;
        q.sender = r.mail_from;
        q.receiver = im.settings.receiver;
        r.spf_checked = true;
        r.spf_mailfrom = spf ? *spf : spf::check_mailfrom(im.resolver, q);
        if (r.spf_mailfrom.identity.empty()) r.spf_mailfrom.identity = "mailfrom";
        // The HELO identity too (RFC 7208 §2.3), unless MAIL FROM was null: then it was the one checked.
        if (!client.ip.empty() && !client.helo.empty() && !r.mail_from.empty()) {
            r.spf_helo = spf::check_helo(im.resolver, q);
            r.spf_helo.identity = "helo";
            if (r.spf_helo.domain.empty() && client.helo.front() != '[') r.spf_helo.domain = normalize_domain(client.helo);
        }
    }
    r.dkim = im.verifier.verify(im.resolver);
    r.arc = im.verifier.arc(im.resolver);
    r.dmarc = dmarc::check(im.resolver, r.from_domain, r.spf_checked ? r.spf_mailfrom : spf::Outcome{}, r.dkim);

    bool trusted = false;
    for (const auto& s : im.settings.trusted_arc_sealers)
        if (!r.arc.sealer.empty() && normalize_domain(trim(s)) == normalize_domain(r.arc.sealer)) trusted = true;
    if (r.arc.status == dkim::ArcStatus::fail && r.arc.temporary && trusted) r.arc_temporary = true;
    if (r.arc.status == dkim::ArcStatus::pass && trusted) {
        if (auto ar = parse_authentication_results(r.arc.sealed_results)) {
            for (const auto& m : ar->results) {
                if (m.method != "dmarc" || m.result != "pass") continue;
                std::string from = m.property("header.from");
                if (from.empty() || domain_of(from) == r.from_domain) r.arc_trusted = true;
            }
        }
    }
    return r;
}

} // namespace mail::auth
