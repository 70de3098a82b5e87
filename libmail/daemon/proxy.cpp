// msmtp-proxy's policy: see proxy.hpp and msmtp-proxy(8).
#include "libmail/daemon/proxy.hpp"

#include "libmail/mail/address.hpp"
#include "libmail/policy/batv.hpp"
#include "libmail/app/context.hpp"
#include "libmail/base/clock.hpp"
#include "libmail/mail/message.hpp"
#include "libmail/policy/password.hpp"
#include "libmail/policy/postage.hpp"
#include "libmail/io/serve.hpp"
#include "libmail/store/store.hpp"
#include "libmail/policy/token.hpp"
#include "libmail/policy/token_issue.hpp"
#include "libmail/policy/user_senders.hpp"
#include "libmail/policy/whitelist.hpp"

#include <openssl/rand.h>

#include <algorithm>
#include <istream>
#include <ostream>
#include <sstream>
#include <streambuf>
#include <thread>

namespace mail {

namespace {

using Clock = std::chrono::steady_clock;

std::string join(const std::vector<std::string>& v, std::string_view sep) {
    std::string o;
    for (const auto& s : v) {
        if (!o.empty()) o += sep;
        o += s;
    }
    return o;
}

std::string first_line(const SmtpReply& r) {
    return std::to_string(r.code) + " " + (r.lines.empty() ? std::string() : r.lines.front());
}

// A recipient form that some MTA behind us might route elsewhere: %-hack, bang paths, quoted '@',
// or anything quoted at all (RFC 5321 §3.6 lets a relay refuse these).
bool routing_trick(const Address& a) {
    return a.local.find_first_of("%!@\"\\") != std::string::npos;
}

} // namespace

void HitBatch::add(std::int64_t id, std::int64_t now) {
    std::lock_guard<std::mutex> g(m_);
    auto& e = pending_[id];
    ++e.first;
    e.second = std::max(e.second, now);
    ++count_;
}

void HitBatch::flush(Store& store, std::int64_t now, bool force) {
    std::map<std::int64_t, std::pair<std::int64_t, std::int64_t>> take;
    {
        std::lock_guard<std::mutex> g(m_);
        if (pending_.empty()) return;
        if (!force && count_ < 256 && now - last_write_ < 2) return;
        take.swap(pending_);
        count_ = 0;
        last_write_ = now;
    }
    auto w = store.transaction([&]() -> Result<void> {
        for (const auto& [id, e] : take)
            if (auto r = store.wl_hit(id, e.second, e.first); !r) return r;
        return {};
    });
    if (!w) {
        std::lock_guard<std::mutex> g(m_);
        for (const auto& [id, e] : take) {
            auto& p = pending_[id];
            p.first += e.first;
            p.second = std::max(p.second, e.second);
            count_ += static_cast<std::size_t>(e.first);
        }
    }
}

HitFlusher::HitFlusher(std::shared_ptr<HitBatch> hits, StorePool& pool, std::chrono::milliseconds interval)
    : hits_(std::move(hits)), pool_(pool), interval_(interval) {
    thread_ = std::thread([this] { run(); });
}

HitFlusher::~HitFlusher() { stop(); }

void HitFlusher::stop() {
    {
        std::lock_guard<std::mutex> g(m_);
        if (stopping_ && !thread_.joinable()) return;
        stopping_ = true;
    }
    cv_.notify_all();
    if (thread_.joinable()) thread_.join();
    write_now();  // whatever came in while the thread was stopping
}

void HitFlusher::write_now() {
    if (hits_->empty()) return;
    auto st = pool_.take();
    if (!st) return;  // the store is unavailable: the hits stay counted for the next try
    hits_->flush(**st, now(), true);
    pool_.give(std::move(*st));
}

void HitFlusher::run() {
    std::unique_lock<std::mutex> lk(m_);
    while (!stopping_) {
        cv_.wait_for(lk, interval_, [&] { return stopping_; });
        lk.unlock();
        write_now();
        lk.lock();
    }
}

bool HitBatch::empty() {
    std::lock_guard<std::mutex> g(m_);
    return pending_.empty();
}

ProxySession::ProxySession(const ProxyPolicy& policy, Context& ctx, Store& store, std::string client_address)
    : p_(policy), ctx_(ctx), store_(store), client_(std::move(client_address)) {}

ProxySession::~ProxySession() {
    release_tokens();
    if (in_delivery_) in_delivery_->close();
    if (out_delivery_) out_delivery_->close();
}

void ProxySession::release_tokens() {
    // A store error leaves the reservation to expire (limits::token_reservation).
    for (const auto& id : holds_) (void)store_.token_release(id, holder_);
    holds_.clear();
}

void ProxySession::give_back_tokens() {
    for (const auto& id : claimed_) {
        auto g = store_.token_give_back(id);
        ctx_.logger().log(g ? Level::info : Level::err, "token_give_back",
                          {{"client", client_}, {"token", id}, {"error", g ? "" : g.error().text}});
    }
    claimed_.clear();
}

void ProxySession::reset() {
    release_tokens();
    claimed_.clear();
    have_sender_ = false;
    sender_.clear();
    sender_match_.clear();
    rcpts_.clear();
    head_.clear();
    head_done_ = head_too_big_ = false;
    body_.clear();
    hash_.reset();
    size_ = 0;
}

void ProxySession::on_reset() { reset(); }

void ProxySession::on_protocol_error(std::string_view what) {
    ctx_.logger().notice("protocol", {{"client", client_}, {"helo", helo_}, {"error", what}});
}

SmtpReply ProxySession::on_helo(std::string_view domain, bool esmtp) {
    helo_ = std::string(domain);
    esmtp_ = esmtp;
    reset();
    return SmtpReply(250, "OK");
}

std::optional<SmtpReply> ProxySession::on_auth_begin() {
    std::string key = auth_key(client_);
    if (p_.auth.failures <= 0 || key.empty()) return std::nullopt;
    std::int64_t t = now();
    auto n = store_.rate_count(key, t, p_.auth.window, 0);
    if (!n) {
        ctx_.logger().err("store", {{"client", client_}, {"error", n.error().text}});
        return SmtpReply(454, "4.3.0 temporary authentication failure, try again later");
    }
    if (!auth_locked(p_.auth, *n)) return std::nullopt;
    // Refused before any credentials: a good password is refused too, and nothing is hashed.
    ctx_.logger().warning("auth_locked", {{"ip", client_ip(client_)}, {"until", format_time(auth_window_end(p_.auth, t))}});
    return SmtpReply(454, "4.7.0 too many failed logins from your address, try again later");
}

bool ProxySession::on_auth(std::string_view mechanism, std::string_view user, std::string_view password) {
    bool ok = false;
    if (!user.empty() && user.size() <= 256) {
        auto u = store_.user_get(user);
        if (u && *u) ok = verify_password(password, (*u)->hash);
        else {
            // The same cost for an unknown user, so timing does not tell which names exist.
            static const std::string dummy = [] {
                auto h = hash_password("not a password");
                return h ? *h : std::string();
            }();
            (void)verify_password(password, dummy);
        }
    }
    // The password is never logged; fail2ban watches the auth_fail line (auth_failed), not this one.
    ctx_.logger().log(ok ? Level::info : Level::warning, "auth",
                      {{"result", ok ? "ok" : "fail"}, {"client", client_}, {"mechanism", mechanism},
                       {"user", user}, {"password", redact(password)}});
    if (ok) user_ = std::string(user);
    else auth_failed();
    return ok;
}

void ProxySession::auth_failed() {
    std::string key = auth_key(client_);
    if (p_.auth.failures <= 0 || key.empty()) return;
    std::int64_t t = now();
    auto n = store_.rate_count(key, t, p_.auth.window, 1);
    if (!n) {
        ctx_.logger().err("store", {{"client", client_}, {"error", n.error().text}});
        return;
    }
    std::int64_t delay = auth_delay(p_.auth, *n);
    // A fixed line for fail2ban (msmtp-proxy(8)): the event and ip= first, nothing from the client.
    ctx_.logger().warning("auth_fail", {{"ip", client_ip(client_)}, {"failures", *n}, {"delay", delay},
                                        {"limit", p_.auth.failures}});
    if (*n == p_.auth.failures)
        ctx_.logger().warning("auth_lockout", {{"ip", client_ip(client_)}, {"failures", *n},
                                               {"until", format_time(auth_window_end(p_.auth, t))}});
    // The answer waits; the session's slot is the guesser's own (sessions per address are bounded).
    if (delay > 0) std::this_thread::sleep_for(std::chrono::seconds(delay));
}

Result<std::vector<std::string>> ProxySession::protected_domains() {
    if (!domains_) {
        auto d = store_.domain_list();
        if (!d) return d.error();
        domains_ = std::move(*d);
    }
    return *domains_;
}

bool ProxySession::home_domain(const std::string& domain) {
    const std::vector<std::string>* list = &p_.home_domains;
    std::vector<std::string> prot;
    if (list->empty()) {
        auto d = protected_domains();
        if (!d) return false;
        prot = *d;
        list = &prot;
    }
    return std::find(list->begin(), list->end(), domain) != list->end();
}

SmtpReply ProxySession::on_mail(const std::string& sender, const SmtpCommand&) {
    reset();
    bool outgoing = server_ && server_->authenticated();
    if (!sender.empty()) {
        auto a = parse_path(sender);
        if (!a || a->domain.empty()) return SmtpReply(553, "5.1.7 bad sender address syntax");
        sender_ = normalize_address(*a);
        sender_match_ = normalize_address(strip_sender_tags(*a, p_.trusted_forwarders));
        if (outgoing && !home_domain(normalize_domain(a->domain))) {
            ctx_.logger().notice("reject", {{"client", client_}, {"helo", helo_}, {"sender", sender_},
                                            {"user", user_}, {"reason", "sender not in the home domains"}});
            return SmtpReply(553, "5.7.1 <" + sender_ + ">: sender address not owned by user " + user_);
        }
        if (outgoing) {
            // A user sends only as the addresses it owns: one stolen password must not send as everybody.
            auto u = store_.user_get(user_);
            if (!u) return SmtpReply(451, "4.3.0 cannot answer now, try again later");
            if (!*u || !may_send_as(user_senders(**u), sender_)) {
                ctx_.logger().notice("reject", {{"client", client_}, {"helo", helo_}, {"sender", sender_},
                                                {"user", user_}, {"reason", "sender not owned by the user"}});
                return SmtpReply(553, "5.7.1 <" + sender_ + ">: sender address not owned by user " + user_);
            }
        }
    } else if (outgoing) {
        return SmtpReply(553, "5.7.1 authenticated users send with a sender address");
    }
    have_sender_ = true;
    started_ = Clock::now();
    return SmtpReply(250, "2.1.0 OK");
}

SmtpReply ProxySession::refuse_rcpt(int code, std::string text, const std::string& rcpt, std::string_view why,
                                    std::string_view token) {
    ctx_.logger().notice("reject", {{"client", client_},
                                    {"helo", helo_},
                                    {"sender", sender_},
                                    {"rcpt", rcpt},
                                    {"reason", why},
                                    {"token", token},
                                    {"reply", std::to_string(code) + " " + text}});
    return SmtpReply(code, std::move(text));
}

Result<std::string> ProxySession::token_for(const std::string& rcpt) {
    TokenRequest req;
    req.recipient = rcpt;
    req.flags = token_flag::once;
    if (p_.unknown == UnknownMode::token_postage) req.flags |= token_flag::postage;
    req.expires = now() + p_.token_ttl;
    req.delimiter = p_.delimiter;
    return issue_token(store_, req, now());
}

// "" when one more token may be handed out to this client and sender; else what is over its limit. Every
// call counts (store rate_hit, fixed windows of a day, keys "tok:net:NETWORK" and "tok:snd:SENDER").
Result<std::string> ProxySession::token_limit() {
    constexpr std::int64_t day = 86400;
    std::int64_t t = now();
    if (p_.token_limit_network > 0) {
        std::string net = client_network(client_);
        auto ok = store_.rate_hit("tok:net:" + net, t, day, p_.token_limit_network);
        if (!ok) return ok.error();
        if (!*ok) return "network " + net;
    }
    if (p_.token_limit_sender > 0 && !sender_match_.empty()) {
        auto ok = store_.rate_hit("tok:snd:" + sender_match_, t, day, p_.token_limit_sender);
        if (!ok) return ok.error();
        if (!*ok) return "sender " + sender_match_;
    }
    return std::string();
}

SmtpReply ProxySession::token_reply(const std::vector<std::string>& rcpts, bool at_data) {
    std::vector<std::string> lines;
    std::vector<std::string> tokens;  // per recipient answered; "" where a limit withheld the token
    std::vector<std::string> why;
    for (const auto& r : rcpts) {
        if (tokens.size() >= 5) break;
        auto over = token_limit();
        if (!over) return SmtpReply(451, "4.3.0 cannot answer now, try again later");
        lines.push_back("5.7.1 <" + r + "> takes mail only from senders it knows.");
        if (!over->empty()) {
            tokens.emplace_back();
            why.push_back("token limit: " + *over);
            lines.push_back("5.7.1 (no more token addresses for you today)");
            continue;
        }
        auto t = token_for(r);
        if (!t) return SmtpReply(451, "4.3.0 cannot answer now, try again later");
        tokens.push_back(*t);
        why.push_back(at_data ? "no postage" : "unknown sender");
        lines.push_back("5.7.1 To reach " + r + ", please send your message again, once,");
        lines.push_back("5.7.1 to this address: <" + *t + ">");
        if (p_.unknown == UnknownMode::token_postage)
            lines.push_back("5.7.1 with a hashcash stamp of " + std::to_string(p_.postage.min_bits) +
                            " bits for that address in an X-Hashcash field (hashcash -m -b " +
                            std::to_string(p_.postage.min_bits) + " " + *t + ")");
    }
    if (at_data) lines.push_back("5.7.1 (the message carried no valid postage)");
    for (std::size_t i = 0; i < tokens.size(); ++i)
        (void)refuse_rcpt(550, "5.7.1 unknown sender", rcpts[i], why[i], tokens[i]);
    return SmtpReply(550, lines);
}

SmtpReply ProxySession::on_rcpt(const std::string& path, const SmtpCommand&) {
    if (!have_sender_) return SmtpReply(503, "5.5.1 need MAIL before RCPT");
    auto a = parse_path(path);
    if (!a || a->empty() || a->domain.empty())
        return refuse_rcpt(501, "5.1.3 bad recipient address syntax", path, "syntax");
    std::string rcpt = normalize_address(*a);
    std::string domain = normalize_domain(a->domain);
    bool literal = !domain.empty() && domain.front() == '[';
    bool outgoing = server_ && server_->authenticated();

    auto domains = protected_domains();
    if (!domains) return SmtpReply(451, "4.3.0 cannot answer now, try again later");
    bool local = !literal && std::find(domains->begin(), domains->end(), domain) != domains->end();

    if (routing_trick(*a) || literal) {
        if (!outgoing || routing_trick(*a))
            return refuse_rcpt(554, "5.7.1 <" + path + ">: relay access denied", path, "routing form");
    }
    auto dup = [&](const std::string& addr) {
        return std::any_of(rcpts_.begin(), rcpts_.end(), [&](const Rcpt& o) { return o.addr == addr; });
    };
    if (outgoing) {
        if (dup(rcpt)) return SmtpReply(250, "2.1.5 OK (duplicate)");
        // An authenticated user's mail goes to the smart host, local recipients included.
        Rcpt r;
        r.addr = r.deliver_to = rcpt;
        r.outgoing = true;
        r.category = Category::whitelist;
        r.reason = "authenticated user " + user_;
        rcpts_.push_back(r);
        return SmtpReply(250, "2.1.5 OK");
    }
    if (!local) return refuse_rcpt(554, "5.7.1 <" + rcpt + ">: relay access denied", rcpt, "relay");

    std::int64_t t = now();
    Rcpt r;
    r.addr = r.deliver_to = rcpt;
    std::string base = rcpt;  // the recipient a token stands for
    if (auto tok = parse_token(rcpt, p_.delimiter)) base = tok->recipient();

    if (sender_.empty()) {
        // A bounce: with BATV it must come back to an address we signed, else it is backscatter.
        if (p_.batv) {
            auto keys = store_.secrets(batv_secret_purpose);
            if (!keys) return SmtpReply(451, "4.3.0 cannot answer now, try again later");
            BatvCheck c = batv_check(rcpt, *keys, t);
            if (c != BatvCheck::ok)
                return refuse_rcpt(550, "5.7.1 <" + rcpt + ">: bounce to an address we never sent from (" +
                                            std::string(to_string(c)) + ")",
                                   rcpt, "unsigned bounce");
            r.deliver_to = batv_strip(rcpt);
        }
        r.category = Category::information;
        r.reason = "non-delivery notice";
    } else {
        std::string match_rcpt = rcpt;
        if (rcpt.rfind("prvs=", 0) == 0) match_rcpt = r.deliver_to = batv_strip(rcpt);
        auto m = wl_match(store_, sender_match_, match_rcpt);
        if (!m) return SmtpReply(451, "4.3.0 cannot answer now, try again later");
        if (!*m && iequals(a->local, "postmaster")) {
            // RFC 5321 4.5.1: mail to postmaster is always taken.
            r.category = Category::whitelist;
            r.reason = "postmaster takes all mail (RFC 5321 4.5.1)";
        }
        if (!*m && base != rcpt) {
            // A token address: whitelist entries scoped to the recipient it stands for count too.
            m = wl_match(store_, sender_match_, base);
            if (!m) return SmtpReply(451, "4.3.0 cannot answer now, try again later");
            if (*m) r.deliver_to = base;
        }
        if (*m) {
            if (p_.hits) {
                p_.hits->add((*m)->id, t);
                p_.hits->flush(store_, t);
            } else {
                (void)store_.wl_hit((*m)->id, t);  // a statistic: not worth refusing mail over
            }
            r.category = Category::whitelist;
            r.reason = (*m)->kind == WlKind::recipient ? "recipient " + match_rcpt + " takes all mail"
                                                       : "sender " + sender_match_ + " is whitelisted";
        } else if (base != rcpt) {
            // A one-time token is reserved for this transaction now, so that of any number of sessions
            // naming it only one gets past RCPT; the reservation becomes a use before the message goes on.
            if (holder_.empty()) {
                unsigned char id[8];
                if (RAND_bytes(id, sizeof id) != 1) return SmtpReply(451, "4.3.0 cannot answer now, try again later");
                holder_ = hex_encode(std::string_view(reinterpret_cast<char*>(id), sizeof id));
            }
            std::optional<TokenRecord> hold;
            auto v = reserve_token(store_, rcpt, sender_match_, holder_, t + limits::token_reservation, p_.delimiter,
                                   t, hold);
            if (!v) return SmtpReply(451, "4.3.0 cannot answer now, try again later");
            if (hold && std::find(holds_.begin(), holds_.end(), hold->id) == holds_.end()) holds_.push_back(hold->id);
            if (v->check == TokenCheck::ok) {
                r.category = Category::whitelist;
                r.reason = "token address " + rcpt;
                r.deliver_to = base;
                r.hold = hold;
                auto tok = parse_token(rcpt, p_.delimiter);
                if (tok && (tok->flags & token_flag::postage)) r.stamp_for = rcpt;
            } else if (v->check == TokenCheck::reserved) {
                ctx_.logger().notice("token_busy", {{"client", client_}, {"sender", sender_}, {"rcpt", rcpt}});
            }
        }
        if (r.category != Category::whitelist) {
            r.category = Category::unknown;
            r.reason = "not whitelisted";
            r.deliver_to = base;
            switch (p_.unknown) {
            case UnknownMode::reject:
            case UnknownMode::token_postage: {
                SmtpReply rep = token_reply({base}, false);
                return rep;
            }
            case UnknownMode::mark: break;
            case UnknownMode::forward: {
                std::string to = p_.forward_to;
                if (auto f = p_.forward_map.find(base); f != p_.forward_map.end()) to = f->second;
                else if (auto g = p_.forward_map.find("@" + domain); g != p_.forward_map.end()) to = g->second;
                if (to.empty()) return refuse_rcpt(550, "5.7.1 <" + rcpt + ">: unknown sender", rcpt, "no forward address");
                r.deliver_to = to;
                r.reason = "not whitelisted, forwarded to " + to;
                break;
            }
            case UnknownMode::postage:
                r.provisional = true;
                r.reason = "postage to be checked";
                break;
            }
        }
    }
    if (dup(r.addr)) return SmtpReply(250, "2.1.5 OK (duplicate)");
    if (!rcpts_.empty() && (rcpts_.front().provisional != r.provisional ||
                            rcpts_.front().stamp_for.empty() != r.stamp_for.empty()))
        return SmtpReply(452, "4.5.3 send this recipient in a transaction of its own");
    rcpts_.push_back(r);
    return SmtpReply(250, "2.1.5 OK");
}

SmtpReply ProxySession::on_data() {
    if (rcpts_.empty()) return SmtpReply(554, "5.5.1 no valid recipients");
    head_.clear();
    head_done_ = head_too_big_ = false;
    body_.clear();
    size_ = 0;
    if (rcpts_.front().provisional) hash_ = std::make_unique<RelaxedBodyHash>();
    return SmtpReply(354, "end data with <CR><LF>.<CR><LF>");
}

void ProxySession::on_data_chunk(std::string_view data) {
    size_ += data.size();
    if (!head_done_) {
        std::size_t from = head_.size() >= 3 ? head_.size() - 3 : 0;
        head_.append(data);
        std::size_t end = std::string::npos;
        if (head_.rfind("\r\n", 0) == 0) end = 2;  // no header fields at all
        else if (auto e = head_.find("\r\n\r\n", from); e != std::string::npos) end = e + 4;
        if (end == std::string::npos) {
            if (head_.size() > limits::header_size) head_too_big_ = head_done_ = true;
            return;
        }
        std::string rest = head_.substr(end);
        head_.resize(end);
        head_done_ = true;
        data = {};
        if (!rest.empty()) {
            if (hash_) hash_->update(rest);
            (void)body_.write(rest);  // a spool error shows at the end as a short body; checked there
        }
        return;
    }
    if (head_too_big_) return;
    if (hash_) hash_->update(data);
    (void)body_.write(data);
}

std::string ProxySession::received(const std::vector<std::string>& rcpts) const {
    bool tls = server_ && server_->tls_active();
    bool auth = server_ && server_->authenticated();
    std::string proto = esmtp_ ? "ESMTP" : "SMTP";
    if (esmtp_ && tls) proto += "S";
    if (esmtp_ && auth) proto += "A";
    unsigned char id[6];
    if (RAND_bytes(id, sizeof id) != 1) std::fill(std::begin(id), std::end(id), 0);
    std::string ip = client_.substr(0, client_.rfind(':'));
    std::string r = "from " + helo_ + " (" + (ip.empty() ? "unknown" : ip) + ") by " + p_.hostname +
                    " (msmtp-proxy) with " + proto + " id " +
                    hex_encode(std::string_view(reinterpret_cast<char*>(id), sizeof id));
    if (rcpts.size() == 1) r += " for <" + rcpts.front() + ">";
    r += "; " + rfc5322_date(now());
    return r;
}

Result<DeliveryResult> ProxySession::hand_on(Delivery& d, const OutMessage& m) { return d.deliver(m); }

void ProxySession::log_delivery(const std::vector<Rcpt*>& group, const std::string& cls, const DeliveryResult& r) {
    std::vector<std::string> to;
    for (auto* g : group) to.push_back(g->deliver_to);
    auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - started_).count();
    ctx_.logger().info("delivered", {{"client", client_},
                                     {"helo", helo_},
                                     {"sender", sender_},
                                     {"rcpt", join(to, ",")},
                                     {"class", cls},
                                     {"reason", group.front()->reason},
                                     {"user", user_},
                                     {"downstream", first_line(r.reply)},
                                     {"where", r.where},
                                     {"size", static_cast<long>(size_)},
                                     {"ms", static_cast<long>(ms)}});
}

SmtpReply ProxySession::on_data_end(std::string_view why) {
    Result<SmtpReply> r = Error{ErrorKind::software, ""};
    if (why == "too big") {
        r = SmtpReply(552, "5.3.4 message size exceeds fixed limit");
    } else if (!why.empty()) {
        on_protocol_error("bare CR or LF in message data");
        r = SmtpReply(550, "5.6.0 message refused: bare CR or LF in the data (RFC 5321 section 2.3.8)");
    } else if (head_too_big_) {
        r = SmtpReply(552, "5.3.4 header section too large");
    } else if (body_.size() + head_.size() != size_) {
        r = Error{ErrorKind::tempfail, "spool write failed"};
    } else {
        try {
            r = rcpts_.front().outgoing ? finish_outgoing() : finish_incoming();
        } catch (const std::exception& e) {
            r = Error{ErrorKind::tempfail, std::string("internal error: ") + e.what()};
        }
    }
    SmtpReply out;
    if (!r) {
        ctx_.logger().err("deferred", {{"client", client_}, {"sender", sender_}, {"error", r.error().text}});
        out = SmtpReply(451, "4.3.0 message not accepted, try again later");
    } else {
        out = *r;
    }
    // A one-time token used for a message that was not taken works again.
    if (out.code / 100 != 2) give_back_tokens();
    claimed_.clear();
    reset();
    return out;
}

Result<SmtpReply> ProxySession::finish_incoming() {
    std::int64_t t = now();
    // Postage mode: the stamps decide for the provisional recipients.
    std::optional<Verdict> stamped;
    if (rcpts_.front().provisional) {
        std::istringstream hs(head_);
        MessageReader msg(hs);
        if (auto h = msg.read_header(); !h) return SmtpReply(554, "5.6.0 malformed header section");
        Envelope env;
        env.sender = sender_match_;
        for (const auto& r : rcpts_) env.rcpts.push_back(r.deliver_to);
        Verdict v;
        v.hashcash = v.postage = "none";
        if (has_postage(msg)) {
            std::string bh = hash_ ? hash_->finish() : std::string();
            hash_.reset();
            if (auto c = check_stamps(store_, msg, env, bh, p_.postage, t, v); !c) return c.error();
        }
        if (v.category != Category::stamped && v.category != Category::questionable) {
            std::vector<std::string> who;
            for (const auto& r : rcpts_) who.push_back(r.deliver_to);
            return token_reply(who, true);
        }
        stamped = v;
    }

    // Tokens with the postage flag: the message must carry a stamp for each (checked before any is used).
    if (!rcpts_.front().stamp_for.empty()) {
        std::istringstream hs(head_);
        MessageReader msg(hs);
        if (auto h = msg.read_header(); !h) return SmtpReply(554, "5.6.0 malformed header section");
        if (auto refused = token_stamp_refusal(msg, t)) return *refused;
    }
    if (auto c = claim_tokens(); !c) return c.error();
    else if (*c) return **c;

    // One copy per category (the verdict fields differ).
    std::map<char, std::vector<Rcpt*>> groups;
    for (auto& r : rcpts_) {
        if (stamped) {
            r.category = stamped->category;
            r.reason = stamped->reason;
        }
        groups[category_letter(r.category)].push_back(&r);
    }
    if (!in_delivery_) in_delivery_ = make_delivery(p_.incoming, p_.hostname, p_.relay_timeout, p_.relay_pool);
    std::string last;
    for (auto& [letter, group] : groups) {
        std::istringstream hs(head_);
        MessageReader msg(hs);
        if (auto h = msg.read_header(); !h) return SmtpReply(554, "5.6.0 malformed header section");
        strip_verdicts(msg, p_.authserv_id);
        Verdict v;
        if (stamped) v = *stamped;
        v.category = group.front()->category;
        v.reason = group.front()->reason;
        if (v.hashcash.empty()) v.hashcash = "none";
        if (v.postage.empty()) v.postage = "none";
        add_verdict_fields(msg, v, p_.authserv_id);
        if (p_.tag) {
            auto tg = p_.tags.find(letter);
            std::string tag = tg != p_.tags.end() ? tg->second : std::string("[") + letter + "]";
            if (!tag.empty()) msg.tag_subject(tag);
        }
        OutMessage m;
        m.sender = sender_;
        for (auto* g : group)
            if (std::find(m.rcpts.begin(), m.rcpts.end(), g->deliver_to) == m.rcpts.end()) m.rcpts.push_back(g->deliver_to);
        msg.prepend("Received", received(m.rcpts));
        std::ostringstream hdr;
        if (auto w = msg.write_header(hdr); !w) return w.error();
        // A header that ran into a non-field line: a blank line goes before what follows, and what
        // follows (still in head_) goes on as the start of the body.
        if (msg.separator().empty()) hdr << "\r\n";
        if (auto w = msg.copy_body(hdr); !w) return w.error();
        m.header = hdr.str();
        m.body = &body_;
        auto d = hand_on(*in_delivery_, m);
        if (!d) return d.error();
        if (!d->accepted) {
            ctx_.logger().warning("downstream", {{"client", client_}, {"sender", sender_},
                                                 {"rcpt", join(m.rcpts, ",")}, {"reply", first_line(d->reply)}});
            if (d->reply.code >= 500)
                return SmtpReply(d->reply.code, "5.0.0 refused downstream: " + first_line(d->reply));
            return SmtpReply(451, "4.4.0 downstream busy, try again later: " + first_line(d->reply));
        }
        log_delivery(group, std::string(1, letter), *d);
        last = first_line(d->reply);
        // A copy went out to this group: its tokens stay used even if a later group's copy is not taken.
        for (auto* g : group)
            if (g->hold) claimed_.erase(std::remove(claimed_.begin(), claimed_.end(), g->hold->id), claimed_.end());
    }
    claimed_.clear();  // the message is taken: its tokens stay used
    return SmtpReply(250, "2.0.0 OK: delivered (" + last + ")");
}

// Turns this transaction's reservations into uses before the message goes on; a token someone else got to
// first (its reservation here had run out) is a 451: the client's retry gets the 550 with a fresh token.
Result<std::optional<SmtpReply>> ProxySession::claim_tokens() {
    for (const auto& r : rcpts_) {
        if (!r.hold) continue;
        TokenRecord rec = *r.hold;
        rec.changed = now();
        auto c = store_.token_claim(rec, holder_);
        if (!c) {
            give_back_tokens();
            return c.error();
        }
        if (c->has_value()) {
            give_back_tokens();
            ctx_.logger().notice("token_lost", {{"client", client_}, {"sender", sender_}, {"rcpt", r.addr},
                                                {"state", to_string(**c)}});
            return std::optional<SmtpReply>(
                SmtpReply(451, "4.7.1 <" + r.addr + ">: token address in use, try again later"));
        }
        claimed_.push_back(rec.id);
        holds_.erase(std::remove(holds_.begin(), holds_.end(), rec.id), holds_.end());  // the claim ended it
    }
    return std::optional<SmtpReply>();
}

std::optional<SmtpReply> ProxySession::token_stamp_refusal(const MessageReader& msg, std::int64_t t) {
    int bits = p_.postage.min_bits;
    for (const auto& r : rcpts_) {
        if (r.stamp_for.empty()) continue;
        HashcashCheck c = token_stamp(msg, r.stamp_for, bits, t);
        if (c == HashcashCheck::ok) continue;
        std::string why = c == HashcashCheck::malformed ? "no stamp" : std::string(to_string(c));
        (void)refuse_rcpt(550, "5.7.1 token postage missing", r.addr, "token postage: " + why);
        return SmtpReply(550, std::vector<std::string>{
                                  "5.7.1 <" + r.addr + "> takes a resend only with a hashcash stamp of " +
                                      std::to_string(bits) + " bits for that address",
                                  "5.7.1 in an X-Hashcash field (hashcash -m -b " + std::to_string(bits) + " " +
                                      r.addr + "); found: " + why});
    }
    return std::nullopt;
}

Result<SmtpReply> ProxySession::finish_outgoing() {
    std::int64_t t = now();
    OutMessage m;
    m.sender = sender_;
    if (p_.batv) {
        auto key = current_batv_secret(store_, t);
        if (!key) return key.error();
        m.sender = batv_sign(sender_, *key, t, p_.batv_days);
    }
    for (const auto& r : rcpts_) m.rcpts.push_back(r.deliver_to);
    m.header = "Received: " + received(m.rcpts) + "\r\n";
    Spool stamped;
    if (p_.stamp) {
        StampOptions so;
        so.sender = sender_;
        so.rcpts = m.rcpts;
        so.kind = *p_.stamp;
        so.bits = p_.stamp_bits;
        so.whitelist_scope = sender_;
        SpoolReader in_buf(head_, body_);
        std::istream in(&in_buf);
        ChunkWriter out_buf([&](std::string_view d) { return stamped.write(d); });
        std::ostream out(&out_buf);
        std::ostringstream err;
        auto rc = stamp_message(ctx_, so, in, out, err);
        out.flush();
        std::string e = err.str();
        if (!e.empty() && e.back() == '\n') e.pop_back();
        if (!rc) return Error{ErrorKind::tempfail, "stamping failed: " + rc.error().text};
        if (*rc != 0 || !out_buf.status)
            return Error{ErrorKind::tempfail, "stamping failed: " + (out_buf.status ? "exit " + std::to_string(*rc)
                                                                                   : out_buf.status.error().text)};
        if (!e.empty()) ctx_.logger().info("stamp", {{"user", user_}, {"sender", sender_}, {"note", e}});
        m.body = &stamped;
    } else {
        // The recipients are whitelisted even without stamps: they are people our users write to. Only for
        // the user who wrote (the sender, which on_mail made sure it owns), not for the whole site.
        auto entries = wl_outgoing_entries(m.rcpts, sender_, t);
        auto w = store_.transaction([&]() -> Result<void> {
            for (const auto& e : entries)
                if (auto ins = store_.wl_insert(e); !ins) return ins.error();
            return {};
        });
        if (!w) return w.error();
        m.header += head_;
        m.body = &body_;
    }
    if (!out_delivery_) {
        DeliveryTarget tgt = p_.incoming;
        if (p_.smarthost) {
            tgt.kind = DeliveryTarget::Kind::relay;
            tgt.relay = *p_.smarthost;
        }
        out_delivery_ = make_delivery(tgt, p_.hostname, p_.relay_timeout,
                                      p_.smarthost ? p_.smarthost_pool : p_.relay_pool);
    }
    auto d = hand_on(*out_delivery_, m);
    if (!d) return d.error();
    std::vector<Rcpt*> group;
    for (auto& r : rcpts_) group.push_back(&r);
    if (!d->accepted) {
        ctx_.logger().warning("downstream", {{"client", client_}, {"sender", sender_}, {"user", user_},
                                             {"rcpt", join(m.rcpts, ",")}, {"reply", first_line(d->reply)}});
        if (d->reply.code >= 500) return SmtpReply(d->reply.code, "5.0.0 refused by the smart host: " + first_line(d->reply));
        return SmtpReply(451, "4.4.0 smart host busy, try again later: " + first_line(d->reply));
    }
    log_delivery(group, "out", *d);
    return SmtpReply(250, "2.0.0 OK: sent (" + first_line(d->reply) + ")");
}

} // namespace mail
