// Recipient verification: see recipient_check.hpp.
#include "libmail/io/recipient_check.hpp"

#include "libmail/base/text.hpp"
#include "libmail/io/smtp_client.hpp"
#include "libmail/mail/address.hpp"

#include <algorithm>
#include <fstream>
#include <vector>

namespace mail {

namespace {

class MapCheck : public RecipientCheck {
public:
    std::set<std::string> entries;  ///< lower-case local@domain and @domain
    RecipientAnswer check(const std::string& address) override {
        std::string a = lower(address);
        auto at = a.rfind('@');
        RecipientAnswer r;
        bool known = entries.count(a) || (at != std::string::npos && entries.count(a.substr(at)));
        r.status = known ? RecipientStatus::known : RecipientStatus::unknown;
        r.detail = known ? "in the recipient map" : "not in the recipient map";
        return r;
    }
};

class ProbeCheck : public RecipientCheck {
public:
    ProbeCheck(DeliveryTarget t, std::string helo, std::chrono::milliseconds timeout, ProbeCache c)
        : t_(std::move(t)), helo_(std::move(helo)), timeout_(timeout), cache_(c), pool_(std::chrono::seconds(60), 8) {}

    RecipientAnswer check(const std::string& address) override {
        auto now = std::chrono::steady_clock::now();
        {
            std::lock_guard<std::mutex> g(m_);
            if (auto e = answers_.find(address); e != answers_.end()) {
                if (e->second.until > now) {
                    RecipientAnswer r = e->second.answer;
                    r.cached = true;
                    return r;
                }
                answers_.erase(e);
            }
        }
        RecipientAnswer r = probe(address);
        if (r.status != RecipientStatus::tempfail) {
            std::lock_guard<std::mutex> g(m_);
            if (answers_.size() >= cache_.max_entries) trim(now);
            answers_[address] = Entry{r, now + (r.status == RecipientStatus::known ? cache_.positive : cache_.negative)};
        }
        return r;
    }

private:
    struct Entry {
        RecipientAnswer answer;
        std::chrono::steady_clock::time_point until;
    };

    // Drops the expired answers, then (still full) a tenth of them, those nearest their end. Under m_.
    void trim(std::chrono::steady_clock::time_point now) {
        std::erase_if(answers_, [&](const auto& e) { return e.second.until <= now; });
        if (answers_.size() < cache_.max_entries) return;
        std::vector<std::chrono::steady_clock::time_point> ends;
        ends.reserve(answers_.size());
        for (const auto& [k, e] : answers_) ends.push_back(e.until);
        std::size_t drop = std::max<std::size_t>(1, answers_.size() / 10);
        std::nth_element(ends.begin(), ends.begin() + static_cast<std::ptrdiff_t>(drop - 1), ends.end());
        auto cut = ends[drop - 1];
        std::erase_if(answers_, [&](const auto& e) { return e.second.until <= cut; });
    }

    Result<std::unique_ptr<SmtpClient>> connect() {
        Dialect d = t_.kind == DeliveryTarget::Kind::lmtp ? Dialect::lmtp : Dialect::smtp;
        if (!t_.dir.empty()) return SmtpClient::open_unix(t_.dir, helo_, timeout_, d);
        return SmtpClient::open(t_.relay, helo_, timeout_, {}, d);
    }

    RecipientAnswer probe(const std::string& address) {
        RecipientAnswer r;
        r.status = RecipientStatus::tempfail;
        // A kept connection may have been closed by the server meanwhile: one fresh try then.
        for (int attempt = 0; attempt < 2; ++attempt) {
            std::unique_ptr<SmtpClient> c = attempt == 0 ? pool_.take() : nullptr;
            bool reused = c != nullptr;
            if (!c) {
                auto o = connect();
                if (!o) {
                    r.detail = o.error().text;
                    return r;
                }
                c = std::move(*o);
            }
            auto m = c->command("MAIL FROM:<>");
            if (!m && reused && attempt == 0) continue;
            if (!m) {
                r.detail = m.error().text;
                return r;
            }
            if (m->code != 250) {
                r.detail = "MAIL FROM:<> answered " + reply_text(*m);
                (void)c->command("RSET");
                return r;
            }
            auto rc = c->command("RCPT TO:<" + address + ">");
            if (!rc) {
                r.detail = rc.error().text;
                return r;
            }
            r.detail = reply_text(*rc);
            if (rc->code == 250 || rc->code == 251) r.status = RecipientStatus::known;
            else if (rc->code >= 500 && rc->code < 600) r.status = RecipientStatus::unknown;
            auto rs = c->command("RSET");
            if (rs && rs->code == 250) pool_.give(std::move(c));
            return r;
        }
        return r;
    }

    static std::string reply_text(const SmtpReply& s) {
        return std::to_string(s.code) + " " + (s.lines.empty() ? std::string() : scrub(s.lines.front()));
    }

    DeliveryTarget t_;
    std::string helo_;
    std::chrono::milliseconds timeout_;
    ProbeCache cache_;
    SmtpClientPool pool_;
    std::mutex m_;
    std::unordered_map<std::string, Entry> answers_;
};

} // namespace

Result<std::unique_ptr<RecipientCheck>> recipient_map(const std::string& path) {
    std::ifstream in(path);
    if (!in) return Error{ErrorKind::usage, path + ": cannot be read"};
    auto m = std::make_unique<MapCheck>();
    std::string line;
    std::size_t n = 0;
    while (std::getline(in, line)) {
        ++n;
        std::string l(trim(line));
        if (l.empty() || l.front() == '#') continue;
        auto at = l.rfind('@');
        bool ok = l.size() <= 320 && at != std::string::npos && is_valid_domain(l.substr(at + 1)) &&
                  l.find_first_of(" \t<>") == std::string::npos;
        if (!ok) return Error{ErrorKind::usage, path + ":" + std::to_string(n) + ": want local@domain or @domain"};
        m->entries.insert(lower(l));
    }
    if (in.bad()) return Error{ErrorKind::usage, path + ": read error"};
    return std::unique_ptr<RecipientCheck>(std::move(m));
}

Result<std::unique_ptr<RecipientCheck>> recipient_probe(const DeliveryTarget& target, std::string helo,
                                                        std::chrono::milliseconds timeout, ProbeCache cache) {
    bool server = target.kind == DeliveryTarget::Kind::relay || target.kind == DeliveryTarget::Kind::lmtp;
    if (!server) return Error{ErrorKind::usage, "a recipient probe needs an SMTP or LMTP downstream, not " + target_text(target)};
    return std::unique_ptr<RecipientCheck>(std::make_unique<ProbeCheck>(target, std::move(helo), timeout, cache));
}

} // namespace mail
