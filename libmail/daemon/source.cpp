// msourced: sending, the passes, expiry and the queue (source.hpp, msourced(8)); fetching a domain's
// partial messages is in source_fetch.cpp, the SMTP session in source_session.cpp.
#include "libmail/daemon/source.hpp"

#include "libmail/mail/address.hpp"
#include "libmail/app/context.hpp"
#include "libmail/base/clock.hpp"
#include "libmail/base/limits.hpp"
#include "libmail/mail/message.hpp"
#include "libmail/policy/postage.hpp"
#include "libmail/io/smtp_client.hpp"
#include "libmail/daemon/source_util.hpp"
#include "libmail/store/store.hpp"
#include "libmail/policy/verify.hpp"
#include "libmail/policy/whitelist.hpp"

#include <openssl/rand.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <istream>
#include <map>
#include <ostream>
#include <sstream>
#include <sys/stat.h>
#include <unistd.h>

namespace mail {

using source_detail::backoff;
using source_detail::claim_lease;
using source_detail::connect_domain;
using source_detail::fetch_domain;
using source_detail::fetched_path;
using source_detail::file_source;
using source_detail::hand_on;
using source_detail::host_port_text;
using source_detail::id_tag;
using source_detail::reply_text;
using source_detail::stopping;

namespace {

// Claims the due rows of one domain just before they are worked on: of two passes, each row goes to one.
template <class Row, class Claim>
Result<std::vector<Row>> claim_rows(std::vector<Row>& due, std::int64_t t, const Claim& claim) {
    std::vector<Row> mine;
    for (auto& r : due) {
        auto c = claim(r, t, t + claim_lease);
        if (!c) return c.error();
        if (*c) mine.push_back(std::move(r));
    }
    return mine;
}

// Gives the notices of rows (all for one domain) to that domain's MX.
void notify_domain(const SourcePolicy& p, Context& ctx, Store& store, const std::string& domain,
                   std::vector<SourceOut>& rows, SourcePass& pass) {
    const std::int64_t claimed = now();
    auto defer = [&](SourceOut& o, const std::string& why, bool permanent) {
        std::int64_t t = now();
        if (permanent) {
            (void)store.source_out_update(o.id, "failed", o.tries + 1, 0, why);
            ++pass.refused;
        } else {
            (void)store.source_out_update(o.id, "queued", o.tries + 1, t + backoff(p, o.tries + 1), why);
            ++pass.deferred;
        }
        ctx.logger().info("notice", {{"id", id_tag(o.id)}, {"domain", domain}, {"sender", o.sender},
                                     {"result", permanent ? "failed" : "deferred"}, {"error", why}});
    };
    // Rows not reached (stopping, or the lease half gone) go back as they were, due at once.
    auto give_back = [&](std::size_t from) {
        for (std::size_t j = from; j < rows.size(); ++j)
            (void)store.source_out_update(rows[j].id, "queued", rows[j].tries, now(), rows[j].note);
    };
    auto conn = connect_domain(p, domain, false);
    if (!conn) {
        for (auto& o : rows) defer(o, conn.error().text, conn.error().kind == ErrorKind::rejected);
        return;
    }
    auto& [client, hp] = *conn;
    const std::string mx = host_port_text(hp);
    const bool source = client->has_extension(source_keyword);
    for (std::size_t i = 0; i < rows.size(); ++i) {
        SourceOut& o = rows[i];
        if (stopping(p) || now() - claimed > claim_lease / 2) return give_back(i);
        if (client->dead()) {
            defer(o, "connection lost", false);
            continue;
        }
        // A bounce (null sender) has no domain to be fetched back from: it goes by DATA.
        bool by_source = source && !o.sender.empty();
        auto r = by_source ? client->send_source(o.sender, o.rcpts, o.id) : client->send(o.sender, o.rcpts, file_source(o.path));
        // A receiver that refuses our notice (we are not an MX of the sender's domain it trusts) still takes
        // the message by DATA, marked unverified: a refused notice must not lose the message.
        if (by_source && r && !r->accepted && r->stage == "source" && r->reply.code >= 500 && !client->dead()) {
            ctx.logger().info("notice", {{"id", id_tag(o.id)}, {"domain", domain}, {"mx", mx}, {"result", "refused"},
                                         {"reply", reply_text(r->reply)}, {"then", "DATA"}});
            by_source = false;
            r = client->send(o.sender, o.rcpts, file_source(o.path));
        }
        if (!r) {
            defer(o, mx + ": " + r.error().text, false);
            for (std::size_t j = i + 1; j < rows.size(); ++j) defer(rows[j], "connection lost", false);
            return;
        }
        if (!r->accepted) {
            defer(o, mx + ": " + r->stage + ": " + reply_text(r->reply), r->reply.code >= 500);
            continue;
        }
        const char* state = by_source ? "notified" : "sent";
        // The note keeps the code only: a peer's text may quote the id, and notes are shown and logged.
        (void)store.source_out_update(o.id, state, o.tries + 1, 0, mx + ": " + std::to_string(r->reply.code));
        ++(by_source ? pass.notified : pass.sent);
        ctx.logger().info("notice", {{"id", id_tag(o.id)}, {"domain", domain}, {"sender", o.sender},
                                     {"rcpts", static_cast<long>(o.rcpts.size())}, {"mx", mx}, {"result", state},
                                     {"reply", std::to_string(r->reply.code)}});
    }
    client->quit();
}

// The notices that are due (or only those in ids), domain by domain.
Result<void> give_notices(const SourcePolicy& p, Context& ctx, Store& store, const std::vector<std::string>* ids,
                          SourcePass& pass) {
    auto rows = store.source_out_list();
    if (!rows) return rows.error();
    std::int64_t t = now();
    std::map<std::string, std::vector<SourceOut>> by_domain;
    for (auto& o : *rows) {
        if (o.state != "queued" || o.next_try > t || o.expires <= t) continue;
        if (ids && std::find(ids->begin(), ids->end(), o.id) == ids->end()) continue;
        by_domain[o.domain].push_back(std::move(o));
    }
    for (auto& [domain, due] : by_domain) {
        if (stopping(p)) break;
        auto mine = claim_rows(due, now(), [&](const SourceOut& o, std::int64_t at, std::int64_t until) {
            return store.source_out_claim(o.id, at, until);
        });
        if (!mine) return mine.error();
        if (!mine->empty()) notify_domain(p, ctx, store, domain, *mine, pass);
    }
    return {};
}

Result<void> remove_file_if_unused(Store& store, const std::string& path) {
    auto uses = store.source_out_path_uses(path);
    if (!uses) return uses.error();
    if (*uses == 0 && ::unlink(path.c_str()) != 0 && errno != ENOENT)
        return Error{ErrorKind::tempfail, path + ": " + std::strerror(errno)};
    return {};
}

} // namespace

// ---- sending, passes, expiry, queue ----

Result<SourcePass> source_send(const SourcePolicy& p, Context& ctx, Store& store, const std::string& sender,
                               const std::vector<std::string>& rcpts, std::istream& in) {
    if (rcpts.empty()) return Error{ErrorKind::usage, "no recipients"};
    std::map<std::string, std::vector<std::string>> by_domain;
    for (const auto& r : rcpts) {
        auto a = parse_path(r);
        if (!a || a->empty() || a->domain.empty()) return Error{ErrorKind::usage, "'" + r + "' is not an address"};
        by_domain[normalize_domain(a->domain)].push_back(normalize_address(*a));
    }
    std::string from;
    if (!sender.empty()) {
        auto a = parse_path(sender);
        if (!a || a->empty() || a->domain.empty()) return Error{ErrorKind::usage, "'" + sender + "' is not an address"};
        from = normalize_address(*a);
    }
    if (::mkdir(p.hold_dir.c_str(), 0700) != 0 && errno != EEXIST)
        return Error{ErrorKind::tempfail, p.hold_dir + ": " + std::strerror(errno)};
    const std::string name = make_source_id();
    const std::string path = p.hold_dir + "/" + name;
    std::size_t size = 0;
    auto w = write_atomically(p.hold_dir + "/." + name + ".tmp", path, p.hold_dir,
                              [&](const std::function<Result<void>(std::string_view)>& write) -> Result<void> {
                                  char buf[65536];
                                  while (in.read(buf, sizeof buf) || in.gcount() > 0) {
                                      size += static_cast<std::size_t>(in.gcount());
                                      if (size > p.max_message_size)
                                          return Error{ErrorKind::data, "message over " + std::to_string(p.max_message_size) + " octets"};
                                      if (auto r = write(std::string_view(buf, static_cast<std::size_t>(in.gcount()))); !r) return r;
                                  }
                                  if (in.bad()) return Error{ErrorKind::tempfail, "reading the message failed"};
                                  return {};
                              });
    if (!w) return w.error();
    std::int64_t t = now();
    std::vector<std::string> ids;
    auto tx = store.transaction([&]() -> Result<void> {
        for (const auto& [domain, list] : by_domain) {
            SourceOut o;
            o.id = make_source_id();
            o.domain = domain;
            o.sender = from;
            o.rcpts = list;
            o.path = path;
            o.size = static_cast<std::int64_t>(size);
            o.created = t;
            o.expires = t + p.hold_time;
            o.max_gets = p.max_gets;
            o.state = "queued";
            o.next_try = t;
            auto a = store.source_out_add(o);
            if (!a) return a.error();
            ids.push_back(o.id);
        }
        return {};
    });
    if (!tx) {
        ::unlink(path.c_str());
        return tx.error();
    }
    for (std::size_t i = 0; i < ids.size(); ++i)
        ctx.logger().info("hold", {{"id", id_tag(ids[i])}, {"sender", from}, {"size", static_cast<long>(size)}});
    // Held and recorded: from here on the message is ours to deliver, whatever the notices do now (a
    // failure here is retried by later passes; exiting 75 would make the MTA hold it a second time).
    SourcePass pass;
    if (auto g = give_notices(p, ctx, store, &ids, pass); !g)
        ctx.logger().warning("notice", {{"result", "deferred"}, {"error", g.error().text}});
    return pass;
}

Result<SourcePass> source_pass(const SourcePolicy& p, Context& ctx, Store& store) {
    SourcePass pass;
    if (auto g = give_notices(p, ctx, store, nullptr, pass); !g) return g.error();
    auto rows = store.source_in_list();
    if (!rows) return rows.error();
    std::int64_t t = now();
    std::map<std::string, std::vector<SourceIn>> by_domain;
    for (auto& s : *rows)
        if (s.next_try <= t && s.expires > t) by_domain[s.domain].push_back(std::move(s));
    std::unique_ptr<Delivery> delivery;
    for (auto& [domain, due] : by_domain) {
        if (stopping(p)) break;
        auto mine = claim_rows(due, now(), [&](const SourceIn& s, std::int64_t at, std::int64_t until) {
            return store.source_in_claim(s.domain, s.id, at, until);
        });
        if (!mine) return mine.error();
        if (!mine->empty()) fetch_domain(p, ctx, store, domain, *mine, pass, delivery);
    }
    if (delivery) delivery->close();
    // When the daemon's next pass is due: the earliest retry of what is still waiting.
    auto due = [&](std::int64_t at) {
        if (at > 0 && (pass.next_due == 0 || at < pass.next_due)) pass.next_due = at;
    };
    if (auto o = store.source_out_list())
        for (const auto& r : *o)
            if (r.state == "queued" && r.expires > t) due(std::max(r.next_try, t));
    if (auto i = store.source_in_list())
        for (const auto& r : *i)
            if (r.expires > t) due(std::max(r.next_try, t));
    return pass;
}

Result<SourceExpiry> source_expire(const SourcePolicy& p, Context& ctx, Store& store) {
    SourceExpiry ex;
    std::int64_t t = now();
    auto out = store.source_out_list();
    if (!out) return out.error();
    for (const auto& o : *out) {
        if (o.expires > t) continue;
        auto r = store.source_out_remove(o.id);
        if (!r) return r.error();
        if (!*r) continue;
        ++ex.held;
        if (auto u = remove_file_if_unused(store, o.path); !u) return u.error();
        // A message that never left (still queued) is gone now: a warning, with the last error saying why.
        if (o.state == "queued")
            ctx.logger().warning("expire", {{"id", id_tag(o.id)}, {"direction", "out"}, {"state", o.state}, {"domain", o.domain},
                                            {"sender", o.sender}, {"tries", o.tries},
                                            {"error", o.note.empty() ? "never tried" : o.note}});
        else
            ctx.logger().info("expire", {{"id", id_tag(o.id)}, {"direction", "out"}, {"state", o.state}, {"gets", o.gets}});
    }
    auto in = store.source_in_list();
    if (!in) return in.error();
    std::unique_ptr<Delivery> delivery;
    for (const auto& s : *in) {
        if (s.expires > t) continue;
        if (p.expired_notify && p.deliver) {
            // The body never came: what is known is the envelope. It goes to the recipients marked unverified.
            std::string text =
                "From: Mail Delivery Subsystem <MAILER-DAEMON@" + p.hostname + ">\r\n"
                "To: " + (s.rcpts.size() == 1 ? "<" + s.rcpts.front() + ">" : std::string("undisclosed-recipients:;")) + "\r\n"
                "Subject: [unverified] a message from " + (s.sender.empty() ? "<>" : s.sender) + " could not be fetched\r\n"
                "Date: " + rfc5322_date(t) + "\r\n"
                "Auto-Submitted: auto-generated\r\n"
                "MIME-Version: 1.0\r\n"
                "Content-Type: text/plain; charset=us-ascii\r\n\r\n"
                "A message from <" + s.sender + "> was announced by " + s.client + " (HELO " + s.helo + ") on " +
                rfc5322_date(s.received) + "\r\nwith SOURCE " + s.id + ", but its body could not be fetched from the MX of " +
                s.domain + "\r\nbefore the notice expired. Last error: " + (s.note.empty() ? "none" : s.note) +
                "\r\n\r\nNothing of its content is known. It may have been forged.\r\n";
            HeadSpool msg;
            msg.write(text, limits::header_size);
            std::vector<std::pair<std::string, std::string>> fields{
                {"X-Mailstamp-Source", "unverified; expired; domain=" + s.domain + "; id=" + s.id}};
            auto d = hand_on(p, delivery, "", s.rcpts, msg, fields);
            const bool refused = (d && !d->accepted && d->reply.code >= 500) || (!d && d.error().kind == ErrorKind::data);
            if (refused) {
                ctx.logger().warning("expire", {{"id", id_tag(s.id)}, {"direction", "in"}, {"result", "notice refused"},
                                                {"error", d ? reply_text(d->reply) : d.error().text}});
            } else if (!d || !d->accepted) {
                // Kept for the next expire run: the recipients are owed the notice.
                ctx.logger().warning("expire", {{"id", id_tag(s.id)}, {"direction", "in"}, {"result", "deferred"},
                                                {"error", d ? reply_text(d->reply) : d.error().text}});
                if (delivery) {
                    delivery->close();
                    delivery.reset();
                }
                continue;
            } else {
                ++ex.notices;
            }
        }
        auto r = store.source_in_remove(s.domain, s.id);
        if (!r) return r.error();
        if (!*r) continue;
        ++ex.partial;
        // A copy fetched but never delivered goes with its row; the log says so.
        const std::string copy = fetched_path(p, s);
        const bool had_copy = !copy.empty() && ::unlink(copy.c_str()) == 0;
        ctx.logger().info("expire", {{"id", id_tag(s.id)}, {"direction", "in"}, {"domain", s.domain}, {"sender", s.sender},
                                     {"result", p.expired_notify && p.deliver ? "notice" : "dropped"},
                                     {"fetched_copy", had_copy ? "dropped" : "none"}});
    }
    if (delivery) delivery->close();
    return ex;
}

Result<void> source_queue(Store& store, bool json, std::ostream& out) {
    auto o = store.source_out_list();
    if (!o) return o.error();
    auto in = store.source_in_list();
    if (!in) return in.error();
    auto list = [](const std::vector<std::string>& v) {
        std::string s = "[";
        for (std::size_t i = 0; i < v.size(); ++i) s += (i ? "," : "") + json_string(v[i]);
        return s + "]";
    };
    if (json) {
        out << "[";
        bool first = true;
        for (const auto& r : *o) {
            out << (first ? "" : ",") << "{\"direction\":\"out\",\"id\":" << json_string(r.id)
                << ",\"domain\":" << json_string(r.domain) << ",\"state\":" << json_string(r.state)
                << ",\"sender\":" << json_string(r.sender) << ",\"rcpts\":" << list(r.rcpts) << ",\"size\":" << r.size
                << ",\"gets\":" << r.gets << ",\"max_gets\":" << r.max_gets << ",\"tries\":" << r.tries
                << ",\"created\":" << json_string(format_time(r.created)) << ",\"expires\":" << json_string(format_time(r.expires))
                << ",\"next_try\":" << json_string(r.next_try ? format_time(r.next_try) : "")
                << ",\"note\":" << json_string(r.note) << "}";
            first = false;
        }
        for (const auto& r : *in) {
            out << (first ? "" : ",") << "{\"direction\":\"in\",\"id\":" << json_string(r.id)
                << ",\"domain\":" << json_string(r.domain) << ",\"state\":\"partial\",\"sender\":" << json_string(r.sender)
                << ",\"rcpts\":" << list(r.rcpts) << ",\"client\":" << json_string(r.client)
                << ",\"helo\":" << json_string(r.helo) << ",\"tries\":" << r.tries
                << ",\"received\":" << json_string(format_time(r.received)) << ",\"expires\":" << json_string(format_time(r.expires))
                << ",\"next_try\":" << json_string(format_time(r.next_try)) << ",\"note\":" << json_string(r.note) << "}";
            first = false;
        }
        out << "]\n";
        return {};
    }
    for (const auto& r : *o)
        out << "out\t" << r.id << '\t' << r.state << '\t' << r.domain << '\t' << r.gets << '/' << r.max_gets << '\t'
            << format_time(r.expires) << '\t' << (r.sender.empty() ? "<>" : r.sender) << '\t' << r.rcpts.size()
            << (r.note.empty() ? "" : "\t" + r.note) << '\n';
    for (const auto& r : *in)
        out << "in\t" << r.id << "\tpartial\t" << r.domain << '\t' << r.tries << '\t' << format_time(r.expires) << '\t'
            << (r.sender.empty() ? "<>" : r.sender) << '\t' << r.rcpts.size() << (r.note.empty() ? "" : "\t" + r.note) << '\n';
    return {};
}

} // namespace mail
