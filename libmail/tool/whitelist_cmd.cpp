// mwhitelist's commands: see mwhitelist(1).
#include "libmail/tool/whitelist_cmd.hpp"

#include "libmail/mail/address.hpp"
#include "libmail/base/clock.hpp"
#include "libmail/base/limits.hpp"
#include "libmail/mail/message.hpp"
#include "libmail/app/settings.hpp"
#include "libmail/policy/whitelist.hpp"

#include <fstream>
#include <iostream>

namespace mail {

namespace {

// The addresses of an outgoing message on in (headers only are read).
struct MessageAddresses {
    std::vector<std::string> rcpts;  ///< every To, Cc and Bcc address
    std::string from;                ///< the first From address; "" when there is none
};

Result<MessageAddresses> message_addresses(std::istream& in) {
    MessageReader reader(in);
    if (auto r = reader.read_header(); !r) return r.error();
    MessageAddresses out;
    for (const char* name : {"To", "Cc", "Bcc"}) {
        for (const auto& value : reader.get_all(name)) {
            auto list = parse_address_list(value);
            if (!list) return Error{ErrorKind::data, std::string(name) + ": " + list.error().text};
            for (const auto& a : *list) out.rcpts.push_back(a.addr_spec());
        }
    }
    if (out.rcpts.empty()) return Error{ErrorKind::data, "message has no To, Cc or Bcc addresses"};
    if (auto from = reader.get("From")) {
        auto list = parse_address_list(*from);
        if (list && !list->empty()) out.from = list->front().addr_spec();
    }
    return out;
}

// The --for option, normalised; refused together with --recipient.
Result<std::string> scope_option(const WhitelistOptions& opt) {
    if (opt.scope.empty()) return std::string();
    if (opt.recipient) return Error{ErrorKind::usage, "--for does not apply to --recipient entries"};
    auto s = parse_wl_scope(opt.scope);
    if (!s) return Error{ErrorKind::usage, s.error().text};
    return *s;
}

// One command-line entry: a recipient with --recipient or rcpt:, else a sender entry.
Result<WlEntry> entry_argument(const std::string& a, bool recipient, const std::string& scope) {
    bool prefixed = a.rfind("rcpt:", 0) == 0;
    if (!recipient && !prefixed) {
        auto e = parse_wl_entry(a);
        if (e) e->scope = scope;
        return e;
    }
    if (!scope.empty()) return Error{ErrorKind::usage, "--for does not apply to recipient entries"};
    return parse_wl_recipient(prefixed ? a.substr(5) : a);
}

Result<void> cmd_add(Context& ctx, Store& store, const WhitelistOptions& opt, std::istream& in, std::ostream& out) {
    if (opt.note.size() > limits::note_length) return Error{ErrorKind::usage, "--note is too long"};
    for (char c : opt.note)
        if (static_cast<unsigned char>(c) < 0x20) return Error{ErrorKind::usage, "--note has control characters"};
    auto scope = scope_option(opt);
    if (!scope) return scope.error();
    auto auth = parse_wl_auth(opt.auth);
    if (!auth) return Error{ErrorKind::usage, "--auth must be auto, spf, dkim, dmarc or none"};
    // Parse everything first: a malformed entry leaves nothing half-written.
    std::vector<WlEntry> entries;
    std::int64_t t = now();
    if (opt.from_message) {
        if (opt.recipient || !opt.args.empty())
            return Error{ErrorKind::usage, "--from-message takes no entries and no --recipient"};
        auto m = message_addresses(in);
        if (!m) return m.error();
        // The people one writes to may write back to the writer, not to everybody: scoped to the From
        // address when it is ours, unless --for says otherwise.
        if (scope->empty()) {
            auto domains = store.domain_list();
            if (!domains) return domains.error();
            *scope = wl_outgoing_scope(m->from, *domains);
        }
        entries = wl_outgoing_entries(m->rcpts, *scope, t);
        if (entries.empty()) return Error{ErrorKind::data, "message has no To, Cc or Bcc address to whitelist"};
        for (auto& e : entries) {
            e.note = opt.note;
            e.auth = *auth;
        }
    } else {
        if (opt.args.empty()) return Error{ErrorKind::usage, "no entries given"};
        for (const auto& a : opt.args) {
            auto e = entry_argument(a, opt.recipient, *scope);
            if (!e) return e.error();
            e->note = opt.note;
            e->auth = *auth;
            e->source = "manual";
            e->created = t;
            entries.push_back(*e);
        }
    }
    std::vector<std::string> lines;
    auto r = store.transaction([&]() -> Result<void> {
        for (const auto& e : entries) {
            auto ins = store.wl_insert(e);
            if (!ins) return ins.error();
            lines.push_back(std::string(*ins ? "added " : "exists ") + wl_entry_text(e) +
                            (e.scope.empty() ? "" : " for " + e.scope) +
                            (*ins && e.auth != WlAuth::automatic && e.kind != WlKind::recipient
                                 ? " auth " + std::string(to_string(e.auth))
                                 : ""));
        }
        return {};
    });
    if (!r) return r;
    for (const auto& l : lines) {
        out << l << '\n';
        ctx.log_event("whitelist_add", {{"entry", l}});
    }
    return {};
}

Result<int> cmd_remove(Context& ctx, Store& store, const WhitelistOptions& opt, std::ostream& out, std::ostream& err) {
    auto scope = scope_option(opt);
    if (!scope) return scope.error();
    std::vector<WlEntry> entries;
    for (const auto& a : opt.args) {
        auto e = entry_argument(a, opt.recipient, *scope);
        if (!e) return e.error();
        entries.push_back(*e);
    }
    int missing = 0;
    std::vector<std::pair<bool, std::string>> lines;
    auto r = store.transaction([&]() -> Result<void> {
        for (const auto& e : entries) {
            auto rm = store.wl_remove(e.kind, e.value, e.scope);
            if (!rm) return rm.error();
            lines.emplace_back(*rm, wl_entry_text(e) + (e.scope.empty() ? "" : " for " + e.scope));
        }
        return {};
    });
    if (!r) return r.error();
    for (const auto& [removed, text] : lines) {
        if (removed) {
            out << "removed " << text << '\n';
            ctx.log_event("whitelist_remove", {{"entry", text}});
        } else {
            err << "mwhitelist: remove: " << text << ": no such entry\n";
            ++missing;
        }
    }
    return missing ? ex_no : ex_ok;
}

Result<int> cmd_check(const Context& ctx, Store& store, const WhitelistOptions& opt, std::ostream& out) {
    auto s = parse_addr_spec(opt.sender);
    if (!s && opt.sender != "<>") return Error{ErrorKind::usage, "sender '" + opt.sender + "': " + s.error().text};
    if (!opt.rcpt.empty()) {
        auto r = parse_addr_spec(opt.rcpt);
        if (!r || r->domain.empty()) return Error{ErrorKind::usage, "recipient '" + opt.rcpt + "': not an address"};
    }
    auto fwd = resolve_trusted_forwarders(ctx, opt.trusted_forwarders);
    if (!fwd) return fwd.error();
    std::string sender;
    if (s && !s->domain.empty()) sender = normalize_address(strip_sender_tags(*s, *fwd));
    auto m = wl_match(store, sender, opt.rcpt);
    if (!m) return m.error();
    if (!m->has_value()) return ex_no;
    const WlEntry& e = **m;
    out << wl_entry_text(e) << '\t' << to_string(e.kind) << '\t' << (e.scope.empty() ? "*" : e.scope) << '\n';
    return ex_ok;
}

Result<WlFormat> format_of(const std::string& f) {
    if (f == "lines") return WlFormat::lines;
    if (f == "csv") return WlFormat::csv;
    return Error{ErrorKind::usage, "--format must be lines or csv"};
}

Result<int> cmd_domain(Context& ctx, Store& store, const WhitelistOptions& opt, std::ostream& out,
                       std::ostream& err) {
    if (opt.command == "domain-list") {
        auto l = store.domain_list();
        if (!l) return l.error();
        for (const auto& d : *l) out << d << '\n';
        return ex_ok;
    }
    std::vector<std::string> domains;
    for (const auto& a : opt.args) {
        std::string_view d = a;
        if (!d.empty() && d.front() == '@') d.remove_prefix(1);
        if (!is_valid_domain(d) || d.empty() || d.front() == '[')
            return Error{ErrorKind::data, "domain '" + a + "': not a domain"};
        domains.push_back(normalize_domain(d));
    }
    std::vector<std::string> lines, missing;
    auto r = store.transaction([&]() -> Result<void> {
        for (const auto& d : domains) {
            if (opt.command == "domain-add") {
                auto added = store.domain_add(d, now());
                if (!added) return added.error();
                lines.push_back((*added ? "added " : "exists ") + d);
            } else {
                auto removed = store.domain_remove(d);
                if (!removed) return removed.error();
                if (*removed) lines.push_back("removed " + d);
                else missing.push_back(d);
            }
        }
        return {};
    });
    if (!r) return r.error();
    for (const auto& l : lines) {
        out << l << '\n';
        ctx.log_event("domain", {{"change", l}});
    }
    for (const auto& d : missing) err << ctx.program << ": domain remove: " << d << ": not protected\n";
    return missing.empty() ? ex_ok : ex_no;
}

Result<int> dispatch(Context& ctx, const WhitelistOptions& opt, std::istream& in, std::ostream& out, std::ostream& err) {
    auto store = ctx.open_store(store_use(opt.command, {"add", "import", "domain-add"}));
    if (!store) return store.error();
    Store& s = **store;
    const std::string& c = opt.command;
    if (c == "add") {
        auto r = cmd_add(ctx, s, opt, in, out);
        if (!r) return r.error();
    } else if (c == "remove") {
        return cmd_remove(ctx, s, opt, out, err);
    } else if (c == "check") {
        return cmd_check(ctx, s, opt, out);
    } else if (c == "list") {
        auto r = opt.json ? wl_list_json(s, out) : wl_list_text(s, out);
        if (!r) return r.error();
    } else if (c == "import") {
        auto f = format_of(opt.format);
        if (!f) return f.error();
        std::ifstream file;
        std::istream* src = &in;
        if (!opt.file.empty() && opt.file != "-") {
            file.open(opt.file, std::ios::binary);
            if (!file) return Error{ErrorKind::noinput, opt.file + ": cannot open"};
            src = &file;
        }
        auto n = wl_import(s, *src, *f, now());
        if (!n) return n.error();
        out << "added " << n->added << ", existing " << n->existing << '\n';
        ctx.log_event("whitelist_import", {{"added", std::to_string(n->added)},
                                           {"existing", std::to_string(n->existing)}});
    } else if (c == "export") {
        auto f = format_of(opt.format);
        if (!f) return f.error();
        auto r = wl_export(s, out, *f);
        if (!r) return r.error();
    } else if (c == "stats") {
        auto st = s.wl_stats();
        if (!st) return st.error();
        out << "entries " << st->total << "\nhits " << st->hits << "\nprotected-domains " << st->domains << '\n';
        for (const auto& [k, n] : st->by_kind) out << "kind." << k << ' ' << n << '\n';
        for (const auto& [k, n] : st->by_source) out << "source." << k << ' ' << n << '\n';
    } else {
        return cmd_domain(ctx, s, opt, out, err);
    }
    return ex_ok;
}

} // namespace

int run_whitelist(Context& ctx, const WhitelistOptions& opt, std::istream& in, std::ostream& out, std::ostream& err) {
    auto r = dispatch(ctx, opt, in, out, err);
    out.flush();
    if (!r) return report(ctx.program, opt.command, r.error());
    if (!out) return report(ctx.program, opt.command, Error{ErrorKind::tempfail, "write error on stdout"});
    return *r;
}

} // namespace mail
