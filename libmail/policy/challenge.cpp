// Challenge/response, the pure parts: see challenge.hpp.
#include "libmail/policy/challenge.hpp"

#include "libmail/base/clock.hpp"
#include "libmail/mail/message.hpp"
#include "libmail/policy/postage.hpp"
#include "libmail/base/text.hpp"

#include <openssl/evp.h>

#include <algorithm>
#include <cstdlib>

namespace mail {

namespace {


} // namespace

std::string challenge_suppressed(const MessageReader& msg, const std::string& sender) {
    if (sender.empty()) return "null sender";
    std::string local = lower(sender.substr(0, sender.rfind('@')));
    if (local == "mailer-daemon") return "sender is MAILER-DAEMON";
    if (local == "postmaster") return "sender is postmaster";
    if (msg.get("X-Mailstamp-Challenge")) return "one of our own challenges";
    if (auto as = msg.get("Auto-Submitted")) {
        std::string v = lower(*as);
        std::string word = v.substr(0, v.find_first_of(" \t;("));
        if (word != "no") return "Auto-Submitted: " + scrub(word, 40);
    }
    for (const auto& f : msg.fields()) {
        std::string_view n = f.name();
        if (n.size() > 5 && istarts_with(n, "List-")) return "mailing list (" + scrub(n, 40) + ")";
    }
    if (auto p = msg.get("Precedence")) {
        std::string v = lower(*p);
        if (v == "bulk" || v == "list" || v == "junk") return "Precedence: " + v;
    }
    return "";
}

std::string render_template(std::string_view tmpl, const std::map<std::string, std::string>& vars) {
    std::string out;
    out.reserve(tmpl.size() + 256);
    for (std::size_t i = 0; i < tmpl.size(); ++i) {
        if (tmpl[i] != '$' || i + 1 >= tmpl.size()) {
            out += tmpl[i];
            continue;
        }
        if (tmpl[i + 1] == '$') {
            out += '$';
            ++i;
            continue;
        }
        if (tmpl[i + 1] == '{') {
            std::size_t e = tmpl.find('}', i + 2);
            if (e != std::string_view::npos) {
                auto v = vars.find(std::string(tmpl.substr(i + 2, e - i - 2)));
                if (v != vars.end()) {
                    out += v->second;
                    i = e;
                    continue;
                }
            }
        }
        out += tmpl[i];
    }
    return out;
}

struct DeliveryDigest::Impl {
    EVP_MD_CTX* ctx = nullptr;
    void put(std::string_view s) { EVP_DigestUpdate(ctx, s.data(), s.size()); }
    // A length, then the octets: no two envelopes feed the same sequence.
    void field(std::string_view s) {
        put(std::to_string(s.size()));
        put(std::string_view(":", 1));
        put(s);
    }
};

DeliveryDigest::DeliveryDigest(std::string_view sender, std::vector<std::string> rcpts) : impl_(new Impl) {
    impl_->ctx = EVP_MD_CTX_new();
    if (!impl_->ctx || EVP_DigestInit_ex(impl_->ctx, EVP_sha256(), nullptr) != 1) std::abort();
    std::sort(rcpts.begin(), rcpts.end());
    rcpts.erase(std::unique(rcpts.begin(), rcpts.end()), rcpts.end());
    impl_->field("mailstamp-delivery-v1");
    impl_->field(sender);
    impl_->field(std::to_string(rcpts.size()));
    for (const auto& r : rcpts) impl_->field(r);
}

DeliveryDigest::~DeliveryDigest() { EVP_MD_CTX_free(impl_->ctx); }

void DeliveryDigest::update(std::string_view piece) { impl_->put(piece); }

std::string DeliveryDigest::finish() {
    unsigned char d[EVP_MAX_MD_SIZE];
    unsigned n = 0;
    EVP_DigestFinal_ex(impl_->ctx, d, &n);
    return "sha256:" + hex_encode(std::string_view(reinterpret_cast<char*>(d), n));
}

std::string human_duration(std::int64_t s) {
    auto unit = [](std::int64_t n, const char* one) {
        return std::to_string(n) + " " + one + (n == 1 ? "" : "s");
    };
    if (s >= 86400 && s % 86400 == 0) return unit(s / 86400, "day");
    if (s >= 3600 && s % 3600 == 0) return unit(s / 3600, "hour");
    if (s >= 60 && s % 60 == 0) return unit(s / 60, "minute");
    return unit(s, "second");
}

std::string challenge_id_of(std::string_view mid) {
    std::string m = lower(mid);
    auto a = m.find("<challenge.");
    if (a == std::string::npos) return "";
    a += 11;
    auto e = m.find('@', a);
    if (e == std::string::npos || e - a != 16) return "";
    std::string id = m.substr(a, 16);
    for (char c : id)
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return "";
    return id;
}

std::string compose_challenge(const ChallengeInfo& info, std::string_view tmpl, std::int64_t now) {
    // The held message's header section, quoted: indented, bounded, never its body.
    std::string quoted;
    std::size_t lines = 0;
    std::size_t b = 0;
    const std::string& h = info.headers;
    while (b < h.size() && lines < 100 && quoted.size() < 8192) {
        std::size_t e = h.find('\n', b);
        std::string line = h.substr(b, e == std::string::npos ? std::string::npos : e - b);
        if (!line.empty() && line.back() == '\r') line.pop_back();
        if (line.empty()) break;
        quoted += "    " + scrub(line, 200) + "\n";
        ++lines;
        if (e == std::string::npos) break;
        b = e + 1;
    }
    std::map<std::string, std::string> vars{
        {"recipient", info.recipient},
        {"sender", info.sender},
        {"subject", scrub(info.subject, 200)},
        {"date", rfc5322_date(info.received)},
        {"hold_time", human_duration(info.hold_seconds)},
        {"expires", rfc5322_date(info.received + info.hold_seconds)},
        {"confirm_address", info.confirm_address},
        {"headers", quoted},
        {"id", info.id},
    };
    std::string body = render_template(tmpl, vars);
    std::string subject = info.subject.empty() ? "your message" : scrub(info.subject, 120);
    std::string m;
    m += "From: <" + info.confirm_address + ">\n";
    m += "Reply-To: <" + info.confirm_address + ">\n";
    m += "To: <" + info.sender + ">\n";
    m += "Subject: Please confirm your message to " + info.recipient + ": " + subject + "\n";
    m += "Date: " + rfc5322_date(now) + "\n";
    m += "Message-ID: <challenge." + info.id + "@" + info.hostname + ">\n";
    if (!info.message_id.empty()) m += "In-Reply-To: " + scrub(info.message_id, 400) + "\n";
    m += "Auto-Submitted: auto-replied\n";
    m += "Precedence: bulk\n";
    m += "X-Mailstamp-Challenge: " + info.id + "\n";
    m += "MIME-Version: 1.0\n";
    m += "Content-Type: text/plain; charset=utf-8\n";
    m += "Content-Transfer-Encoding: 8bit\n";
    m += "\n";
    m += body;
    if (!body.empty() && body.back() != '\n') m += "\n";
    return m;
}

} // namespace mail
