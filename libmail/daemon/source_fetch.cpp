// msourced's receiving side: fetching a domain's partial messages by GET from its MX and delivering them,
// with a copy kept when the delivery fails after the GET (source_util.hpp, msourced(8)).
#include "libmail/daemon/source_util.hpp"

#include "libmail/mail/address.hpp"
#include "libmail/app/context.hpp"
#include "libmail/base/clock.hpp"
#include "libmail/base/limits.hpp"
#include "libmail/store/store.hpp"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <sys/stat.h>
#include <unistd.h>

namespace mail::source_detail {

namespace {

// The longest a GET reply's data may take, beyond the per-read timeout: a peer dripping octets is cut off.
constexpr std::int64_t get_data_time = 600;

// The copy: one line naming the MX it came from, then the message as fetched.
Result<void> keep_fetched(const SourcePolicy& p, const SourceIn& s, const HeadSpool& msg, const std::string& mx) {
    std::string path = fetched_path(p, s);
    if (path.empty()) return Error{ErrorKind::tempfail, "no file name for " + s.domain};
    if (::mkdir(p.hold_dir.c_str(), 0700) != 0 && errno != EEXIST)
        return Error{ErrorKind::tempfail, p.hold_dir + ": " + std::strerror(errno)};
    return write_atomically(p.hold_dir + "/.fetched-" + s.id + ".tmp", path, p.hold_dir,
                            [&](const std::function<Result<void>(std::string_view)>& write) -> Result<void> {
                                if (auto w = write("mx=" + mx + "\n"); !w) return w;
                                if (auto w = write(msg.head()); !w) return w;
                                return msg.body().each(write);
                            });
}

} // namespace

// Fetches the partial messages in rows (all from one domain) from that domain's MX.
void fetch_domain(const SourcePolicy& p, Context& ctx, Store& store, const std::string& domain,
                  std::vector<SourceIn>& rows, SourcePass& pass, std::unique_ptr<Delivery>& delivery) {
    const std::int64_t claimed = now();
    auto defer = [&](SourceIn& s, const std::string& why) {
        (void)store.source_in_retry(s.domain, s.id, s.tries + 1, now() + backoff(p, s.tries + 1), why);
        ++pass.deferred;
        ctx.logger().info("fetch", {{"id", id_tag(s.id)}, {"domain", domain}, {"sender", s.sender},
                                    {"result", "deferred"}, {"error", why}});
    };
    auto drop = [&](SourceIn& s, const std::string& why) {
        (void)store.source_in_remove(s.domain, s.id);
        if (auto f = fetched_path(p, s); !f.empty()) ::unlink(f.c_str());
        ++pass.refused;
        ctx.logger().notice("fetch", {{"id", id_tag(s.id)}, {"domain", domain}, {"sender", s.sender},
                                      {"client", s.client}, {"result", "refused"}, {"error", why}});
    };
    auto give_back = [&](std::size_t from) {
        for (std::size_t j = from; j < rows.size(); ++j)
            (void)store.source_in_retry(rows[j].domain, rows[j].id, rows[j].tries, now(), rows[j].note);
    };
    // Delivers msg for s; true when s is finished with (delivered, or dropped for good).
    auto deliver = [&](SourceIn& s, const HeadSpool& msg, const std::string& mx, bool from_copy) {
        std::vector<std::pair<std::string, std::string>> fields{
            {"X-Mailstamp-Source", "verified; domain=" + domain + "; mx=" + mx + "; id=" + s.id},
            {"Received", received_field(mx.substr(0, mx.rfind(':')), mx, p.hostname, "SOURCE/GET id " + s.id, s.rcpts)},
        };
        // Through the admission core when the proxy fetched it (its own fields then), else straight on.
        auto d = p.admit ? p.admit(ctx, store, s, msg, mx) : hand_on(p, delivery, s.sender, s.rcpts, msg, fields);
        if (!d || !d->accepted) {
            std::string why = d ? "delivery: " + reply_text(d->reply) : "delivery: " + d.error().text;
            if (delivery) {
                delivery->close();
                delivery.reset();
            }
            if ((d && d->reply.code >= 500) || (!d && d.error().kind == ErrorKind::data)) {
                drop(s, why);
                return;
            }
            if (!from_copy) {
                if (auto k = keep_fetched(p, s, msg, mx); !k) why += "; the fetched copy was not kept: " + k.error().text;
            }
            defer(s, why);
            return;
        }
        (void)store.source_in_remove(s.domain, s.id);
        if (auto f = fetched_path(p, s); !f.empty()) ::unlink(f.c_str());
        ++pass.fetched;
        ctx.logger().info("fetch", {{"id", id_tag(s.id)}, {"domain", domain}, {"sender", s.sender},
                                    {"rcpts", static_cast<long>(s.rcpts.size())}, {"mx", mx}, {"result", "delivered"},
                                    {"size", static_cast<long>(msg.size())}, {"where", d->where}});
    };

    // Messages fetched before whose delivery failed: from their copies, no connection needed.
    std::vector<SourceIn> need;
    for (std::size_t i = 0; i < rows.size(); ++i) {
        SourceIn& s = rows[i];
        std::string f = fetched_path(p, s);
        if (f.empty() || ::access(f.c_str(), R_OK) != 0) {
            need.push_back(s);
            continue;
        }
        HeadSpool msg;
        std::string first;
        bool in_body = false;
        if (auto r = read_file(f, [&](std::string_view piece) -> Result<void> {
                if (!in_body) {
                    auto nl = piece.find('\n');
                    first.append(piece.substr(0, nl));
                    if (first.size() > 600) return Error{ErrorKind::data, f + ": not a fetched copy"};
                    if (nl == std::string_view::npos) return {};
                    in_body = true;
                    piece.remove_prefix(nl + 1);
                }
                msg.write(piece, limits::header_size);
                return {};
            });
            !r || first.rfind("mx=", 0) != 0) {
            defer(s, r ? f + ": not a fetched copy" : r.error().text);
            continue;
        }
        deliver(s, msg, first.substr(3), true);
    }
    if (need.empty()) return;
    rows = std::move(need);

    // At most fetch_limit GETs per sender domain and window: a flood of notices naming one domain must not
    // turn us into a client hammering its MX.
    auto limited = [&](std::size_t from) {
        auto ok = store.rate_hit("fetch:" + domain, now(), p.rate_window, p.fetch_limit);
        if (ok && *ok) return false;
        std::int64_t next = (now() / p.rate_window + 1) * p.rate_window;
        std::string why = ok ? "fetch limit for " + domain + " reached (" + std::to_string(p.fetch_limit) + " per " +
                                   std::to_string(p.rate_window) + "s)"
                             : "fetch limit: " + ok.error().text;
        for (std::size_t j = from; j < rows.size(); ++j) {
            (void)store.source_in_retry(rows[j].domain, rows[j].id, rows[j].tries, std::max(next, now() + 1), why);
            ++pass.deferred;
            ctx.logger().info("fetch", {{"id", id_tag(rows[j].id)}, {"domain", domain}, {"sender", rows[j].sender},
                                        {"result", "deferred"}, {"error", why}});
        }
        return true;
    };
    if (limited(0)) return;
    auto conn = connect_domain(p, domain, true);
    if (!conn) {
        for (auto& s : rows) {
            if (conn.error().kind == ErrorKind::rejected) drop(s, conn.error().text);
            else defer(s, conn.error().text);
        }
        return;
    }
    auto& [client, hp] = *conn;
    const std::string mx = host_port_text(hp);
    for (std::size_t i = 0; i < rows.size(); ++i) {
        SourceIn& s = rows[i];
        if (stopping(p) || now() - claimed > claim_lease / 2) return give_back(i);
        auto lost = [&](const std::string& why) {
            defer(s, why);
            for (std::size_t j = i + 1; j < rows.size(); ++j) defer(rows[j], "connection lost");
        };
        if (i > 0 && limited(i)) {
            client->quit();
            return;
        }
        auto r = client->command("GET " + s.id);
        if (!r) return lost(mx + ": " + r.error().text);
        if (r->code != 250) {
            if (r->code >= 500) drop(s, mx + ": GET: " + reply_text(*r));
            else defer(s, mx + ": GET: " + reply_text(*r));
            continue;
        }
        HeadSpool msg;
        auto until = std::chrono::steady_clock::now() + p.timeout + std::chrono::seconds(get_data_time);
        auto got = client->read_message(p.smtp.bare_newline, p.max_message_size, until, [&](std::string_view piece) -> Result<void> {
            msg.write(piece, limits::header_size);
            return {};
        });
        if (!got) {
            if (got.error().kind == ErrorKind::tempfail) return lost(mx + ": " + got.error().text);
            drop(s, mx + ": " + got.error().text);
            continue;
        }
        deliver(s, msg, mx, false);
    }
    client->quit();
}

} // namespace mail::source_detail
