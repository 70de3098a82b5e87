// Helpers shared by msourced's two halves: see source_util.hpp.
#include "libmail/daemon/source_util.hpp"

#include "libmail/base/clock.hpp"
#include "libmail/mail/address.hpp"
#include "libmail/mail/message.hpp"
#include "libmail/policy/postage.hpp"
#include "libmail/policy/verify.hpp"
#include "libmail/base/text.hpp"

#include <openssl/rand.h>

#include <arpa/inet.h>

#include <algorithm>
#include <cstring>
#include <sstream>
#include <stdexcept>

namespace mail {

namespace source_detail {

std::string id_tag(const std::string& id) { return id.size() > 8 ? id.substr(0, 8) + "..." : id; }

std::string ip_of(const std::string& peer) {
    std::string ip = peer.substr(0, peer.rfind(':'));
    if (ip.size() >= 2 && ip.front() == '[' && ip.back() == ']') ip = ip.substr(1, ip.size() - 2);
    return ip;
}

std::string host_port_text(const HostPort& hp) {
    return (hp.host.find(':') != std::string::npos ? "[" + hp.host + "]" : hp.host) + ":" + hp.port;
}

std::string reply_text(const SmtpReply& r) {
    std::string t = std::to_string(r.code);
    if (!r.lines.empty()) t += " " + r.lines.back();
    return scrub(t, 300);
}


MessageSource file_source(const std::string& path) {
    return [path](const std::function<Result<void>(std::string_view)>& write) { return read_file(path, write); };
}

// The header section of a received message with forged verdict fields removed and fields added on top
// (given bottom first), ready for OutMessage.
Result<std::string> edited_head(const std::string& head, std::string_view authserv_id,
                                const std::vector<std::pair<std::string, std::string>>& fields) {
    std::istringstream hs(head);
    MessageReader msg(hs);
    if (auto h = msg.read_header(); !h) return Error{ErrorKind::data, "malformed header section"};
    strip_verdicts(msg, authserv_id);
    for (const auto& [k, v] : fields) msg.prepend(k, v);
    std::ostringstream hdr;
    if (auto w = msg.write_header(hdr); !w) return w.error();
    // A header that ran into a non-field line: a blank line first, then what follows as the body's start.
    if (msg.separator().empty()) hdr << "\r\n";
    if (auto w = msg.copy_body(hdr); !w) return w.error();
    return hdr.str();
}

std::string received_field(const std::string& from, const std::string& ip, const std::string& by,
                           const std::string& with, const std::vector<std::string>& rcpts) {
    std::string r = "from " + from + " (" + (ip.empty() ? "unknown" : ip) + ") by " + by + " (msourced) with " + with;
    if (rcpts.size() == 1) r += " for <" + rcpts.front() + ">";
    return r + "; " + rfc5322_date(now());
}

std::string domain_of(const std::string& addr) {
    auto at = addr.rfind('@');
    return at == std::string::npos ? "" : lower(addr.substr(at + 1));
}

Result<DeliveryResult> hand_on(const SourcePolicy& p, std::unique_ptr<Delivery>& d, const std::string& sender,
                               const std::vector<std::string>& rcpts, const HeadSpool& msg,
                               const std::vector<std::pair<std::string, std::string>>& fields) {
    if (!p.deliver) return Error{ErrorKind::config, "no delivery target"};
    if (msg.failure()) return *msg.failure();
    if (msg.head_too_big()) return Error{ErrorKind::data, "header section too big"};
    auto head = edited_head(msg.head(), p.hostname, fields);
    if (!head) return head.error();
    if (!d) d = make_delivery(*p.deliver, p.hostname, p.timeout, p.relay_pool);
    OutMessage m;
    m.sender = sender;
    m.rcpts = rcpts;
    m.header = std::move(*head);
    m.body = &msg.body();
    return d->deliver(m);
}

std::int64_t backoff(const SourcePolicy& p, std::int64_t tries) {
    std::int64_t d = std::max<std::int64_t>(p.retry, 1);
    for (std::int64_t i = 1; i < tries && d < p.retry_max; ++i) d *= 2;
    return std::min(d, std::max(p.retry_max, p.retry));
}

// Connects to the first host for domain that answers; kind rejected when the domain takes no mail. Hosts
// found in DNS are connected to by address, and never at an internal one (loopback, private, link-local,
// multicast): a domain's MX records must not point our connections into our own networks. --mx-map entries
// are the administrator's and go where they say.
Result<std::pair<std::unique_ptr<SmtpClient>, HostPort>> connect_domain(const SourcePolicy& p, const std::string& domain,
                                                                        bool need_source) {
    auto targets = mail_targets(domain, p.mx_map, p.mx_port, p.timeout, {}, p.resolver);
    if (!targets && targets.error().kind == ErrorKind::data) return Error{ErrorKind::rejected, domain + ": " + targets.error().text};
    if (!targets) return targets.error();
    std::string why = "no host";
    std::size_t internal = 0, reachable = 0;
    for (const auto& t : *targets) {
        std::vector<HostPort> tries;
        if (t.mapped) tries.push_back(t.host);
        for (const auto& a : t.addresses)
            if (!t.mapped) tries.push_back(HostPort{a, t.host.port});
        internal += t.internal;
        reachable += tries.size();
        for (const auto& hp : tries) {
            const std::string where = host_port_text(t.host) + (t.mapped ? "" : " (" + hp.host + ")");
            auto c = SmtpClient::open(hp, p.hostname, p.timeout);
            if (!c) {
                const std::string at = host_port_text(hp);
                std::string e = c.error().text;
                if (e.rfind(at, 0) == 0) e = e.substr(std::min(e.size(), at.size() + 2));
                why = where + ": " + e;
                continue;
            }
            if (need_source && !(*c)->has_extension(source_keyword)) {
                why = where + ": does not offer SOURCE";
                (*c)->quit();
                continue;
            }
            return std::make_pair(std::move(*c), t.host);
        }
    }
    // Hosts whose address lookup failed: tried with what resolved; with nothing resolved, a temporary failure.
    std::string lookup;
    for (const auto& t : *targets)
        if (!t.error.empty() && lookup.empty()) lookup = t.error;
    if (reachable == 0 && !lookup.empty()) {
        if (internal > 0) lookup += "; " + std::to_string(internal) + " internal address(es) not tried";
        return Error{ErrorKind::tempfail, lookup};
    }
    if (!lookup.empty()) why += "; " + lookup;
    // Only internal addresses: for a fetch the notice cannot be from a real MX, nobody to fetch from. For our own
    // outgoing mail it is a partner behind split-horizon DNS or a VPN: the message waits (send already took
    // it) and is retried until the hold time ends, and the reason says what to do.
    if (reachable == 0 && internal > 0 && !need_source)
        return Error{ErrorKind::tempfail, domain + ": MX hosts have only internal addresses (" + std::to_string(internal) +
                                              "), never connected to; add an --mx-map entry to send there"};
    if (reachable == 0 && internal > 0)
        return Error{ErrorKind::rejected, domain + ": its mail hosts have only internal addresses (" + std::to_string(internal) +
                                              "), never connected to unless --mx-map names them"};
    if (internal > 0) why += "; " + std::to_string(internal) + " internal address(es) not tried";
    return Error{ErrorKind::tempfail, why};
}

// True when the pass should stop: the daemon is shutting down.
bool stopping(const SourcePolicy& p) { return p.stop && p.stop->load(); }

// Where a fetched message waits when its delivery failed after the GET: the next try needs no GET (each
// one spends one of the sender's max-gets). Empty when the domain cannot be part of a file name.
std::string fetched_path(const SourcePolicy& p, const SourceIn& s) {
    if (!is_valid_domain(s.domain)) return "";
    return p.hold_dir + "/fetched-" + s.id + "." + s.domain;
}

} // namespace source_detail

std::string make_source_id() {
    unsigned char b[16];
    if (RAND_bytes(b, sizeof b) != 1) throw std::runtime_error("RAND_bytes failed");
    return hex_encode(std::string_view(reinterpret_cast<const char*>(b), sizeof b));
}

bool valid_source_id(std::string_view id) {
    if (id.size() != 32) return false;
    return std::all_of(id.begin(), id.end(), [](char c) {
        return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
    });
}

} // namespace mail
