// RFC 5322 address parsing: see address.hpp.
#include "libmail/mail/address.hpp"

#include "libmail/base/limits.hpp"
#include "libmail/base/text.hpp"

#include <algorithm>
#include <cctype>

namespace mail {

namespace {

bool is_atext(unsigned char c) {
    if (c >= 0x80) return true;  // RFC 6532: UTF-8 in atoms
    if (std::isalnum(c)) return true;
    return std::string_view("!#$%&'*+-/=?^_`{|}~").find(static_cast<char>(c)) != std::string_view::npos;
}

// Shows input in an error without its control characters.
std::string shown(std::string_view s) { return scrub(s, 80); }

Error fail(std::string_view what) { return Error{ErrorKind::data, std::string(what)}; }

class Parser {
public:
    explicit Parser(std::string_view s) : s_(s) {}

    bool at_end() const { return i_ >= s_.size(); }
    char peek() const { return at_end() ? '\0' : s_[i_]; }
    std::size_t pos() const { return i_; }
    void advance() { ++i_; }

    // Skips folding whitespace and (nested) comments.
    Result<void> skip_cfws() {
        while (!at_end()) {
            char c = s_[i_];
            if (c == ' ' || c == '\t' || c == '\r' || c == '\n') {
                ++i_;
            } else if (c == '(') {
                int depth = 0;
                do {
                    if (at_end()) return fail("unterminated comment");
                    char d = s_[i_++];
                    if (d == '\\') {
                        if (at_end()) return fail("unterminated comment");
                        ++i_;
                    } else if (d == '(') {
                        if (++depth > 64) return fail("comments nested too deeply");
                    } else if (d == ')') {
                        --depth;
                    }
                } while (depth > 0);
            } else {
                break;
            }
        }
        return {};
    }

    // One atom or quoted string; quoted tells which. Empty word when neither.
    Result<std::string> word(bool& quoted) {
        quoted = false;
        std::string out;
        if (peek() == '"') {
            quoted = true;
            ++i_;
            for (;;) {
                if (at_end()) return fail("unterminated quoted string");
                char c = s_[i_++];
                if (c == '"') break;
                if (c == '\\') {
                    if (at_end()) return fail("unterminated quoted string");
                    c = s_[i_++];
                }
                if (c == '\r' || c == '\n') continue;  // folding inside quotes
                out.push_back(c);
            }
            return out;
        }
        while (!at_end() && is_atext(static_cast<unsigned char>(s_[i_]))) out.push_back(s_[i_++]);
        return out;
    }

    // local-part, including obsolete forms (CFWS around dots, empty parts).
    // Stops before '@' or anything that is not part of a local part. Words
    // must be joined by dots; two words side by side make a phrase (a display
    // name), which sets *phrase.
    Result<std::string> local_part(std::vector<std::string>* words = nullptr, bool* phrase = nullptr) {
        std::string local;
        bool after_word = false;
        for (;;) {
            if (auto r = skip_cfws(); !r) return r.error();
            std::size_t before = i_;
            if (peek() == '.') {
                local.push_back('.');
                ++i_;
                after_word = false;
                if (words) words->push_back(".");
                continue;
            }
            bool quoted;
            auto w = word(quoted);
            if (!w) return w.error();
            if (i_ == before) break;
            if (after_word && phrase) *phrase = true;
            after_word = true;
            local += *w;
            if (words) words->push_back(*w);
        }
        return local;
    }

    Result<std::string> domain() {
        if (auto r = skip_cfws(); !r) return r.error();
        std::string d;
        if (peek() == '[') {
            std::size_t start = i_;
            while (!at_end() && s_[i_] != ']') {
                if (s_[i_] == '[' && i_ != start) return fail("bad domain literal");
                // obs-dtext quoted-pairs are refused: no real literal needs them.
                if (s_[i_] == '\\') return fail("quoted-pair in domain literal");
                ++i_;
            }
            if (at_end()) return fail("unterminated domain literal");
            ++i_;
            for (char c : s_.substr(start, i_ - start))
                if (c != ' ' && c != '\t' && c != '\r' && c != '\n') d.push_back(c);
            return d;
        }
        for (;;) {
            bool quoted;
            auto w = word(quoted);
            if (!w) return w.error();
            if (quoted) return fail("quoted string in domain");
            d += *w;
            if (auto r = skip_cfws(); !r) return r.error();
            if (peek() != '.') break;
            d.push_back('.');
            ++i_;
            if (auto r = skip_cfws(); !r) return r.error();
        }
        if (d.empty() || d.front() == '.') return fail("missing domain");
        if (d.find("..") != std::string::npos) return fail("empty label in domain '" + shown(d) + "'");
        return d;
    }

    // addr-spec after the local part has been read: '@' domain.
    Result<Address> finish_addr_spec(std::string local) {
        if (peek() != '@') return fail("address '" + shown(local) + "' has no domain");
        ++i_;
        auto d = domain();
        if (!d) return d.error();
        Address a;
        a.local = std::move(local);
        a.domain = std::move(*d);
        if (a.local.empty()) return fail("empty local part before '@" + shown(a.domain) + "'");
        if (a.local.size() > limits::local_part_length)
            return fail("local part longer than " + std::to_string(limits::local_part_length) + " octets");
        if (a.domain.size() > limits::domain_length)
            return fail("domain longer than " + std::to_string(limits::domain_length) + " octets");
        if (a.local.size() + 1 + a.domain.size() > limits::address_length)
            return fail("address longer than " + std::to_string(limits::address_length) + " octets");
        return a;
    }

    // '<' [obs-route] addr-spec '>' (the '<' is next).
    Result<Address> angle_addr() {
        ++i_;
        if (auto r = skip_cfws(); !r) return r.error();
        if (peek() == '@') {  // obs-route: @a,@b: — dropped (RFC 5322 §4.4)
            for (;;) {
                if (peek() == '@') {
                    ++i_;
                    auto d = domain();
                    if (!d) return d.error();
                }
                if (auto r = skip_cfws(); !r) return r.error();
                if (peek() == ',') {
                    ++i_;
                    if (auto r = skip_cfws(); !r) return r.error();
                    continue;
                }
                if (peek() == ':') {
                    ++i_;
                    break;
                }
                return fail("bad source route");
            }
        }
        bool phrase = false;
        auto local = local_part(nullptr, &phrase);
        if (!local) return local.error();
        if (local->empty() && peek() == '>') return fail("empty address <>");
        if (phrase) return fail("words before '@' are not one local part");
        auto a = finish_addr_spec(*local);
        if (!a) return a;
        if (auto r = skip_cfws(); !r) return r.error();
        if (peek() != '>') return fail("missing '>' after " + shown(a->addr_spec()));
        ++i_;
        return a;
    }

    // One address: a mailbox, or a group (appending its members).
    Result<void> address(std::vector<Address>& out, bool in_group) {
        std::vector<std::string> words;
        std::size_t start = i_;
        bool phrase = false;
        auto local = local_part(&words, &phrase);
        if (!local) return local.error();
        if (auto r = skip_cfws(); !r) return r.error();
        char c = peek();
        if (c == '@') {
            if (phrase) return fail("words before '@' are not one local part: " + shown(s_.substr(start, i_ - start)));
            auto a = finish_addr_spec(*local);
            if (!a) return a.error();
            out.push_back(std::move(*a));
            return {};
        }
        std::string display;
        for (const auto& w : words) {
            if (w == ".") {
                display += ".";  // obs-phrase: "John Q. Public"
                continue;
            }
            if (!display.empty()) display.push_back(' ');
            display += w;
        }
        if (c == '<') {
            auto a = angle_addr();
            if (!a) return a.error();
            a->display = display;
            out.push_back(std::move(*a));
            return {};
        }
        if (c == ':' && !in_group) {
            ++i_;
            for (;;) {
                if (auto r = skip_cfws(); !r) return r;
                if (at_end()) return fail("group '" + shown(display) + "' has no ';'");
                if (peek() == ';') {
                    ++i_;
                    return {};
                }
                if (peek() == ',') {
                    ++i_;
                    continue;
                }
                if (auto r = address(out, true); !r) return r;
                if (out.size() > limits::addresses_per_field)
                    return fail("more than " + std::to_string(limits::addresses_per_field) + " addresses");
                // Members are separated like list elements: "g: a@x b@y;" is
                // as malformed inside a group as outside one.
                if (auto r = skip_cfws(); !r) return r;
                if (!at_end() && peek() != ',' && peek() != ';')
                    return fail("expected ',' or ';' in group '" + shown(display) + "', found '" +
                                shown(std::string(1, peek())) + "'");
            }
        }
        if (words.empty()) return fail("unexpected '" + shown(std::string(1, c)) + "'");
        return fail("address '" + shown(s_.substr(start, i_ - start)) + "' has no domain");
    }

private:
    std::string_view s_;
    std::size_t i_ = 0;
};

Result<void> check_input(std::string_view s) {
    if (s.size() > limits::header_field_size)
        return fail("address field longer than " + std::to_string(limits::header_field_size) + " octets");
    for (char c : s)
        if (is_control(c) && c != '\t' && c != '\r' && c != '\n') return fail("control character in address");
    return {};
}

bool is_dot_atom(std::string_view s) {
    if (s.empty() || s.front() == '.' || s.back() == '.') return false;
    for (std::size_t i = 0; i < s.size(); ++i) {
        if (s[i] == '.') {
            if (s[i - 1] == '.') return false;
        } else if (!is_atext(static_cast<unsigned char>(s[i]))) {
            return false;
        }
    }
    return true;
}

// A local part as a quoted-string, with only the needed quoted-pairs.
std::string quoted(std::string_view l) {
    std::string out = "\"";
    for (char c : l) {
        if (c == '"' || c == '\\') out.push_back('\\');
        out.push_back(c);
    }
    out.push_back('"');
    return out;
}

} // namespace

std::string Address::addr_spec() const {
    if (empty()) return {};
    // Quoted when not a dot-atom, but never case-folded: that is
    // normalize_local's job, and addr_spec() is the address as written.
    return (is_dot_atom(local) ? local : quoted(local)) + "@" + domain;
}

Result<std::vector<Address>> parse_address_list(std::string_view value) {
    if (auto r = check_input(value); !r) return r.error();
    std::vector<Address> out;
    Parser p(value);
    for (;;) {
        if (auto r = p.skip_cfws(); !r) return r.error();
        if (p.at_end()) break;
        if (p.peek() == ',') {  // obs-addr-list: empty elements
            p.advance();
            continue;
        }
        if (auto r = p.address(out, false); !r) return r.error();
        if (out.size() > limits::addresses_per_field)
            return fail("more than " + std::to_string(limits::addresses_per_field) + " addresses");
        if (auto r = p.skip_cfws(); !r) return r.error();
        if (p.at_end()) break;
        if (p.peek() != ',') return fail("expected ',' between addresses, found '" + shown(std::string(1, p.peek())) + "'");
        p.advance();
    }
    return out;
}

Result<Address> parse_addr_spec(std::string_view s) {
    if (auto r = check_input(s); !r) return r.error();
    Parser p(s);
    bool phrase = false;
    auto local = p.local_part(nullptr, &phrase);
    if (!local) return local.error();
    if (phrase) return fail("'" + shown(s) + "' is not an address");
    if (auto r = p.skip_cfws(); !r) return r.error();
    auto a = p.finish_addr_spec(*local);
    if (!a) return a;
    if (auto r = p.skip_cfws(); !r) return r.error();
    if (!p.at_end()) return fail("unexpected text after address " + shown(a->addr_spec()));
    return a;
}

Result<Address> parse_path(std::string_view path) {
    if (auto r = check_input(path); !r) return r.error();
    std::string_view t = trim(path);
    if (t.empty()) return fail("empty path");
    if (t.front() != '<') return parse_addr_spec(t);
    if (t == "<>") return Address{};
    Parser p(t);
    auto a = p.angle_addr();
    if (!a) return a;
    if (auto r = p.skip_cfws(); !r) return r.error();
    if (!p.at_end()) return fail("unexpected text after path " + shown(a->addr_spec()));
    return a;
}

std::string normalize_domain(std::string_view d) {
    std::string out = lower(d);
    if (out.size() > 1 && out.back() == '.') out.pop_back();
    return out;
}

std::string normalize_local(std::string_view l) {
    // XXX RFC 5321 §2.4: local parts are case-sensitive; we fold them anyway.
    std::string low = lower(l);
    return is_dot_atom(low) ? low : quoted(low);
}

std::string normalize_address(const Address& a) {
    if (a.empty()) return {};
    return normalize_local(a.local) + "@" + normalize_domain(a.domain);
}

namespace {

// Takes one BATV tag off a local part (prvs=TAG=local, and Microsoft's
// msprvs1=TAG=local). BATV never changes the domain: the tag is the sender's
// own. False when there is none.
bool strip_batv(std::string& local) {
    for (std::string_view prefix : {"prvs=", "msprvs1="}) {
        if (istarts_with(local, prefix)) {
            auto eq = local.find('=', prefix.size());
            if (eq != std::string::npos && eq + 1 < local.size()) {
                local.erase(0, eq + 1);
                return true;
            }
        }
    }
    return false;
}

// The parts of an SRS0 body, HHH=TT=domain=local (after "SRS0="); false when
// it has not that shape.
bool srs0_parts(std::string_view body, std::string_view& dom, std::string_view& loc) {
    std::size_t p1 = body.find('=');
    if (p1 == std::string_view::npos) return false;
    std::size_t p2 = body.find('=', p1 + 1);
    if (p2 == std::string_view::npos) return false;
    std::size_t p3 = body.find('=', p2 + 1);
    if (p3 == std::string_view::npos || p3 == p2 + 1 || p3 + 1 >= body.size()) return false;
    dom = body.substr(p2 + 1, p3 - p2 - 1);
    loc = body.substr(p3 + 1);
    return is_valid_domain(dom) && dom.front() != '[';  // else not SRS after all
}

bool srs_prefix(std::string_view local, std::string_view tag) {
    if (local.size() < 5 || !istarts_with(local, tag)) return false;
    char sep = local[4];
    return sep == '=' || sep == '+' || sep == '-';
}

// Takes one SRS wrapper off local@domain: SRS0=HHH=TT=orig=user@fwd is
// user@orig; SRS1=HHH=first==HHH=TT=orig=user@fwd is the SRS0 address
// SRS0=HHH=TT=orig=user@first that fwd received. False when there is none.
bool unwrap_srs(std::string& local, std::string& domain) {
    std::string_view l = local;
    std::string_view dom, loc;
    if (srs_prefix(l, "srs0")) {
        if (!srs0_parts(l.substr(5), dom, loc)) return false;
        std::string d(dom), u(loc);
        domain = std::move(d);
        local = std::move(u);
        return true;
    }
    if (srs_prefix(l, "srs1")) {
        std::string_view body = l.substr(5);  // HHH=first==rest
        auto dd = body.find("==");
        auto eq = body.find('=');
        if (dd == std::string_view::npos || eq >= dd) return false;
        std::string_view first = body.substr(eq + 1, dd - eq - 1);
        std::string_view rest = body.substr(dd + 2);
        if (first.empty() || !is_valid_domain(first) || first.front() == '[' || !srs0_parts(rest, dom, loc))
            return false;
        std::string d(first), u = "SRS0=" + std::string(rest);
        domain = std::move(d);
        local = std::move(u);
        return true;
    }
    return false;
}

} // namespace

Address strip_sender_tags(const Address& a, const std::vector<std::string>& trusted_forwarders) {
    // Tags nest (a BATV-signed SRS address), so strip until nothing changes.
    // Every pass shortens the local part (by "prvs=" and a separator, or by
    // an SRS hash, timestamp and domain), so this ends. A fixed bound on
    // passes would leave a tag on a deeply nested address and make a second
    // call strip more than the first.
    //
    // An SRS wrapper is unwrapped only when its domain is a trusted
    // forwarder: nobody here can check its hash (the forwarder's secret), so
    // anyone may write SRS0=H=T=friend.example=friend@their-own.example.
    std::string local = a.local, domain = a.domain;
    bool changed = false;
    for (;;) {
        if (strip_batv(local)) {
            changed = true;
            continue;
        }
        std::string fwd = normalize_domain(domain);
        if (std::find(trusted_forwarders.begin(), trusted_forwarders.end(), fwd) == trusted_forwarders.end()) break;
        if (!unwrap_srs(local, domain)) break;
        changed = true;
    }
    if (!changed) return a;
    Address out;
    out.display = a.display;
    out.local = std::move(local);
    out.domain = std::move(domain);
    return out;
}

Result<std::vector<std::string>> parse_domain_list(const std::vector<std::string>& values) {
    std::vector<std::string> out;
    for (const auto& v : values) {
        std::size_t i = 0;
        while (i < v.size()) {
            std::size_t e = v.find_first_of(" \t,", i);
            if (e == std::string::npos) e = v.size();
            std::string_view d = std::string_view(v).substr(i, e - i);
            i = e + 1;
            if (d.empty()) continue;
            if (!is_valid_domain(d) || d.front() == '[')
                return Error{ErrorKind::usage, "'" + shown(d) + "' is not a domain"};
            std::string n = normalize_domain(d);
            if (std::find(out.begin(), out.end(), n) == out.end()) out.push_back(std::move(n));
        }
    }
    return out;
}

bool is_valid_domain(std::string_view d) {
    if (d.empty() || d.size() > limits::domain_length) return false;
    if (d.front() == '[') {
        if (d.size() < 3 || d.back() != ']') return false;
        for (char c : d.substr(1, d.size() - 2))
            if (c == '[' || c == ']' || c == '\\' || static_cast<unsigned char>(c) <= 0x20) return false;
        return true;
    }
    if (d.back() == '.') d.remove_suffix(1);
    std::size_t start = 0;
    while (start <= d.size()) {
        auto dot = d.find('.', start);
        std::string_view label = d.substr(start, dot == std::string_view::npos ? std::string_view::npos : dot - start);
        if (label.empty() || label.size() > 63 || label.front() == '-' || label.back() == '-') return false;
        for (char c : label) {
            auto u = static_cast<unsigned char>(c);
            if (!(std::isalnum(u) || c == '-' || c == '_' || u >= 0x80)) return false;
        }
        if (dot == std::string_view::npos) break;
        start = dot + 1;
    }
    return true;
}

} // namespace mail
