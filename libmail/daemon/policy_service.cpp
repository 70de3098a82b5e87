// The Postfix policy service: see policy_service.hpp and mmilter(8).
#include "libmail/daemon/policy_service.hpp"

#include "libmail/app/context.hpp"
#include "libmail/daemon/proxy.hpp"
#include "libmail/base/clock.hpp"
#include "libmail/base/text.hpp"
#include "libmail/io/net.hpp"
#include "libmail/mail/address.hpp"
#include "libmail/store/store.hpp"

#include <algorithm>

namespace mail {

namespace {

using Clock = std::chrono::steady_clock;

// The first octets of text for an error message, controls shown as '?'.
std::string shown(std::string_view text) {
    std::string o(text.substr(0, 60));
    for (char& ch : o)
        if (static_cast<unsigned char>(ch) < 0x20 || ch == 0x7f) ch = '?';
    return text.size() > 60 ? o + "..." : o;
}

const char* const dunno = "DUNNO";
const char* const try_later = "451 4.3.0 cannot answer now, try again later";

// Set once any connection of this process has seen END-OF-MESSAGE: a released reservation before that hints
// at a Postfix without smtpd_end_of_data_restrictions.
std::atomic<bool> seen_end_of_message{false};

} // namespace

std::string PolicyRequest::get(std::string_view name) const {
    for (auto it = attributes.rbegin(); it != attributes.rend(); ++it)
        if (it->first == name) return it->second;
    return {};
}

bool PolicyRequest::has(std::string_view name) const {
    return std::any_of(attributes.begin(), attributes.end(), [&](const auto& a) { return a.first == name; });
}

Result<bool> PolicyReader::line(std::string_view text) {
    if (text.empty()) {
        if (req_.attributes.empty()) return Error{ErrorKind::data, "empty request (an empty line before any attribute)"};
        return true;
    }
    if (text.size() > limits_.line)
        return Error{ErrorKind::data, "line longer than " + std::to_string(limits_.line) + " octets"};
    octets_ += text.size() + 1;
    if (octets_ > limits_.request)
        return Error{ErrorKind::data, "request larger than " + std::to_string(limits_.request) + " octets"};
    if (req_.attributes.size() >= limits_.attributes)
        return Error{ErrorKind::data, "more than " + std::to_string(limits_.attributes) + " attributes in a request"};
    for (char ch : text)
        if ((static_cast<unsigned char>(ch) < 0x20 && ch != '\t') || ch == 0x7f)
            return Error{ErrorKind::data, "control character in '" + shown(text) + "'"};
    auto eq = text.find('=');
    if (eq == std::string_view::npos || eq == 0)
        return Error{ErrorKind::data, "not name=value: '" + shown(text) + "'"};
    req_.attributes.emplace_back(std::string(text.substr(0, eq)), std::string(text.substr(eq + 1)));
    return false;
}

PolicyRequest PolicyReader::take() {
    PolicyRequest r = std::move(req_);
    req_ = PolicyRequest{};
    octets_ = 0;
    return r;
}

std::string policy_action(const SmtpReply& r) {
    std::string code = std::to_string(r.code);
    std::string o = code;
    std::string status;  // the enhanced status code of the first line, said once
    for (std::size_t i = 0; i < r.lines.size(); ++i) {
        std::string_view l = r.lines[i];
        if (i == 0) {
            auto sp = l.find(' ');
            if (sp != std::string_view::npos && l.substr(0, sp).find('.') != std::string_view::npos)
                status = std::string(l.substr(0, sp + 1));
        } else if (!status.empty() && l.substr(0, status.size()) == status) {
            l.remove_prefix(status.size());
        }
        o += ' ';
        o += l;
    }
    for (char& ch : o)
        if (static_cast<unsigned char>(ch) < 0x20 || ch == 0x7f) ch = ' ';
    return o;
}

PolicySession::PolicySession(const PolicyConfig& config, Context& ctx, Store* store, std::string peer)
    : c_(config), ctx_(ctx), store_(store), no_dns_(config.resolver ? nullptr : no_answers_resolver()),
      peer_(std::move(peer)) {
    auth_.emplace(config.resolver ? *config.resolver : *no_dns_,
                  [this](std::string_view event, std::string_view identity, std::string_view detail) {
                      ctx_.logger().log(event == "forged" ? Level::notice : Level::info, event,
                                        {{"client", facts_.client}, {"helo", helo_},
                                         {"sender", facts_.sender.value_or("")}, {"identity", identity},
                                         {"results", detail}});
                  });
}

PolicySession::~PolicySession() { end_instance(); }

void PolicySession::end_instance() {
    if (!holds_.empty() && lookups_) {
        for (const auto& h : holds_) {
            lookups_->release(h.id, facts_.holder);
            ctx_.logger().log(seen_end_of_message ? Level::info : Level::warning, "token_release",
                              {{"client", facts_.client}, {"instance", instance_}, {"token", h.id},
                               {"reason", seen_end_of_message
                                              ? "the transaction ended before its END-OF-MESSAGE"
                                              : "no END-OF-MESSAGE request (smtpd_end_of_data_restrictions?)"}});
        }
    }
    holds_.clear();
    instance_.clear();
}

void PolicySession::begin(const PolicyRequest& req) {
    end_instance();
    instance_ = req.get("instance");
    facts_ = Facts{};
    client_ip_ = req.get("client_address");
    helo_ = req.get("helo_name");
    // The client as the proxy names it (HOST:PORT, [IPv6]:PORT), or the bare address without client_port.
    std::string port = req.get("client_port");
    facts_.client = client_ip_;
    if (!client_ip_.empty() && !port.empty())
        facts_.client = client_ip_.find(':') != std::string::npos ? "[" + client_ip_ + "]:" + port
                                                                  : client_ip_ + ":" + port;
    facts_.user = req.get("sasl_username");
    spf_done_ = false;
    auth_->reset();
    // Fresh lookups for each transaction: the protected domains are read once in each.
    gate_.reset();
    look_.reset();
    lookups_.reset();
    if (!store_) return;
    lookups_.emplace(*store_, c_.gate.delimiter, [this](std::int64_t id, std::int64_t t) {
        if (c_.hits) {
            c_.hits->add(id, t);
            c_.hits->flush(*store_, t);
        } else {
            (void)store_->wl_hit(id, t);  // a statistic: not worth refusing mail over
        }
    });
    look_.emplace(lookups_->lookups());
    look_->auth = &*auth_;
    gate_.emplace(c_.gate, *look_);
}

std::string PolicySession::answer(const PolicyRequest& req) {
    std::string state = req.get("protocol_state");
    // A request without an instance is a transaction of its own (Postfix always names one).
    std::string instance = req.get("instance");
    if (instance.empty() || instance != instance_ || !gate_) begin(req);
    if (state == "RCPT") return at_rcpt(req);
    if (state == "END-OF-MESSAGE") return at_end(req);
    return dunno;
}

std::string PolicySession::at_rcpt(const PolicyRequest& req) {
    std::string rcpt_text = req.get("recipient");
    std::string sender_text = req.get("sender");
    auto log_fields = [&](std::string_view event, Level lv, std::string_view rcpt, std::string_view reason,
                          std::string_view action) {
        ctx_.logger().log(lv, event, {{"client", facts_.client}, {"helo", helo_}, {"sender", sender_text},
                                      {"user", facts_.user}, {"rcpt", rcpt}, {"instance", instance_},
                                      {"reason", reason}, {"action", action}});
    };
    if (!gate_) {
        ctx_.logger().err("store", {{"client", facts_.client}, {"error", "no store connection"}});
        return try_later;
    }
    if (!facts_.sender) {
        if (!set_sender(facts_, sender_text, c_.trusted_forwarders)) {
            log_fields("reject", Level::notice, rcpt_text, "sender syntax", "553");
            return "553 5.1.7 bad sender address syntax";
        }
        Decision m = gate_->at_mail(facts_);
        if (m.outcome != Outcome::accept) {
            facts_.sender.reset();
            std::string action = policy_action(m.reply);
            log_fields(m.outcome == Outcome::refuse ? "reject" : "defer", Level::notice, rcpt_text, m.reason, action);
            return action;
        }
        auto holder = new_holder();
        if (!holder) {
            facts_.sender.reset();
            return try_later;
        }
        facts_.holder = *holder;
    }
    // An authenticated user's mail goes out: once it may use its sender, the admission core has no more to say.
    if (!facts_.user.empty()) return dunno;

    auto a = parse_path(rcpt_text);
    if (!a || a->empty() || a->domain.empty()) {
        log_fields("reject", Level::notice, rcpt_text, "syntax", "501");
        return "501 5.1.3 bad recipient address syntax";
    }
    std::string rcpt = normalize_address(*a);
    // Relaying is Postfix's to decide: a recipient outside the protected domains is none of ours.
    auto domains = lookups_->domains();
    if (!domains) {
        ctx_.logger().err("store", {{"client", facts_.client}, {"error", domains.error().text}});
        return try_later;
    }
    if (std::find(domains->begin(), domains->end(), rcpt.substr(rcpt.rfind('@') + 1)) == domains->end())
        return dunno;

    if (c_.spf && !spf_done_) {
        // SPF for the MAIL FROM identity (HELO's for the null sender), which whitelist hits need.
        auth::Client client{client_ip_, helo_};
        auth_->set_spf(auth::spf_at_mail(c_.resolver ? *c_.resolver : *no_dns_, client, *facts_.sender,
                                         c_.auth_settings));
        spf_done_ = true;
    }

    Decision d = gate_->at_rcpt(facts_, rcpt);
    if (d.hold && std::none_of(holds_.begin(), holds_.end(), [&](const TokenRecord& h) { return h.id == d.hold->id; }))
        holds_.push_back(*d.hold);
    if (d.busy) ctx_.logger().notice("token_busy", {{"client", facts_.client}, {"sender", sender_text}, {"rcpt", rcpt}});
    auto spf = auth_->spf_at_mail();
    if (d.auth_pending && spf && spf->result == spf::SpfResult::temperror) {
        // The message would have to decide (DKIM), and DNS failed for SPF: a retry, never a verdict.
        d.outcome = Outcome::tempfail;
        d.reply = SmtpReply(451, "4.7.0 cannot check the sender's authentication now (DNS), try again later");
        d.reason = "authentication lookup failed";
    } else if (d.outcome == Outcome::provisional && d.category == Category::unknown) {
        // Only the envelope is seen here: a whitelisted sender whose authentication the message would have
        // to decide (no SPF pass) is an unknown sender, refused with a token address like any other.
        std::vector<std::string> tokens, why;
        d.reply = gate_->token_refusal(facts_, {d.deliver_to}, false, tokens, why);
        d.outcome = d.reply.code == 550 ? Outcome::refuse : Outcome::tempfail;
        d.reason = d.auth_pending ? "whitelisted sender without an SPF pass" : why.empty() ? d.reason : why.front();
        if (!tokens.empty()) d.token = tokens.front();
    }
    switch (d.outcome) {
    case Outcome::refuse: {
        std::string action = policy_action(d.reply);
        ctx_.logger().notice("reject", {{"client", facts_.client}, {"helo", helo_}, {"sender", sender_text},
                                        {"rcpt", rcpt}, {"instance", instance_}, {"reason", d.reason},
                                        {"token", d.token}, {"reply", std::to_string(d.reply.code)}});
        return action;
    }
    case Outcome::tempfail: {
        std::string action = policy_action(d.reply);
        log_fields("defer", Level::warning, rcpt, d.reason, action);
        return action;
    }
    case Outcome::provisional:  // a non-delivery notice: Postfix's other restrictions decide
    case Outcome::accept: break;
    }
    log_fields("accept", Level::info, rcpt, d.reason, dunno);
    if (c_.claim_at_rcpt && d.hold) return claim();
    return dunno;
}

std::string PolicySession::claim() {
    while (!holds_.empty()) {
        TokenRecord rec = holds_.back();
        rec.changed = now();
        auto c = lookups_->claim(rec, facts_.holder);
        if (!c) {
            ctx_.logger().err("store", {{"client", facts_.client}, {"error", c.error().text}});
            return try_later;
        }
        if (c->has_value()) {
            ctx_.logger().notice("token_lost", {{"client", facts_.client}, {"instance", instance_},
                                                {"token", rec.id}, {"state", to_string(**c)}});
            holds_.pop_back();
            return "451 4.7.1 token address in use, try again later";
        }
        ctx_.logger().info("token_claim", {{"client", facts_.client}, {"instance", instance_}, {"token", rec.id}});
        holds_.pop_back();
    }
    return dunno;
}

std::string PolicySession::at_end(const PolicyRequest&) {
    seen_end_of_message = true;
    if (holds_.empty()) return dunno;
    if (!lookups_) return try_later;
    return claim();
}

Result<void> run_policy_session(Conn& conn, PolicySession& session, const PolicyLimits& limits,
                                const std::atomic<bool>* stop) {
    PolicyReader reader(limits);
    std::string buf;
    auto idle_until = Clock::now() + limits.idle;
    for (;;) {
        auto nl = buf.find('\n');
        if (nl == std::string::npos) {
            if (buf.size() > limits.line)
                return Error{ErrorKind::data, "line longer than " + std::to_string(limits.line) + " octets"};
            if (stop && *stop) return {};
            auto now_t = Clock::now();
            if (now_t >= idle_until)
                return Error{ErrorKind::tempfail, "idle for " + std::to_string(limits.idle.count() / 1000) + " s"};
            // Wake at least once a second to see stop.
            char tmp[4096];
            auto n = conn.read(tmp, sizeof tmp, std::min(idle_until, now_t + std::chrono::seconds(1)));
            if (!n) {
                if (n.error().text == "timeout") continue;
                return n.error();
            }
            if (*n == 0) {
                if (!reader.idle() || !buf.empty())
                    return Error{ErrorKind::data, "connection closed inside a request"};
                return {};
            }
            buf.append(tmp, *n);
            continue;
        }
        std::string_view line(buf.data(), nl);
        if (line.size() > limits.line)
            return Error{ErrorKind::data, "line longer than " + std::to_string(limits.line) + " octets"};
        if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
        auto r = reader.line(line);
        buf.erase(0, nl + 1);
        if (!r) return r.error();
        if (!*r) continue;
        PolicyRequest req = reader.take();
        if (req.get("request") != "smtpd_access_policy")
            return Error{ErrorKind::data, "not a policy request (want request=smtpd_access_policy)"};
        std::string reply = "action=" + session.answer(req) + "\n\n";
        if (auto w = conn.write(reply, Clock::now() + limits.idle); !w) return w.error();
        idle_until = Clock::now() + limits.idle;
    }
}

} // namespace mail
