// The SMTP client: see smtp_client.hpp.
#include "libmail/io/smtp_client.hpp"

#include "libmail/io/smtp_io.hpp"
#include "libmail/base/text.hpp"

#include <algorithm>
#include <optional>

namespace mail {

namespace {
using Clock = std::chrono::steady_clock;
constexpr std::size_t reply_line_max = 4096;
constexpr std::size_t reply_lines_max = 100;
} // namespace

SmtpClient::SmtpClient(std::unique_ptr<Conn> c, std::chrono::milliseconds timeout)
    : conn_(std::move(c)), timeout_(timeout) {}

SmtpClient::~SmtpClient() = default;

Deadline SmtpClient::deadline() const { return Clock::now() + timeout_; }

Result<SmtpReply> SmtpClient::read_reply() {
    SmtpReply r;
    r.lines.clear();
    for (;;) {
        std::size_t nl;
        while ((nl = buf_.find('\n')) == std::string::npos) {
            if (buf_.size() > reply_line_max) return Error{ErrorKind::tempfail, "reply line too long"};
            char tmp[4096];
            auto n = conn_->read(tmp, sizeof tmp, deadline());
            if (!n) return Error{ErrorKind::tempfail, n.error().text == "timeout" ? "timed out" : n.error().text};
            if (*n == 0) return Error{ErrorKind::tempfail, "connection closed"};
            buf_.append(tmp, *n);
        }
        std::string line = buf_.substr(0, nl);
        buf_.erase(0, nl + 1);
        if (!line.empty() && line.back() == '\r') line.pop_back();
        if (line.size() < 3 || !std::all_of(line.begin(), line.begin() + 3, [](char c) { return c >= '0' && c <= '9'; }))
            return Error{ErrorKind::tempfail, "malformed reply"};
        int code = std::stoi(line.substr(0, 3));
        if (!r.lines.empty() && code != r.code) return Error{ErrorKind::tempfail, "malformed multi-line reply"};
        r.code = code;
        bool more = line.size() > 3 && line[3] == '-';
        r.lines.push_back(line.size() > 4 ? line.substr(4) : "");
        if (r.lines.size() > reply_lines_max) return Error{ErrorKind::tempfail, "reply too long"};
        if (!more) return r;
    }
}

Result<SmtpReply> SmtpClient::command(std::string_view line) {
    std::string l(line);
    l += "\r\n";
    if (auto w = conn_->write(l, deadline()); !w) return w.error();
    return read_reply();
}

bool SmtpClient::has_extension(std::string_view keyword) const {
    for (const auto& e : ext_) {
        std::string_view k = std::string_view(e).substr(0, e.find(' '));
        if (k == keyword) return true;
    }
    return false;
}

std::optional<std::vector<std::string>> SmtpClient::extension_params(std::string_view keyword) const {
    for (const auto& e : ext_) {
        auto sp = e.find(' ');
        if (std::string_view(e).substr(0, sp) != keyword) continue;
        std::vector<std::string> params;
        while (sp != std::string::npos) {
            auto next = e.find(' ', sp + 1);
            std::string p = e.substr(sp + 1, next == std::string::npos ? std::string::npos : next - sp - 1);
            if (!p.empty()) params.push_back(p);
            sp = next;
        }
        return params;
    }
    return std::nullopt;
}

Result<void> SmtpClient::greet(const std::string& helo, bool esmtp) {
    ext_.clear();
    Result<SmtpReply> e = Error{ErrorKind::tempfail, ""};
    if (dialect_ == Dialect::lmtp) {
        e = command("LHLO " + helo);
        if (!e) return Error{ErrorKind::tempfail, "LHLO: " + e.error().text};
        if (e->code != 250)
            return Error{ErrorKind::tempfail, "LHLO: " + std::to_string(e->code) + " " + (e->lines.empty() ? "" : e->lines.front())};
    } else if (esmtp) {
        e = command("EHLO " + helo);
        if (!e) return Error{ErrorKind::tempfail, "EHLO: " + e.error().text};
    }
    if (dialect_ != Dialect::lmtp && (!esmtp || e->code != 250)) {
        e = command("HELO " + helo);
        if (!e) return Error{ErrorKind::tempfail, "HELO: " + e.error().text};
        if (e->code != 250)
            return Error{ErrorKind::tempfail, "HELO: " + std::to_string(e->code) + " " +
                                                  (e->lines.empty() ? "" : e->lines.front())};
        return {};
    }
    for (std::size_t i = 1; i < e->lines.size(); ++i) {
        std::string k = e->lines[i];
        for (char& ch : k)
            if (ch >= 'a' && ch <= 'z') ch = static_cast<char>(ch - 32);
        ext_.push_back(k);
    }
    return {};
}

Result<std::unique_ptr<SmtpClient>> SmtpClient::open(const HostPort& hp, const std::string& helo,
                                                     std::chrono::milliseconds timeout, std::string_view preamble,
                                                     Dialect dialect) {
    auto fd = connect_tcp(hp, Clock::now() + timeout);
    if (!fd) return fd.error();
    return start(*fd, helo, timeout, dialect, preamble);
}

Result<std::unique_ptr<SmtpClient>> SmtpClient::open_unix(const std::string& path, const std::string& helo,
                                                          std::chrono::milliseconds timeout, Dialect dialect) {
    auto fd = connect_unix(path, Clock::now() + timeout);
    if (!fd) return fd.error();
    return start(*fd, helo, timeout, dialect, {});
}

Result<std::unique_ptr<SmtpClient>> SmtpClient::start(int fd, const std::string& helo,
                                                      std::chrono::milliseconds timeout, Dialect dialect,
                                                      std::string_view preamble) {
    std::unique_ptr<SmtpClient> c(new SmtpClient(std::make_unique<Conn>(fd, fd, true), timeout));
    c->dialect_ = dialect;
    if (!preamble.empty()) {
        if (auto w = c->conn_->write(preamble, c->deadline()); !w) return Error{ErrorKind::tempfail, "PROXY header: " + w.error().text};
    }
    auto g = c->read_reply();
    if (!g) return Error{ErrorKind::tempfail, "greeting: " + g.error().text};
    if (g->code != 220)
        return Error{ErrorKind::tempfail, "greeting: " + std::to_string(g->code) + " " +
                                              (g->lines.empty() ? "" : g->lines.front())};
    if (auto e = c->greet(helo, true); !e) return e.error();
    return c;
}

Result<SendResult> SmtpClient::envelope(const std::string& sender, const std::vector<std::string>& rcpts,
                                        const std::string& final, int final_code) {
    SendResult res;
    auto fail = [&](std::string stage, SmtpReply r) {
        res.accepted = false;
        res.stage = std::move(stage);
        res.reply = std::move(r);
        return res;
    };
    std::string mail = "MAIL FROM:<" + sender + ">";
    if (has_extension("8BITMIME")) mail += " BODY=8BITMIME";
    std::string final_stage = lower(std::string_view(final).substr(0, final.find(' ')));  // "data", "source": where it failed
    if (has_extension("PIPELINING")) {
        // RFC 2920: the envelope (and DATA) in one write, the replies read in order.
        std::string batch = mail + "\r\n";
        for (const auto& r : rcpts) batch += "RCPT TO:<" + r + ">\r\n";
        if (!final.empty()) batch += final + "\r\n";
        if (auto w = conn_->write(batch, deadline()); !w) return w.error();
        auto m = read_reply();
        if (!m) return m.error();
        std::optional<SmtpReply> refused;
        if (m->code != 250) refused = *m;
        std::string stage = refused ? "mail" : "";
        for (std::size_t i = 0; i < rcpts.size(); ++i) {
            auto rr = read_reply();
            if (!rr) return rr.error();
            if (!refused && rr->code != 250 && rr->code != 251) {
                refused = *rr;
                stage = "rcpt";
            }
        }
        SmtpReply d;
        if (!final.empty()) {
            auto dr = read_reply();
            if (!dr) return dr.error();
            d = *dr;
            if (!refused && d.code != final_code) {
                refused = d;
                stage = final_stage;
            }
        }
        if (refused) {
            if (!final.empty() && d.code == 354) {
                // The server waits for a message some recipients must not get: drop the connection so it
                // discards the transaction (an empty message would be delivered otherwise).
                dead_ = true;
            } else {
                (void)command("RSET");
            }
            return fail(stage, *refused);
        }
        res.reply = d;
    } else {
        auto m = command(mail);
        if (!m) return m.error();
        if (m->code != 250) {
            (void)command("RSET");
            return fail("mail", *m);
        }
        for (const auto& r : rcpts) {
            auto rr = command("RCPT TO:<" + r + ">");
            if (!rr) return rr.error();
            if (rr->code != 250 && rr->code != 251) {
                (void)command("RSET");
                return fail("rcpt", *rr);
            }
        }
        if (!final.empty()) {
            auto d = command(final);
            if (!d) return d.error();
            if (d->code != final_code) {
                (void)command("RSET");
                return fail(final_stage, *d);
            }
            res.reply = *d;
        }
    }
    res.accepted = true;
    return res;
}

Result<SendResult> SmtpClient::send(const std::string& sender, const std::vector<std::string>& rcpts,
                                    const MessageSource& message) {
    auto e = envelope(sender, rcpts, "DATA", 354);
    if (!e) return e.error();
    if (!e->accepted) return *e;
    SendResult res;
    auto w = write_message_stuffed(message, [&](std::string_view piece) { return conn_->write(piece, deadline()); });
    if (!w) return w.error();
    if (dialect_ == Dialect::lmtp) {
        // RFC 2033 4.2: one reply per accepted recipient (all were), in order. The message is in only when
        // every one is 250; a 4xx anywhere makes it a temporary failure for all (a resend may duplicate, never
        // lose), else the first 5xx refuses it.
        const SmtpReply* temp = nullptr;
        const SmtpReply* perm = nullptr;
        for (std::size_t i = 0; i < rcpts.size(); ++i) {
            auto r = read_reply();
            if (!r) {
                dead_ = true;
                return r.error();
            }
            res.per_rcpt.push_back(*r);
        }
        for (const auto& r : res.per_rcpt) {
            if (r.code >= 400 && r.code < 500 && !temp) temp = &r;
            else if (r.code != 250 && !perm) perm = &r;
        }
        if (res.per_rcpt.empty()) res.reply = SmtpReply(451, "4.5.0 no LMTP reply for any recipient");
        else res.reply = temp ? *temp : perm ? *perm : res.per_rcpt.back();
        if (res.reply.code == 250) {
            res.accepted = true;
        } else {
            res.stage = "end";
            if (!temp) {
                // A 2xx other than 250 or a 3xx: not an answer we understand, so not final either.
                if (res.reply.code < 500) res.reply = SmtpReply(451, "4.5.0 unexpected LMTP reply " + std::to_string(res.reply.code));
            }
        }
        return res;
    }
    auto end = read_reply();
    if (!end) return end.error();
    res.reply = *end;
    if (end->code != 250) {
        res.stage = "end";
        return res;
    }
    res.accepted = true;
    return res;
}

Result<SendResult> SmtpClient::send_source(const std::string& sender, const std::vector<std::string>& rcpts,
                                           const std::string& id) {
    // SOURCE is not pipelined after the RCPTs: it ends the transaction at once, so it goes only when every
    // recipient was accepted.
    auto e = envelope(sender, rcpts, "", 0);
    if (!e) return e.error();
    if (!e->accepted) return *e;
    auto s = command("SOURCE " + id);
    if (!s) return s.error();
    SendResult res;
    res.reply = *s;
    if (s->code != 250) {
        res.stage = "source";
        (void)command("RSET");
        return res;
    }
    res.accepted = true;
    return res;
}

Result<void> SmtpClient::read_message(BareNewline mode, std::size_t max, Deadline until,
                                      const std::function<Result<void>(std::string_view)>& sink) {
    DotDecoder dec(mode, max);
    std::string out;
    std::optional<Error> failed;  // the sink's error: the data is still read to its end
    for (;;) {
        std::size_t used = dec.feed(buf_, out);
        buf_.erase(0, used);
        if (!out.empty() && !failed && !dec.too_big()) {
            if (auto w = sink(out); !w) failed = w.error();
        }
        out.clear();
        if (dec.done()) break;
        char tmp[65536];
        auto n = conn_->read(tmp, sizeof tmp, std::min(deadline(), until));
        if (!n) {
            dead_ = true;
            if (n.error().text != "timeout") return Error{ErrorKind::tempfail, n.error().text};
            return Error{ErrorKind::tempfail, Clock::now() >= until ? "the data took too long" : "timed out"};
        }
        if (*n == 0) {
            dead_ = true;
            return Error{ErrorKind::tempfail, "connection closed in the message"};
        }
        buf_.assign(tmp, *n);
    }
    if (failed) return *failed;
    if (dec.too_big()) return Error{ErrorKind::data, "message over " + std::to_string(max) + " octets"};
    if (dec.bare() && mode == BareNewline::reject) return Error{ErrorKind::data, "bare CR or LF in the message"};
    return {};
}

void SmtpClient::quit() {
    auto w = conn_->write("QUIT\r\n", Clock::now() + std::chrono::milliseconds(2000));
    if (w) (void)read_reply();
}

} // namespace mail
