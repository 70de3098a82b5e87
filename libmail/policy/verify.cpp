// Verdicts on incoming mail: see verify.hpp and mverify(1).
#include "libmail/policy/verify.hpp"

#include "libmail/mail/address.hpp"
#include "libmail/policy/hashcash.hpp"
#include "libmail/mail/message.hpp"
#include "libmail/policy/postage.hpp"
#include "libmail/policy/token.hpp"
#include "libmail/policy/token_issue.hpp"
#include "libmail/policy/whitelist.hpp"
#include "libmail/base/text.hpp"

#include <algorithm>
#include <set>

namespace mail {

char category_letter(Category c) {
    switch (c) {
    case Category::stamped: return 'G';
    case Category::questionable: return 'Q';
    case Category::whitelist: return 'W';
    case Category::information: return 'I';
    case Category::unknown: break;
    }
    return 'B';
}

std::string_view category_name(Category c) {
    switch (c) {
    case Category::stamped: return "Stamped";
    case Category::questionable: return "Questionable";
    case Category::whitelist: return "Whitelist";
    case Category::information: return "Information";
    case Category::unknown: break;
    }
    return "Unknown";
}

std::optional<Category> parse_category(std::string_view letter) {
    if (letter.size() != 1) return std::nullopt;
    for (Category c : {Category::stamped, Category::questionable, Category::whitelist, Category::unknown,
                       Category::information})
        if (category_letter(c) == (letter[0] & ~0x20)) return c;
    return std::nullopt;
}

namespace {

// The sender as written in an SMTP path or a bare address; "" for <>.
std::optional<std::string> sender_of(std::string_view text, const std::vector<std::string>& fwd) {
    auto a = parse_path(text);
    if (!a) return std::nullopt;
    if (a->empty()) return std::string();
    return normalize_address(strip_sender_tags(*a, fwd));
}

// "From addr date..." (mbox): the address, or nothing.
std::optional<std::string> mbox_sender(const std::string& line, const std::vector<std::string>& fwd) {
    if (line.rfind("From ", 0) != 0) return std::nullopt;
    std::size_t b = 5, e = line.find_first_of(" \t\r\n", b);
    std::string who = line.substr(b, e == std::string::npos ? std::string::npos : e - b);
    if (who == "MAILER-DAEMON") return std::string();
    return sender_of(who, fwd);
}

bool in_domains(const std::string& addr, const std::vector<std::string>& domains) {
    auto at = addr.rfind('@');
    if (at == std::string::npos) return false;
    std::string_view d = std::string_view(addr).substr(at + 1);
    for (const auto& p : domains)
        if (d == p) return true;
    return false;
}

} // namespace

Result<Envelope> envelope_of(const MessageReader& msg, const std::optional<std::string>& sender,
                             const std::vector<std::string>& rcpts, const std::vector<std::string>& domains,
                             const std::vector<std::string>& trusted_forwarders) {
    Envelope env;
    if (sender) {
        std::string s = *sender;
        if (s.empty() || s == "<>") {
            env.sender = std::string();
        } else {
            env.sender = sender_of(s, trusted_forwarders);
            if (!env.sender) return Error{ErrorKind::usage, "--sender '" + s + "': not an address"};
        }
    } else if (auto rp = msg.get("Return-Path")) {
        env.sender = sender_of(*rp, trusted_forwarders);  // a malformed Return-Path is no sender, not an error
    } else {
        env.sender = mbox_sender(msg.mbox_from(), trusted_forwarders);
    }

    std::set<std::string> seen;
    auto add = [&](const Address& a) {
        if (a.empty()) return;
        std::string n = normalize_address(a);
        if (seen.insert(n).second) env.rcpts.push_back(n);
    };
    if (!rcpts.empty()) {
        for (const auto& r : rcpts) {
            auto a = parse_path(r);
            if (!a || a->empty()) return Error{ErrorKind::usage, "--rcpt '" + r + "': not an address"};
            add(*a);
        }
    } else {
        for (const char* name : {"X-Original-To", "Delivered-To"}) {
            if (auto v = msg.get(name))
                if (auto a = parse_path(*v)) add(*a);
        }
        if (env.rcpts.empty()) {
            for (const char* name : {"To", "Cc"}) {
                for (const auto& value : msg.get_all(name)) {
                    auto list = parse_address_list(value);
                    if (!list) continue;  // a broken To is a sender's problem, not a reason to bounce
                    for (const auto& a : *list) {
                        if (a.empty()) continue;
                        if (domains.empty() || in_domains(normalize_address(a), domains)) add(a);
                    }
                }
            }
        }
    }
    if (env.rcpts.size() > limits::recipients)
        return Error{ErrorKind::data, "more than " + std::to_string(limits::recipients) + " recipients"};
    env.from = from_addresses(msg, trusted_forwarders);
    return env;
}

std::vector<std::string> from_addresses(const MessageReader& msg, const std::vector<std::string>& trusted_forwarders) {
    std::vector<std::string> from;
    for (const auto& value : msg.get_all("From")) {
        auto list = parse_address_list(value);
        if (!list) continue;
        for (const auto& a : *list)
            if (!a.empty() && from.size() < limits::from_addresses)
                from.push_back(normalize_address(strip_sender_tags(a, trusted_forwarders)));
    }
    return from;
}

bool has_postage(const MessageReader& msg) {
    for (const auto& f : msg.fields())
        if (f.is("X-Hashcash") || f.is("Hashcash") || f.is("Mailstamp-Postage")) return true;
    return false;
}

namespace {

// What makes a message itself (not its envelope): its Message-ID and body.
std::string message_key(const MessageReader& msg, std::string_view body_hash) {
    std::string id = msg.get("Message-ID").value_or("");
    std::string key;
    for (char c : id)
        if (static_cast<unsigned char>(c) > ' ' && c != 0x7f) key += c;
    return key + "|" + hex_encode(body_hash);
}

void check_hashcash_stamps(SpendLookup& spend, const MessageReader& msg, const Envelope& env, const std::string& key,
                           const PostagePolicy& policy, std::int64_t now, Verdict& v, std::vector<Error>& errors) {
    HashcashCheck worst = HashcashCheck::malformed;
    bool any = false, spent = false;
    for (const auto& f : msg.fields()) {
        if (!f.is("X-Hashcash") && !f.is("Hashcash")) continue;
        std::string text = f.value();
        any = true;
        for (const auto& r : env.rcpts) {
            HashcashCheck c = check_hashcash(text, r, policy.min_bits, now);
            if (c != HashcashCheck::ok) {
                // Remember the most telling failure: a stamp for us beats a malformed one.
                if (worst == HashcashCheck::malformed || c != HashcashCheck::wrong_resource) worst = c;
                continue;
            }
            auto stamp = parse_hashcash(text);
            SpendRecord rec{text, key, now, stamp->time + hashcash_validity + hashcash_grace};
            auto s = spend.spend(rec);
            if (!s) {
                errors.push_back(s.error());
                return;
            }
            if (*s == SpendState::other_message) {
                spent = true;
                continue;
            }
            // Housekeeping in proportion to new records: drop the worthless ones.
            if (*s == SpendState::fresh) spend.expire(now);
            v.hashcash = "pass";
            v.hashcash_why = std::to_string(hashcash_value(text)) + " bits for " + r;
            return;
        }
    }
    if (!any) return;
    v.hashcash = "fail";
    v.hashcash_why = spent ? std::string("spent on another message") : std::string(to_string(worst));
}

void check_signed_postage(SpendLookup& spend, const MessageReader& msg, const Envelope& env, std::string_view body_hash,
                          const std::string& key, const PostagePolicy& policy, std::int64_t now, Verdict& v,
                          std::vector<Error>& errors) {
    std::string msgid = msg.get("Message-ID").value_or("");
    std::vector<std::string_view> raw;
    for (const auto& f : msg.fields()) raw.push_back(f.raw);
    std::string header_hash = postage_header_hash(raw);
    bool any = false, unreachable = false;
    std::optional<std::string> old_version;  // a version 1 stamp that checked out: Questionable at best
    std::string why;
    for (const auto& f : msg.fields()) {
        if (!f.is("Mailstamp-Postage")) continue;
        any = true;
        auto s = parse_postage(f.value());
        if (!s) {
            if (why.empty()) why = "malformed";
            continue;
        }
        if (std::find(env.rcpts.begin(), env.rcpts.end(), s->recipient) == env.rcpts.end()) {
            if (why.empty()) why = std::string(to_string(PostageCheck::wrong_recipient));
            continue;
        }
        PostageCheck c = check_postage(*s, s->recipient, msgid, body_hash, header_hash, policy.authority_keys, now);
        if (c != PostageCheck::ok) {
            why = std::string(to_string(c));
            continue;
        }
        SpendRecord rec{s->spend_key(), key, now, s->date + postage_validity + postage_grace};
        auto local = spend.spend(rec);
        if (!local) {
            errors.push_back(local.error());
            return;
        }
        if (*local == SpendState::other_message) {
            why = "spent on another message";
            continue;
        }
        if (*local == SpendState::fresh) spend.expire(now);
        if (policy.remote_spend) {
            auto remote = policy.remote_spend(*s);
            if (!remote) {
                unreachable = true;
                // An answer not signed for this request counts no more than no answer: Questionable.
                why = remote.error().kind == ErrorKind::data ? "authority's answer not trusted" : "authority unreachable";
                continue;
            }
            if (*remote == SpendState::other_message) {
                why = "spent on another message, says the authority";
                continue;
            }
        }
        std::string which = "book " + s->book.id_hex().substr(0, 12) + " stamp " + std::to_string(s->index) +
                            " for " + s->recipient;
        if (s->version == 1) {
            // Version 1 signs neither Subject nor From: its header may have been rewritten.
            if (!old_version) old_version = "version 1 stamp: header fields not signed; " + which;
            continue;
        }
        v.postage = "pass";
        v.postage_why = which;
        return;
    }
    if (!any) return;
    if (old_version && !unreachable) {
        v.postage = "policy";
        v.postage_why = *old_version;
        return;
    }
    v.postage = unreachable ? "temperror" : "fail";
    v.postage_why = why;
}

} // namespace

Result<void> check_stamps(SpendLookup& spend, const MessageReader& msg, const Envelope& env, std::string_view body_hash,
                          const PostagePolicy& policy, std::int64_t now, Verdict& v) {
    std::string key = message_key(msg, body_hash);
    std::vector<Error> errors;
    v.hashcash = v.postage = "none";
    check_signed_postage(spend, msg, env, body_hash, key, policy, now, v, errors);
    if (errors.empty() && v.postage != "pass") check_hashcash_stamps(spend, msg, env, key, policy, now, v, errors);
    if (!errors.empty()) return errors.front();
    if (v.postage == "pass" || v.hashcash == "pass") {
        v.category = Category::stamped;
        v.reason = v.postage == "pass" ? "signed postage: " + v.postage_why : "hashcash: " + v.hashcash_why;
    } else if (v.postage == "temperror") {
        v.category = Category::questionable;
        v.reason = "postage not checked: " + v.postage_why;
    } else if (v.postage == "policy") {
        v.category = Category::questionable;
        v.reason = "postage not fully checked: " + v.postage_why;
    }
    return {};
}

std::size_t strip_verdicts(MessageReader& msg, std::string_view authserv_id) {
    auto& fields = msg.fields();
    std::size_t before = fields.size();
    std::erase_if(fields, [&](const HeaderField& f) {
        std::string_view name = f.name();
        if (name.size() > 12 && istarts_with(name, "X-Mailstamp-")) return true;
        if (!f.is("Authentication-Results")) return false;
        std::string v = f.value();
        // authserv-id is the first token, before any version or ';' (RFC 8601 §2.2); comments may precede it.
        std::size_t i = 0;
        while (i < v.size()) {
            if (v[i] == ' ' || v[i] == '\t') {
                ++i;
            } else if (v[i] == '(') {
                int depth = 0;
                for (; i < v.size(); ++i) {
                    if (v[i] == '\\' && i + 1 < v.size()) {
                        ++i;  // a quoted-pair: the next octet is not a parenthesis
                        continue;
                    }
                    if (v[i] == '(') ++depth;
                    if (v[i] == ')' && --depth == 0) { ++i; break; }
                }
            } else {
                break;
            }
        }
        i = std::min(i, v.size());
        std::size_t e = v.find_first_of(" \t;(", i);
        return iequals(std::string_view(v).substr(i, e == std::string::npos ? std::string::npos : e - i), authserv_id);
    });
    return before - fields.size();
}

void add_verdict_fields(MessageReader& msg, const Verdict& v, std::string_view authserv_id) {
    std::string id(authserv_id);
    auto result = [](std::string_view method, const std::string& r, const std::string& why) {
        std::string s = std::string(method) + "=" + (r.empty() ? "none" : r);
        if (!why.empty()) {
            // The reason may quote an address from the message: keep the RFC 8601 comment balanced.
            std::string c;
            for (char ch : why) c += (ch == '(' || ch == ')' || ch == '\\') ? '_' : ch;
            s += " (" + c + ")";
        }
        return s;
    };
    std::string ar = id;
    // The sender authentication results first (RFC 8601 §2.2: one resinfo per method), then the postage ones.
    // They come from auth::Results::method_results(), already one RFC 8601 resinfo each; control characters
    // are replaced so that a value from the message cannot end the field.
    for (const auto& m : v.auth_results) {
        std::string clean;
        for (char ch : m) clean += (static_cast<unsigned char>(ch) < ' ' || ch == 0x7f || ch == ';') ? ' ' : ch;
        ar += "; " + clean;
    }
    ar += "; " + result("x-mailstamp-hashcash", v.hashcash, v.hashcash_why) + "; " +
          result("x-mailstamp-postage", v.postage, v.postage_why);
    msg.prepend("Authentication-Results", ar);
    msg.prepend("X-Mailstamp-Class", std::string(1, category_letter(v.category)) + " (" +
                                         std::string(category_name(v.category)) + ": " + v.reason + ") by " + id);
}

} // namespace mail
