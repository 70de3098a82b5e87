// Helpers shared by msourced's two halves: see source_util.hpp.
#include "libmail/daemon/source_util.hpp"

#include "libmail/base/clock.hpp"
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
