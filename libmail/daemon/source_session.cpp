// msourced's SMTP session: SOURCE notices and plain DATA for the protected
// domains, GET for held outgoing messages (source.hpp, msourced(8)).
#include "libmail/daemon/source.hpp"

#include "libmail/mail/address.hpp"
#include "libmail/app/context.hpp"
#include "libmail/base/clock.hpp"
#include "libmail/base/limits.hpp"
#include "libmail/io/net.hpp"
#include "libmail/store/store.hpp"
#include "libmail/daemon/source_util.hpp"
#include "libmail/base/text.hpp"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <unistd.h>

namespace mail {

using source_detail::domain_of;
using source_detail::file_source;
using source_detail::hand_on;
using source_detail::id_tag;
using source_detail::ip_of;
using source_detail::received_field;
using source_detail::reply_text;

SourceSession::SourceSession(const SourcePolicy& policy, Context& ctx, Store& store, std::string client_address)
    : p_(policy), ctx_(ctx), store_(store), client_(std::move(client_address)), ip_(ip_of(client_)),
      cmds_(policy, ctx, store, client_) {}

SourceSession::~SourceSession() {
    if (delivery_) delivery_->close();
}

SmtpReply SourceSession::on_helo(std::string_view domain, bool) {
    helo_ = std::string(domain);
    return {250, p_.hostname};
}

void SourceSession::on_reset() {
    have_sender_ = false;
    sender_.clear();
    rcpts_.clear();
    data_.clear();
}

SmtpReply SourceSession::on_mail(const std::string& sender, const SmtpCommand&) {
    on_reset();
    if (!p_.deliver) return {550, "5.7.1 this server takes no mail; it only serves GET"};
    if (!sender.empty()) {
        auto a = parse_path(sender);
        if (!a) return {553, "5.1.7 malformed sender address"};
        sender_ = a->empty() ? "" : normalize_address(*a);
    }
    have_sender_ = true;
    return {250, "2.1.0 sender ok"};
}

SmtpReply SourceSession::on_rcpt(const std::string& rcpt, const SmtpCommand&) {
    auto a = parse_path(rcpt);
    if (!a || a->empty() || a->domain.empty()) return {553, "5.1.3 malformed recipient address"};
    // Routing forms are never taken: no relaying through us by any spelling.
    if (a->local.find_first_of("%!@\"") != std::string::npos || a->domain.front() == '[')
        return {554, "5.7.1 relay access denied"};
    if (!domains_) {
        auto d = store_.domain_list();
        if (!d) {
            ctx_.logger().err("store", {{"client", client_}, {"error", d.error().text}});
            return {451, "4.3.0 temporary failure, try again later"};
        }
        domains_ = std::move(*d);
    }
    std::string dom = normalize_domain(a->domain);
    if (std::find(domains_->begin(), domains_->end(), dom) == domains_->end()) {
        ctx_.logger().info("reject", {{"client", client_}, {"helo", helo_}, {"sender", sender_},
                                      {"rcpt", normalize_address(*a)}, {"reason", "relay denied"}});
        return {554, "5.7.1 relay access denied"};
    }
    std::string addr = normalize_address(*a);
    if (std::find(rcpts_.begin(), rcpts_.end(), addr) == rcpts_.end()) rcpts_.push_back(addr);
    return {250, "2.1.5 recipient ok"};
}

SmtpReply SourceSession::on_data() {
    data_.clear();
    return {354, "go ahead, end with <CRLF>.<CRLF> (or use SOURCE)"};
}

void SourceSession::on_data_chunk(std::string_view data) { data_.write(data, limits::header_size); }

SmtpReply SourceSession::on_data_end(std::string_view why) {
    if (!why.empty()) {
        on_reset();
        return {554, "5.6.0 message refused: " + std::string(why)};
    }
    std::vector<std::pair<std::string, std::string>> fields{
        {"X-Mailstamp-Source", "unverified; received by DATA from " + (ip_.empty() ? std::string("unknown") : ip_)},
        {"Received", received_field(helo_, ip_, p_.hostname, "ESMTP", rcpts_)},
    };
    auto d = hand_on(p_, delivery_, sender_, rcpts_, data_, fields);
    std::size_t size = data_.size();
    std::vector<std::string> rcpts = rcpts_;
    std::string sender = sender_;
    on_reset();
    if (!d || !d->accepted) {
        if (delivery_) {
            delivery_->close();
            delivery_.reset();
        }
        std::string why2 = d ? reply_text(d->reply) : d.error().text;
        ctx_.logger().warning("deliver", {{"client", client_}, {"sender", sender}, {"result", "deferred"}, {"error", why2}});
        if (d && d->reply.code >= 500) return {554, "5.6.0 refused downstream"};
        if (!d && d.error().kind == ErrorKind::data) return {554, "5.6.0 " + d.error().text};
        return {451, "4.3.0 could not deliver now, try again later"};
    }
    ctx_.logger().info("deliver", {{"client", client_}, {"helo", helo_}, {"sender", sender},
                                   {"rcpts", static_cast<long>(rcpts.size())}, {"class", "unverified"},
                                   {"size", static_cast<long>(size)}, {"where", d->where}});
    return {250, "2.0.0 message accepted"};
}

bool SourceSession::on_auth(std::string_view, std::string_view, std::string_view) { return false; }

void SourceSession::on_protocol_error(std::string_view what) {
    ctx_.logger().info("protocol", {{"client", client_}, {"error", what}});
}

std::vector<std::string> SourceSession::ehlo_keywords() { return {std::string(source_keyword)}; }

std::optional<SmtpExtensionReply> SourceSession::on_extension(const SmtpCommand& cmd, const SmtpSessionState& s) {
    if (cmd.word == "SOURCE") {
        auto r = cmds_.source(cmd, s, helo_, sender_, rcpts_);
        if (r.reply.code / 100 == 2) on_reset();
        return r;
    }
    if (cmd.word == "GET") return cmds_.get(cmd, s, helo_);
    return std::nullopt;
}

// ---- SOURCE and GET (every session that offers the extension) ----

SourceCommands::SourceCommands(const SourcePolicy& policy, Context& ctx, Store& store, std::string client_address)
    : p_(policy), ctx_(ctx), store_(store), client_(std::move(client_address)), ip_(ip_of(client_)) {}

Result<bool> SourceCommands::rate_ok(std::string_view what) {
    return store_.rate_hit(std::string(what) + " " + client_key(ip_), now(), p_.rate_window, p_.get_limit);
}

// A notice makes us connect to the sender domain's MX: taken only from that MX (an --mx-map entry counts as
// the MX), or anyone could point our fetches at a third party. A session on a pipe (a local user running
// msourced) has no client address and is trusted like the store it could write directly.
std::optional<SmtpReply> SourceCommands::check_mx_client(const std::string& domain, const std::string& helo,
                                                         const std::string& sender) {
    if (!same_address(ip_, ip_)) return std::nullopt;  // not a numeric address: no network client
    // Taken as soon as the client's address is one that resolved: a failed lookup of another host (a server
    // that drops AAAA queries) does not matter then. 451 only when none matched and some lookup failed.
    const std::string ip = ip_;
    auto targets = mail_targets(domain, p_.mx_map, p_.mx_port, p_.timeout,
                                [&ip](const MailTarget& t) { return is_target_address({t}, ip); }, p_.resolver);
    auto cannot_tell = [&](const std::string& error) {
        ctx_.logger().notice("source", {{"client", client_}, {"sender", sender}, {"result", "deferred"}, {"error", error}});
        return SmtpReply(451, "4.4.3 cannot tell now whether " + ip_ + " is an MX of " + domain + "; try again later");
    };
    std::string why;
    if (!targets) {
        if (targets.error().kind == ErrorKind::tempfail) return cannot_tell(targets.error().text);
        why = targets.error().text;
    } else if (is_target_address(*targets, ip_)) {
        return std::nullopt;
    } else {
        for (const auto& t : *targets)
            if (!t.error.empty()) return cannot_tell(t.error);
        why = "client is not an MX of the sender's domain";
    }
    ctx_.logger().notice("source", {{"client", client_}, {"helo", helo}, {"sender", sender}, {"result", "refused"},
                                    {"error", why}});
    return SmtpReply(550, "5.7.1 SOURCE is taken only from an MX of " + domain + "; " + ip_ + " is none: use DATA");
}

SmtpExtensionReply SourceCommands::source(const SmtpCommand& cmd, const SmtpSessionState& s, const std::string& helo,
                                          const std::string& sender, const std::vector<std::string>& rcpts) {
    if (!s.in_transaction) return {SmtpReply(503, "5.5.1 need MAIL before SOURCE"), false, {}};
    if (s.rcpts == 0) return {SmtpReply(554, "5.5.1 no valid recipients"), false, {}};
    if (!valid_source_id(cmd.arg)) return {SmtpReply(501, "5.5.4 Syntax: SOURCE <32 hex digits>"), false, {}};
    if (sender.empty()) return {SmtpReply(550, "5.7.1 SOURCE needs a sender domain to fetch from; use DATA"), false, {}};
    if (!normalize_mail_domain(domain_of(sender)))
        return {SmtpReply(550, "5.7.1 the sender's domain has no MX to fetch from; use DATA"), false, {}};
    auto ok = rate_ok("source");
    if (!ok) return {SmtpReply(451, "4.3.0 temporary failure, try again later"), false, {}};
    if (!*ok) return {SmtpReply(450, "4.7.1 too many notices, try again later"), false, {}};
    if (auto refused = check_mx_client(domain_of(sender), helo, sender)) return {*refused, false, {}};
    std::int64_t t = now();
    SourceIn in;
    in.id = lower(cmd.arg);
    in.domain = domain_of(sender);
    in.sender = sender;
    in.rcpts = rcpts;
    in.client = client_;
    in.helo = helo;
    in.received = t;
    in.expires = t + p_.partial_time;
    in.next_try = t;
    auto added = store_.source_in_add(in);
    if (!added) {
        ctx_.logger().err("store", {{"client", client_}, {"error", added.error().text}});
        return {SmtpReply(451, "4.3.0 temporary failure, try again later"), false, {}};
    }
    ctx_.logger().info("source", {{"client", client_}, {"helo", helo}, {"sender", sender}, {"id", id_tag(in.id)},
                                  {"rcpts", static_cast<long>(rcpts.size())}, {"new", *added}});
    if (p_.wake) p_.wake();
    return {SmtpReply(250, "2.6.0 " + in.id + " noted; the message will be fetched from the MX of " + in.domain), true, {}};
}

SmtpExtensionReply SourceCommands::get(const SmtpCommand& cmd, const SmtpSessionState& s, const std::string& helo) {
    if (!s.greeted) return {SmtpReply(503, "5.5.1 send HELO or EHLO first"), false, {}};
    if (s.in_transaction) return {SmtpReply(503, "5.5.1 GET is not allowed in a transaction"), false, {}};
    if (cmd.arg.empty()) return {SmtpReply(501, "5.5.4 Syntax: GET <id>"), false, {}};
    auto ok = rate_ok("get");
    if (!ok) return {SmtpReply(451, "4.3.0 temporary failure, try again later"), false, {}};
    if (!*ok) {
        ctx_.logger().notice("get", {{"client", client_}, {"result", "rate limited"}});
        return {SmtpReply(450, "4.7.1 too many GET commands, try again later"), false, {}};
    }
    // Unknown, malformed, expired and exhausted ids get the same answer: nothing tells them apart.
    const SmtpReply none(550, "5.7.1 no message by that id");
    if (!valid_source_id(cmd.arg)) return {none, false, {}};
    auto row = store_.source_out_get(lower(cmd.arg), now());
    if (!row) {
        ctx_.logger().err("store", {{"client", client_}, {"error", row.error().text}});
        return {SmtpReply(451, "4.3.0 temporary failure, try again later"), false, {}};
    }
    if (!*row) {
        ctx_.logger().info("get", {{"client", client_}, {"result", "refused"}});
        return {none, false, {}};
    }
    if (::access((*row)->path.c_str(), R_OK) != 0) {
        ctx_.logger().err("get", {{"client", client_}, {"id", id_tag((*row)->id)}, {"error", (*row)->path + ": " + std::strerror(errno)}});
        return {SmtpReply(451, "4.3.0 temporary failure, try again later"), false, {}};
    }
    ctx_.logger().info("get", {{"client", client_}, {"helo", helo}, {"id", id_tag((*row)->id)}, {"domain", (*row)->domain},
                               {"result", "served"}, {"gets", (*row)->gets}, {"size", (*row)->size}});
    return {SmtpReply(250, "2.6.0 message follows, " + std::to_string((*row)->size) + " octets, ended by <CRLF>.<CRLF>"),
            false, file_source((*row)->path)};
}

} // namespace mail
