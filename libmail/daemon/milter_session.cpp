// mmilter's sessions: see milter_session.hpp and mmilter(8).
#include "libmail/daemon/milter_session.hpp"

#include "libmail/app/context.hpp"
#include "libmail/base/clock.hpp"
#include "libmail/base/limits.hpp"
#include "libmail/mail/address.hpp"
#include "libmail/io/net.hpp"
#include "libmail/mail/message.hpp"
#include "libmail/store/store.hpp"

#include <algorithm>
#include <map>
#include <set>
#include <sstream>

namespace mail {

namespace {

std::string first_line(const SmtpReply& r) {
    return std::to_string(r.code) + " " + (r.lines.empty() ? std::string() : r.lines.front());
}

bool reject_mode(const ProxyPolicy& p) {
    return p.unknown == UnknownMode::reject || p.unknown == UnknownMode::token_postage;
}

// A header value as the MTA hands it, folds made CRLF (Sendmail and Postfix give them as bare LF).
std::string crlf(std::string_view v) {
    std::string o;
    o.reserve(v.size());
    for (std::size_t i = 0; i < v.size(); ++i) {
        if (v[i] == '\n' && (i == 0 || v[i - 1] != '\r')) o += '\r';
        o += v[i];
    }
    return o;
}

} // namespace

MilterReply MilterReply::of(const SmtpReply& r) {
    MilterReply m;
    m.reply = r;
    m.action = r.code / 100 == 2 || r.code / 100 == 3 ? Action::cont
               : r.code / 100 == 4                    ? Action::tempfail
                                                      : Action::reject;
    return m;
}

MilterSession::MilterSession(const ProxyPolicy& policy, Context& ctx, Store& store)
    : p_(policy), ctx_(ctx), store_(store),
      lookups_(store, policy.delimiter,
               [this](std::int64_t id, std::int64_t t) {
                   if (p_.hits) {
                       p_.hits->add(id, t);
                       p_.hits->flush(store_, t);
                   } else {
                       (void)store_.wl_hit(id, t);  // a statistic
                   }
               }),
      look_(lookups_.lookups()), gate_policy_(gate_policy_of(policy, false)), gate_(gate_policy_, look_),
      no_dns_(policy.resolver ? nullptr : no_answers_resolver()),
      auth_(policy.resolver ? *policy.resolver : *no_dns_,
            [this](std::string_view event, std::string_view identity, std::string_view detail) {
                ctx_.logger().log(event == "forged" ? Level::notice : Level::info, event,
                                  {{"client", client_}, {"helo", helo_}, {"sender", facts_.sender.value_or("")},
                                   {"identity", identity}, {"results", detail}});
            }) {
    look_.auth = &auth_;
}

void MilterSession::reset() {
    // A store error leaves a reservation to expire (limits::token_reservation).
    for (const auto& id : holds_) lookups_.release(id, facts_.holder);
    holds_.clear();
    claimed_.clear();
    taken_.clear();
    have_sender_ = false;
    relayed_ = 0;
    facts_.sender.reset();
    facts_.sender_match.clear();
    facts_.user.clear();
    rcpts_.clear();
    fields_.clear();
    data_.clear();
    auth_.reset();
}

void MilterSession::abort() { reset(); }

MilterReply MilterSession::connect(const std::string& addr, const std::string& port) {
    client_ = addr.empty() ? std::string() : addr + ":" + (port.empty() ? "0" : port);
    facts_.client = client_;
    return MilterReply::go();
}

MilterReply MilterSession::helo(const std::string& name) {
    helo_ = name.substr(0, 255);
    return MilterReply::go();
}

MilterReply MilterSession::mail(const std::string& path, const std::string& user) {
    reset();
    facts_.user = user;
    if (!set_sender(facts_, path, p_.trusted_forwarders))
        return MilterReply::of(SmtpReply(553, "5.1.7 bad sender address syntax"));
    Decision d = gate_.at_mail(facts_);
    if (d.outcome != Outcome::accept) {
        if (d.outcome == Outcome::refuse)
            ctx_.logger().notice("reject", {{"client", client_}, {"helo", helo_}, {"sender", *facts_.sender},
                                            {"user", user}, {"reason", d.reason}});
        return MilterReply::of(d.reply);
    }
    if (facts_.user.empty() && p_.spf && !client_.empty()) {
        // SPF for the MAIL FROM identity now (HELO's for the null sender): the RCPT decisions need it.
        auth::Client client{client_ip(client_), helo_};
        auth_.set_spf(auth::spf_at_mail(p_.resolver ? *p_.resolver : *no_dns_, client, *facts_.sender,
                                        p_.auth_settings));
    }
    auto holder = new_holder();
    if (!holder) return MilterReply::of(SmtpReply(451, "4.3.0 cannot answer now, try again later"));
    facts_.holder = *holder;
    have_sender_ = true;
    return MilterReply::go();
}

MilterReply MilterSession::refuse(const Decision& d, std::string_view rcpt) {
    ctx_.logger().notice("reject", {{"client", client_},
                                    {"helo", helo_},
                                    {"sender", facts_.sender.value_or("")},
                                    {"rcpt", rcpt},
                                    {"reason", d.reason},
                                    {"token", d.token},
                                    {"reply", first_line(d.reply)}});
    return MilterReply::of(d.reply);
}

std::string MilterSession::class_of(const Decision& d) const {
    if (d.outgoing) return "out";
    std::string k = d.outcome == Outcome::accept ? std::string(1, category_letter(d.category)) : std::string("?");
    if (d.outcome == Outcome::provisional && reject_mode(p_) && d.auth_pending) k += "a";
    if (!d.stamp_for.empty()) k += "$";
    return k;
}

MilterReply MilterSession::rcpt(const std::string& path) {
    if (!have_sender_) return MilterReply::of(SmtpReply(503, "5.5.1 need MAIL before RCPT"));
    auto a = parse_path(path);
    if (!a || a->empty() || a->domain.empty()) {
        Decision d;
        d.reason = "syntax";
        d.reply = SmtpReply(501, "5.1.3 bad recipient address syntax");
        return refuse(d, path);
    }
    std::string rcpt = normalize_address(*a);
    if (std::any_of(rcpts_.begin(), rcpts_.end(), [&](const Rcpt& o) { return o.d.rcpt == rcpt; }))
        return MilterReply::go();
    if (rcpts_.size() >= limits::recipients)
        return MilterReply::of(SmtpReply(452, "4.5.3 too many recipients"));
    if (facts_.user.empty()) {
        // Relaying is the MTA's to decide (it let this client write to another domain: mynetworks, a
        // permit_* rule): such a recipient is none of ours, taken with no decision and no edit. It does not
        // share a transaction with ours, whose verdict fields and refusals are not its business.
        auto domains = look_.site.domains();
        if (!domains) {
            ctx_.logger().err("store", {{"client", client_}, {"error", domains.error().text}});
            return MilterReply::of(SmtpReply(451, "4.3.0 cannot answer now, try again later"));
        }
        bool ours = std::find(domains->begin(), domains->end(), normalize_domain(a->domain)) != domains->end();
        if (!ours) {
            if (!rcpts_.empty()) return MilterReply::of(SmtpReply(452, "4.5.3 send this recipient in a transaction of its own"));
            ++relayed_;
            ctx_.logger().info("relayed", {{"client", client_}, {"sender", *facts_.sender}, {"rcpt", rcpt}});
            return MilterReply::go();
        }
        if (relayed_) return MilterReply::of(SmtpReply(452, "4.5.3 send this recipient in a transaction of its own"));
    }
    Decision d = gate_.at_rcpt(facts_, rcpt);
    if (d.hold && std::find(holds_.begin(), holds_.end(), d.hold->id) == holds_.end()) holds_.push_back(d.hold->id);
    if (d.busy) ctx_.logger().notice("token_busy", {{"client", client_}, {"sender", *facts_.sender}, {"rcpt", rcpt}});
    if (d.outcome == Outcome::refuse) return refuse(d, d.reason == "routing form" ? path : rcpt);
    if (d.outcome == Outcome::tempfail) {
        ctx_.logger().notice("deferred", {{"client", client_}, {"sender", *facts_.sender}, {"rcpt", rcpt},
                                          {"reason", d.reason}, {"reply", first_line(d.reply)}});
        return MilterReply::of(d.reply);
    }
    Rcpt r;
    r.path = path;
    bool unknown = d.outcome == Outcome::provisional && d.category == Category::unknown;
    if (unknown && p_.unknown == UnknownMode::forward) {
        r.forward_to = forward_address(p_, d.deliver_to, rcpt);
        if (r.forward_to.empty()) {
            d.reason = "no forward address";
            d.reply = SmtpReply(550, "5.7.1 <" + rcpt + ">: unknown sender");
            return refuse(d, rcpt);
        }
    }
    // The MTA makes one copy of the message, with one set of verdict fields: recipients that may end up in
    // different categories go in transactions of their own.
    if (!rcpts_.empty() && class_of(rcpts_.front().d) != class_of(d))
        return MilterReply::of(SmtpReply(452, "4.5.3 send this recipient in a transaction of its own"));
    r.d = std::move(d);
    rcpts_.push_back(std::move(r));
    return MilterReply::go();
}

MilterReply MilterSession::header(const std::string& name, const std::string& value) {
    if (data_.head_too_big()) return MilterReply::go();  // refused at the end
    if (fields_.size() < limits::header_fields) fields_.emplace_back(name, value);
    data_.write(name + ":" + crlf(value) + "\r\n", limits::header_size);
    return MilterReply::go();
}

MilterReply MilterSession::end_of_header() {
    data_.write("\r\n", limits::header_size);
    return MilterReply::go();
}

MilterReply MilterSession::body(std::string_view chunk) {
    data_.write(chunk, limits::header_size);
    return MilterReply::go();
}

MilterReply MilterSession::end_of_message(std::vector<MilterEdit>& edits) {
    edits.clear();
    Result<MilterReply> r = Error{ErrorKind::software, ""};
    if (rcpts_.empty() && relayed_) {
        r = MilterReply::go();  // relayed mail only: none of ours
    } else if (rcpts_.empty()) {
        r = MilterReply::of(SmtpReply(554, "5.5.1 no valid recipients"));
    } else if (data_.head_too_big() || fields_.size() >= limits::header_fields) {
        r = MilterReply::of(SmtpReply(552, "5.3.4 header section too large"));
    } else if (data_.failure()) {
        r = Error{ErrorKind::tempfail, "spool write failed"};
    } else {
        try {
            r = rcpts_.front().d.outgoing ? finish_outgoing(edits) : finish(edits);
        } catch (const std::exception& e) {
            r = Error{ErrorKind::tempfail, std::string("internal error: ") + e.what()};
        }
    }
    MilterReply out;
    if (!r) {
        ctx_.logger().err("deferred", {{"client", client_}, {"sender", facts_.sender.value_or("")},
                                       {"error", r.error().text}});
        out = MilterReply::of(SmtpReply(451, "4.3.0 message not accepted, try again later"));
    } else {
        out = *r;
    }
    if (out.action != MilterReply::Action::cont) {
        edits.clear();
        give_back_tokens();
    }
    std::vector<std::string> taken = std::move(claimed_);
    claimed_.clear();
    reset();
    taken_ = std::move(taken);
    return out;
}

void MilterSession::edits_refused() {
    claimed_ = std::move(taken_);
    taken_.clear();
    give_back_tokens();
}

void MilterSession::give_back_tokens() {
    for (const auto& id : claimed_) {
        auto g = lookups_.give_back(id);
        ctx_.logger().log(g ? Level::info : Level::err, "token_give_back",
                          {{"client", client_}, {"token", id}, {"error", g ? "" : g.error().text}});
    }
    claimed_.clear();
}

// As msmtp-proxy: the reservations become uses before the message goes on; a token another message got to
// first (this one's reservation had run out) is a 451.
Result<std::optional<SmtpReply>> MilterSession::claim_tokens() {
    for (const auto& r : rcpts_) {
        if (!r.d.hold || r.d.category != Category::whitelist || r.d.outcome != Outcome::accept) continue;
        TokenRecord rec = *r.d.hold;
        rec.changed = now();
        auto c = lookups_.claim(rec, facts_.holder);
        if (!c) return c.error();
        if (c->has_value()) {
            ctx_.logger().notice("token_lost", {{"client", client_}, {"sender", facts_.sender.value_or("")},
                                                {"rcpt", r.d.rcpt}, {"state", to_string(**c)}});
            return std::optional<SmtpReply>(
                SmtpReply(451, "4.7.1 <" + r.d.rcpt + ">: token address in use, try again later"));
        }
        claimed_.push_back(rec.id);
        holds_.erase(std::remove(holds_.begin(), holds_.end(), rec.id), holds_.end());
    }
    return std::optional<SmtpReply>();
}

// The verdict fields a sender forged deleted (by name and occurrence, as the MTA counts them), ours inserted
// at the top, the Subject tagged.
void MilterSession::header_edits(const MessageReader& msg, const Verdict& v, char letter,
                                 std::vector<MilterEdit>& edits) {
    // Which received fields strip_verdicts takes away: each one checked alone.
    std::map<std::string, int> seen;
    std::vector<MilterEdit> deletes;
    for (const auto& [name, value] : fields_) {
        std::string key;
        for (char c : name) key += static_cast<char>(c >= 'A' && c <= 'Z' ? c + 32 : c);
        int n = ++seen[key];
        std::istringstream one(name + ":" + crlf(value) + "\r\n\r\n");
        MessageReader m(one);
        if (!m.read_header()) continue;
        if (strip_verdicts(m, p_.authserv_id) > 0) deletes.push_back({MilterEdit::Kind::change_header, name, "", n});
    }
    // Deleted from the last occurrence back, so the indexes of the ones before stay right.
    for (auto it = deletes.rbegin(); it != deletes.rend(); ++it) edits.push_back(*it);
    if (!deletes.empty())
        ctx_.logger().notice("forged_fields", {{"client", client_}, {"sender", facts_.sender.value_or("")},
                                               {"removed", static_cast<long>(deletes.size())}});

    std::istringstream none("\r\n");
    MessageReader ours(none);
    (void)ours.read_header();
    add_verdict_fields(ours, v, p_.authserv_id);
    int at = 0;
    for (const auto& f : ours.fields())
        edits.push_back({MilterEdit::Kind::insert_header, std::string(f.name()), f.value(), at++});

    if (p_.tag) {
        auto tg = p_.tags.find(letter);
        std::string tag = tg != p_.tags.end() ? tg->second : std::string("[") + letter + "]";
        if (!tag.empty()) {
            auto subject = msg.get("Subject");
            std::istringstream s(subject ? "Subject: " + *subject + "\r\n\r\n" : std::string("\r\n"));
            MessageReader one(s);
            (void)one.read_header();
            one.tag_subject(tag);
            auto tagged = one.get("Subject");
            if (tagged && (!subject || *tagged != *subject)) {
                if (subject) edits.push_back({MilterEdit::Kind::change_header, "Subject", *tagged, 1});
                else edits.push_back({MilterEdit::Kind::insert_header, "Subject", *tagged, at});
            }
        }
    }
}

Result<MilterReply> MilterSession::finish(std::vector<MilterEdit>& edits) {
    std::istringstream hs(data_.head());
    MessageReader msg(hs);
    if (auto h = msg.read_header(); !h) return MilterReply::of(SmtpReply(554, "5.6.0 malformed header section"));
    check_message_auth(p_, p_.resolver ? *p_.resolver : *no_dns_, auth_, msg, data_.body(), client_, helo_,
                       facts_.sender.value_or(""));
    std::vector<std::string> methods = auth_.results() ? auth_.results()->method_results() : std::vector<std::string>{};

    // The transaction's one verdict: the accepted recipients' own, else the end-of-message decision.
    Verdict v;
    v.category = rcpts_.front().d.category;
    v.reason = rcpts_.front().d.reason;
    v.hashcash = v.postage = "none";
    bool ask = std::any_of(rcpts_.begin(), rcpts_.end(), [](const Rcpt& r) {
        return r.d.outcome == Outcome::provisional || !r.d.stamp_for.empty();
    });
    bool provisional = rcpts_.front().d.outcome == Outcome::provisional;
    if (ask) {
        std::vector<Decision> ds;
        for (const auto& r : rcpts_) ds.push_back(r.d);
        auto e = gate_.at_end(facts_, ds, msg, from_addresses(msg, p_.trusted_forwarders),
                              [&]() { return spool_body_hash(data_.body()); });
        if (!e) return e.error();
        if (e->outcome == Outcome::tempfail) {
            ctx_.logger().notice("deferred", {{"client", client_}, {"sender", facts_.sender.value_or("")},
                                              {"reason", e->verdict.reason}});
            return MilterReply::of(e->reply);
        }
        if (e->outcome == Outcome::refuse) {
            Decision d;
            d.reason = e->verdict.reason;
            d.reply = e->reply;
            return refuse(d, rcpts_.front().d.rcpt);
        }
        if (provisional) v = e->verdict;
    }
    v.auth_results = methods;

    bool forward = false;
    if (provisional && v.category == Category::unknown) {
        if (p_.unknown == UnknownMode::postage || (reject_mode(p_) && rcpts_.front().d.auth_pending)) {
            // What the stamps do not admit is refused, with a token address to resend to.
            std::vector<std::string> to;
            for (const auto& r : rcpts_) to.push_back(r.d.deliver_to);
            std::vector<std::string> tokens, why;
            SmtpReply reply = gate_.token_refusal(facts_, to, true, tokens, why);
            for (std::size_t i = 0; i < tokens.size(); ++i) {
                Decision d;
                d.reason = why[i];
                d.token = tokens[i];
                d.reply = SmtpReply(550, "5.7.1 unknown sender");
                (void)refuse(d, to[i]);
            }
            return MilterReply::of(reply);
        }
        if (p_.unknown == UnknownMode::forward) forward = true;
    }
    // Forward-stamped: a stranger's mail admitted by its postage goes to the forward address too (each such
    // recipient had one set at RCPT; one that waited on its sender's authentication did not).
    bool forward_stamped = provisional && forwards_stamped(p_, v.category) &&
                           std::all_of(rcpts_.begin(), rcpts_.end(), [](const Rcpt& r) { return !r.forward_to.empty(); });
    if (forward_stamped) forward = true;
    const std::string e_reason = v.reason;
    if (auto c = claim_tokens(); !c) {
        give_back_tokens();
        return c.error();
    } else if (*c) {
        give_back_tokens();
        return MilterReply::of(**c);
    }

    char letter = category_letter(v.category);
    // Recipients: a token address or BATV form goes to its base; forward mode sends Unknown mail on.
    std::vector<std::string> added, delivered;
    for (const auto& r : rcpts_) {
        std::string to = forward ? r.forward_to : r.d.deliver_to;
        if (forward && forward_stamped) v.reason = e_reason + ", forwarded to " + to + " (forward-stamped)";
        else if (forward) v.reason = "not whitelisted, forwarded to " + to;
        if (to != r.d.rcpt) {
            edits.push_back({MilterEdit::Kind::del_rcpt, r.path, "", 0});
            if (std::find(added.begin(), added.end(), to) == added.end()) {
                edits.push_back({MilterEdit::Kind::add_rcpt, "<" + to + ">", "", 0});
                added.push_back(to);
            }
        }
        delivered.push_back(to);
    }
    header_edits(msg, v, letter, edits);
    if (provisional && v.category == Category::unknown && p_.unknown == UnknownMode::quarantine)
        edits.push_back({MilterEdit::Kind::quarantine, "mailstamp: " + v.reason, "", 0});
    std::string rcpt_list;
    for (const auto& d : delivered) rcpt_list += (rcpt_list.empty() ? "" : ",") + d;
    ctx_.logger().info("accepted", {{"client", client_},
                                    {"helo", helo_},
                                    {"sender", facts_.sender.value_or("")},
                                    {"rcpt", rcpt_list},
                                    {"class", std::string(1, letter)},
                                    {"reason", v.reason},
                                    {"size", static_cast<long>(data_.size())}});
    return MilterReply::go();
}

Result<MilterReply> MilterSession::finish_outgoing(std::vector<MilterEdit>& edits) {
    const std::string sender = facts_.sender.value_or("");
    std::vector<std::string> rcpts;
    for (const auto& r : rcpts_) rcpts.push_back(r.d.deliver_to);
    if (p_.stamp) {
        // The stamps are the fields stamp_message adds at the top: those go in as they are.
        Spool stamped;
        auto note = stamp_outgoing(ctx_, p_, sender, rcpts, data_.head(), data_.body(), stamped);
        if (!note) return note.error();
        SpoolReader in_buf("", stamped);
        std::istream in(&in_buf);
        MessageReader out(in);
        if (auto h = out.read_header(); !h) return Error{ErrorKind::tempfail, "stamped header: " + h.error().text};
        std::istringstream hs(data_.head());
        MessageReader orig(hs);
        if (auto h = orig.read_header(); !h) return MilterReply::of(SmtpReply(554, "5.6.0 malformed header section"));
        std::multiset<std::string> had;
        for (const auto& f : orig.fields()) had.insert(std::string(f.name()) + ":" + f.value());
        int at = 0;
        for (const auto& f : out.fields()) {
            std::string v = f.value();
            auto it = had.find(std::string(f.name()) + ":" + v);
            if (it != had.end()) {
                had.erase(it);
                continue;
            }
            edits.push_back({MilterEdit::Kind::insert_header, std::string(f.name()), v, at++});
        }
        if (!note->empty()) ctx_.logger().info("stamp", {{"user", facts_.user}, {"sender", sender}, {"note", *note}});
    } else {
        // The recipients are whitelisted even without stamps, for the user who wrote only.
        if (auto w = whitelist_outgoing(store_, rcpts, sender, now()); !w) return w.error();
    }
    std::string list;
    for (const auto& d : rcpts) list += (list.empty() ? "" : ",") + d;
    ctx_.logger().info("accepted", {{"client", client_}, {"sender", sender}, {"rcpt", list}, {"class", "out"},
                                    {"user", facts_.user}, {"size", static_cast<long>(data_.size())}});
    return MilterReply::go();
}

} // namespace mail
