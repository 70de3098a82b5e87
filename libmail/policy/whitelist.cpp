// Whitelist entries, matching and bulk formats: see whitelist.hpp.
#include "libmail/policy/whitelist.hpp"

#include "libmail/mail/address.hpp"
#include "libmail/base/clock.hpp"
#include "libmail/base/limits.hpp"
#include "libmail/base/text.hpp"

#include <algorithm>
#include <charconv>
#include <istream>
#include <ostream>

namespace mail {

namespace {

std::string printable(std::string_view s) { return scrub(s, 200); }

Error bad(std::string_view what, std::string_view text, std::string_view why) {
    std::string t(what);
    t += " '";
    t += printable(text);
    t += "': ";
    t += why;
    return Error{ErrorKind::data, t};
}

Result<std::string> domain_value(std::string_view d, std::string_view original) {
    if (d.empty() || !is_valid_domain(d) || d.front() == '[')
        return bad("entry", original, "not a domain");
    return normalize_domain(d);
}

// Parses the value of an entry of a known kind (CSV import, where the kind is given).
Result<WlEntry> parse_of_kind(WlKind kind, std::string_view text) {
    switch (kind) {
    case WlKind::address: {
        auto e = parse_wl_entry(text);
        if (e && e->kind != WlKind::address) return bad("entry", text, "not an address");
        return e;
    }
    case WlKind::domain:
    case WlKind::subdomains: {
        std::string_view d = text;
        if (!d.empty() && (d.front() == '@' || d.front() == '.')) d.remove_prefix(1);
        auto v = domain_value(d, text);
        if (!v) return v.error();
        WlEntry e;
        e.kind = kind;
        e.value = *v;
        return e;
    }
    case WlKind::recipient:
        return parse_wl_recipient(text);
    }
    return bad("entry", text, "unknown kind");
}

std::optional<std::int64_t> parse_count(std::string_view s) {
    if (s.empty()) return 0;
    std::int64_t v = 0;
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec != std::errc() || p != s.data() + s.size() || v < 0) return std::nullopt;
    return v;
}


// Reads one line, refusing one longer than the import limit.
Result<bool> read_line(std::istream& in, std::string& line, std::int64_t lineno) {
    line.resize(limits::import_line_length + 2);
    in.getline(line.data(), static_cast<std::streamsize>(line.size()));
    auto n = static_cast<std::size_t>(in.gcount());
    if (in.fail() && !in.eof()) {
        if (in.bad()) return Error{ErrorKind::tempfail, "read error"};
        return Error{ErrorKind::data, "line " + std::to_string(lineno) + ": longer than " +
                                          std::to_string(limits::import_line_length) + " octets"};
    }
    bool had_newline = !in.eof();
    if (had_newline && n > 0) --n;  // gcount counts the extracted newline
    line.resize(n);
    if (line.size() > limits::import_line_length)
        return Error{ErrorKind::data, "line " + std::to_string(lineno) + ": longer than " +
                                          std::to_string(limits::import_line_length) + " octets"};
    return had_newline || n > 0;
}

Error at_line(std::int64_t lineno, const Error& e) {
    return Error{e.kind, "line " + std::to_string(lineno) + ": " + e.text};
}

} // namespace

Result<WlEntry> parse_wl_entry(std::string_view text) {
    std::string_view t = trim(text);
    if (t.empty()) return bad("entry", text, "empty");
    if (t.size() > limits::address_length) return bad("entry", text, "too long");
    if (has_control(t)) return bad("entry", text, "control characters");
    WlEntry e;
    if (t.front() == '.' || t.front() == '@') {
        e.kind = t.front() == '.' ? WlKind::subdomains : WlKind::domain;
        auto v = domain_value(t.substr(1), text);
        if (!v) return v.error();
        e.value = *v;
        return e;
    }
    if (t.find('@') == std::string_view::npos) {
        e.kind = WlKind::domain;
        auto v = domain_value(t, text);
        if (!v) return v.error();
        e.value = *v;
        return e;
    }
    auto a = parse_addr_spec(t);
    if (!a || a->domain.empty() || a->local.empty()) return bad("entry", text, a ? "not an address" : a.error().text);
    if (a->domain.front() == '[') return bad("entry", text, "domain literals are not supported");
    if (!is_valid_domain(a->domain)) return bad("entry", text, "not a domain after '@'");
    e.kind = WlKind::address;
    e.value = normalize_address(strip_sender_tags(*a));
    return e;
}

Result<WlEntry> parse_wl_recipient(std::string_view text) {
    std::string_view t = trim(text);
    auto a = parse_addr_spec(t);
    if (!a || a->domain.empty() || a->local.empty() || has_control(t) || !is_valid_domain(a->domain) ||
        a->domain.front() == '[')
        return bad("recipient", text, a ? "not an address" : a.error().text);
    WlEntry e;
    e.kind = WlKind::recipient;
    e.value = normalize_address(*a);
    return e;
}

Result<std::string> parse_wl_scope(std::string_view text) {
    std::string_view t = trim(text);
    if (t.empty()) return bad("scope", text, "empty");
    if (t.find('@') == std::string_view::npos || t.front() == '@') {
        if (t.front() == '@') t.remove_prefix(1);
        if (!is_valid_domain(t) || t.front() == '[') return bad("scope", text, "not a domain or address");
        return normalize_domain(t);
    }
    auto a = parse_addr_spec(t);
    if (!a || a->local.empty() || has_control(t)) return bad("scope", text, "not a domain or address");
    return normalize_address(*a);
}

std::string wl_entry_text(const WlEntry& e) {
    switch (e.kind) {
    case WlKind::address: return e.value;
    case WlKind::domain: return "@" + e.value;
    case WlKind::subdomains: return "." + e.value;
    case WlKind::recipient: return "rcpt:" + e.value;
    }
    return e.value;
}

std::string wl_outgoing_scope(std::string_view sender, const std::vector<std::string>& domains) {
    auto a = parse_addr_spec(sender);
    if (!a || a->local.empty() || a->domain.empty()) return {};
    std::string d = normalize_domain(a->domain);
    if (std::find(domains.begin(), domains.end(), d) == domains.end()) return {};
    return normalize_address(*a);
}

std::vector<WlEntry> wl_outgoing_entries(const std::vector<std::string>& rcpts, std::string_view scope,
                                         std::int64_t now) {
    std::vector<WlEntry> out;
    for (const auto& r : rcpts) {
        // parse_wl_entry refuses address literals: a host named by its IP address vouches for nobody, and
        // whitelisting user@[192.0.2.1] would let in anyone who claims it.
        auto e = parse_wl_entry(r);
        if (!e || e->kind != WlKind::address) continue;
        e->scope = std::string(scope);
        e->source = "outgoing";
        e->created = now;
        if (std::none_of(out.begin(), out.end(), [&](const WlEntry& x) { return x.value == e->value; }))
            out.push_back(std::move(*e));
    }
    return out;
}

Result<std::optional<WlEntry>> wl_match(Store& store, std::string_view sender, std::string_view recipient) {
    std::vector<std::string> values;
    std::string sender_addr, sender_domain;
    if (!sender.empty()) {
        auto a = parse_addr_spec(sender);
        // An address literal is no sender anyone can vouch for: never whitelisted (older stores may hold
        // entries for one).
        if (a && !a->domain.empty() && a->domain.front() != '[') {
            Address s = strip_sender_tags(*a);
            sender_addr = normalize_address(s);
            values.push_back(sender_addr);
            sender_domain = normalize_domain(s.domain);
            // sender_domain and each parent, for domain and subdomain entries
            for (std::string_view d = sender_domain; !d.empty();) {
                values.emplace_back(d);
                auto dot = d.find('.');
                if (dot == std::string_view::npos) break;
                d.remove_prefix(dot + 1);
            }
        }
    }
    std::vector<std::string> scopes{""};
    std::string rcpt;
    if (!recipient.empty()) {
        auto r = parse_addr_spec(recipient);
        if (r && !r->domain.empty()) {
            rcpt = normalize_address(*r);
            values.push_back(rcpt);
            scopes.push_back(rcpt);
            scopes.push_back(normalize_domain(r->domain));
        }
    }
    if (values.empty()) return std::optional<WlEntry>{};
    std::sort(values.begin(), values.end());
    values.erase(std::unique(values.begin(), values.end()), values.end());
    auto found = store.wl_lookup(values, scopes);
    if (!found) return found.error();

    // Rank: kind first (address, recipient, domain, subdomains by length), then scope.
    auto rank = [&](const WlEntry& e) -> long {
        long kind_rank;
        switch (e.kind) {
        case WlKind::address: kind_rank = 4000; break;
        case WlKind::recipient: kind_rank = 3000; break;
        case WlKind::domain: kind_rank = 2000; break;
        default: kind_rank = 1000 + static_cast<long>(e.value.size()); break;
        }
        long scope_rank = e.scope.empty() ? 0 : (e.scope.find('@') != std::string::npos ? 2 : 1);
        return kind_rank * 4 + scope_rank;
    };
    std::optional<WlEntry> best;
    for (const auto& e : *found) {
        bool applies = false;
        switch (e.kind) {
        case WlKind::address: applies = !sender_addr.empty() && e.value == sender_addr; break;
        case WlKind::domain: applies = !sender_domain.empty() && e.value == sender_domain; break;
        case WlKind::subdomains: applies = !sender_domain.empty(); break;  // looked up by suffix only
        case WlKind::recipient: applies = !rcpt.empty() && e.value == rcpt && e.scope.empty(); break;
        }
        if (applies && (!best || rank(e) > rank(*best))) best = e;
    }
    return best;
}

Result<WlImportCounts> wl_import(Store& store, std::istream& in, WlFormat format, std::int64_t now) {
    WlImportCounts counts;
    auto r = store.transaction([&]() -> Result<void> {
        std::string line;
        std::int64_t lineno = 0;
        for (;;) {
            ++lineno;
            auto got = read_line(in, line, lineno);
            if (!got) return got.error();
            if (!*got) break;
            std::string_view l = trim(line);
            if (l.empty() || l.front() == '#') continue;
            ++counts.lines;
            WlEntry e;
            if (format == WlFormat::lines) {
                auto sp = l.find_first_of(" \t");
                std::string_view entry = l.substr(0, sp);
                std::string_view scope = sp == std::string_view::npos ? std::string_view() : trim(l.substr(sp));
                // An "auth=REQUIREMENT" word ends the line when the entry's requirement is not auto.
                std::string_view auth_word;
                if (auto last = scope.find_last_of(" \t");
                    scope.substr(last == std::string_view::npos ? 0 : last + 1).substr(0, 5) == "auth=") {
                    auth_word = scope.substr(last == std::string_view::npos ? 0 : last + 1);
                    scope = last == std::string_view::npos ? std::string_view() : trim(scope.substr(0, last));
                }
                auto p = entry.substr(0, 5) == "rcpt:" ? parse_wl_recipient(entry.substr(5)) : parse_wl_entry(entry);
                if (!p) return at_line(lineno, p.error());
                e = *p;
                if (!scope.empty()) {
                    if (e.kind == WlKind::recipient)
                        return at_line(lineno, bad("entry", l, "a recipient entry takes no scope"));
                    auto s = parse_wl_scope(scope);
                    if (!s) return at_line(lineno, s.error());
                    e.scope = *s;
                }
                if (!auth_word.empty()) {
                    auto a = parse_wl_auth(auth_word.substr(5));
                    if (!a) return at_line(lineno, bad("auth", auth_word, "not auto, spf, dkim, dmarc or none"));
                    e.auth = *a;
                }
                e.source = "import";
            } else {
                auto f = csv_split(l);
                if (!f || f->size() < 1 || f->size() > 9) return at_line(lineno, bad("record", l, "malformed CSV"));
                f->resize(9);
                auto& v = *f;
                if (counts.lines == 1 && v[0] == "entry" && v[1] == "kind") {  // the header record
                    --counts.lines;
                    continue;
                }
                Result<WlEntry> p = Error{};
                if (v[1].empty()) {
                    p = v[0].substr(0, 5) == "rcpt:" ? parse_wl_recipient(std::string_view(v[0]).substr(5))
                                                      : parse_wl_entry(v[0]);
                } else {
                    auto k = parse_wl_kind(v[1]);
                    if (!k) return at_line(lineno, bad("kind", v[1], "not address, domain, subdomains or recipient"));
                    p = parse_of_kind(*k, v[0]);
                }
                if (!p) return at_line(lineno, p.error());
                e = *p;
                if (!v[2].empty()) {
                    if (e.kind == WlKind::recipient)
                        return at_line(lineno, bad("entry", v[0], "a recipient entry takes no scope"));
                    auto s = parse_wl_scope(v[2]);
                    if (!s) return at_line(lineno, s.error());
                    e.scope = *s;
                }
                if (has_control(v[3]) || v[3].size() > limits::note_length)
                    return at_line(lineno, bad("note", v[3], "control characters or too long"));
                e.note = v[3];
                e.source = v[4].empty() ? "import" : v[4];
                if (has_control(e.source) || e.source.size() > 32)
                    return at_line(lineno, bad("source", v[4], "not a source name"));
                auto created = v[5].empty() ? std::optional<std::int64_t>(now) : parse_time(v[5]);
                auto hits = parse_count(v[6]);
                auto last = v[7].empty() ? std::optional<std::int64_t>(0) : parse_time(v[7]);
                if (!created) return at_line(lineno, bad("created", v[5], "not a time"));
                if (!hits) return at_line(lineno, bad("hits", v[6], "not a count"));
                if (!last) return at_line(lineno, bad("last_hit", v[7], "not a time"));
                e.created = *created;
                e.hits = *hits;
                e.last_hit = *last;
                if (!v[8].empty()) {
                    auto a = parse_wl_auth(v[8]);
                    if (!a) return at_line(lineno, bad("auth", v[8], "not auto, spf, dkim, dmarc or none"));
                    e.auth = *a;
                }
            }
            if (e.created == 0) e.created = now;
            auto ins = store.wl_insert(e);
            if (!ins) return ins.error();
            ++(*ins ? counts.added : counts.existing);
        }
        return {};
    });
    if (!r) return r.error();
    return counts;
}

Result<void> wl_export(Store& store, std::ostream& out, WlFormat format) {
    if (format == WlFormat::csv) out << "entry,kind,scope,note,source,created,hits,last_hit,auth\n";
    auto r = store.wl_each([&](const WlEntry& e) {
        if (format == WlFormat::lines) {
            out << wl_entry_text(e);
            if (!e.scope.empty()) out << ' ' << e.scope;
            if (e.auth != WlAuth::automatic) out << " auth=" << to_string(e.auth);
            out << '\n';
        } else {
            std::string entry = e.kind == WlKind::recipient ? e.value : wl_entry_text(e);
            out << csv_field(entry) << ',' << to_string(e.kind) << ',' << csv_field(e.scope) << ','
                << csv_field(e.note) << ',' << csv_field(e.source) << ',' << format_time(e.created) << ','
                << e.hits << ',' << format_time(e.last_hit) << ',' << to_string(e.auth) << '\n';
        }
    });
    if (!r) return r;
    out.flush();
    if (!out) return Error{ErrorKind::tempfail, "write error"};
    return {};
}

Result<void> wl_list_json(Store& store, std::ostream& out) {
    bool first = true;
    out << '[';
    auto r = store.wl_each([&](const WlEntry& e) {
        out << (first ? "\n" : ",\n") << "  {\"entry\":" << json_string(wl_entry_text(e))
            << ",\"kind\":" << json_string(to_string(e.kind)) << ",\"value\":" << json_string(e.value)
            << ",\"scope\":" << json_string(e.scope) << ",\"created\":" << json_string(format_time(e.created))
            << ",\"hits\":" << e.hits << ",\"last_hit\":"
            << (e.last_hit ? json_string(format_time(e.last_hit)) : std::string("null"))
            << ",\"note\":" << json_string(e.note) << ",\"source\":" << json_string(e.source)
            << ",\"auth\":" << json_string(to_string(e.auth)) << '}';
        first = false;
    });
    if (!r) return r;
    out << (first ? "]\n" : "\n]\n");
    out.flush();
    if (!out) return Error{ErrorKind::tempfail, "write error"};
    return {};
}

Result<void> wl_list_text(Store& store, std::ostream& out) {
    out << "ENTRY\tKIND\tSCOPE\tCREATED\tHITS\tLAST-HIT\tSOURCE\tAUTH\tNOTE\n";
    auto r = store.wl_each([&](const WlEntry& e) {
        out << wl_entry_text(e) << '\t' << to_string(e.kind) << '\t' << (e.scope.empty() ? "*" : e.scope) << '\t'
            << format_time(e.created) << '\t' << e.hits << '\t'
            << (e.last_hit ? format_time(e.last_hit) : std::string("-")) << '\t' << e.source << '\t'
            << to_string(e.auth) << '\t' << e.note
            << '\n';
    });
    if (!r) return r;
    out.flush();
    if (!out) return Error{ErrorKind::tempfail, "write error"};
    return {};
}

std::optional<std::vector<std::string>> csv_split(std::string_view line) {
    std::vector<std::string> out;
    std::string cur;
    std::size_t i = 0;
    for (;;) {
        cur.clear();
        if (i < line.size() && line[i] == '"') {
            ++i;
            for (;;) {
                if (i >= line.size()) return std::nullopt;
                if (line[i] == '"') {
                    if (i + 1 < line.size() && line[i + 1] == '"') {
                        cur.push_back('"');
                        i += 2;
                        continue;
                    }
                    ++i;
                    break;
                }
                cur.push_back(line[i++]);
            }
            if (i < line.size() && line[i] != ',') return std::nullopt;
        } else {
            while (i < line.size() && line[i] != ',') {
                if (line[i] == '"') return std::nullopt;
                cur.push_back(line[i++]);
            }
        }
        out.push_back(cur);
        if (i >= line.size()) break;
        ++i;  // the comma
    }
    return out;
}

std::string csv_field(std::string_view s) {
    if (s.find_first_of(",\"\r\n") == std::string_view::npos && (s.empty() || (s.front() != ' ' && s.back() != ' ')))
        return std::string(s);
    std::string out = "\"";
    for (char c : s) {
        if (c == '"') out.push_back('"');
        out.push_back(c);
    }
    out.push_back('"');
    return out;
}

std::string json_string(std::string_view s) {
    std::string out = "\"";
    for (char c : s) {
        auto u = static_cast<unsigned char>(c);
        switch (c) {
        case '"': out += "\\\""; break;
        case '\\': out += "\\\\"; break;
        case '\n': out += "\\n"; break;
        case '\r': out += "\\r"; break;
        case '\t': out += "\\t"; break;
        default:
            if (u < 0x20 || u == 0x7f) {
                static const char hex[] = "0123456789abcdef";
                out += "\\u00";
                out.push_back(hex[u >> 4]);
                out.push_back(hex[u & 15]);
            } else {
                out.push_back(c);
            }
        }
    }
    out.push_back('"');
    return out;
}

} // namespace mail
