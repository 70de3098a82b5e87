// The SMTP client: see smtp_client.hpp.
#include "libmail/smtp_client.hpp"

#include "libmail/smtp_io.hpp"

#include <algorithm>
#include <optional>

namespace mail {

namespace {
using Clock = std::chrono::steady_clock;
constexpr std::size_t reply_line_max = 4096;
constexpr std::size_t reply_lines_max = 100;
} // namespace

Result<void> write_stuffed(std::string_view data, bool& at_bol, bool& after_cr,
                           const std::function<Result<void>(std::string_view)>& write) {
    std::string out;
    out.reserve(data.size() + data.size() / 64 + 8);
    std::size_t i = 0;
    while (i < data.size()) {
        char c = data[i];
        if (after_cr) {
            after_cr = false;
            out += "\r\n";
            at_bol = true;
            if (c == '\n') {
                ++i;
                continue;
            }
        }
        if (c == '\r') {
            after_cr = true;
            ++i;
            continue;
        }
        if (c == '\n') {
            out += "\r\n";
            at_bol = true;
            ++i;
            continue;
        }
        if (at_bol && c == '.') out += '.';
        at_bol = false;
        // The rest of the line goes at once.
        std::size_t j = i;
        while (j < data.size() && data[j] != '\r' && data[j] != '\n') ++j;
        out.append(data.substr(i, j - i));
        i = j;
    }
    return write(out);
}

std::string_view stuffed_terminator(bool at_bol, bool after_cr) {
    if (after_cr) return "\r\n.\r\n";
    return at_bol ? std::string_view(".\r\n") : std::string_view("\r\n.\r\n");
}

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

Result<std::unique_ptr<SmtpClient>> SmtpClient::open(const HostPort& hp, const std::string& helo,
                                                     std::chrono::milliseconds timeout) {
    auto fd = connect_tcp(hp, Clock::now() + timeout);
    if (!fd) return fd.error();
    std::unique_ptr<SmtpClient> c(new SmtpClient(std::make_unique<Conn>(*fd, *fd, true), timeout));
    auto g = c->read_reply();
    if (!g) return Error{ErrorKind::tempfail, "greeting: " + g.error().text};
    if (g->code != 220)
        return Error{ErrorKind::tempfail, "greeting: " + std::to_string(g->code) + " " +
                                              (g->lines.empty() ? "" : g->lines.front())};
    auto e = c->command("EHLO " + helo);
    if (!e) return Error{ErrorKind::tempfail, "EHLO: " + e.error().text};
    if (e->code != 250) {
        e = c->command("HELO " + helo);
        if (!e) return Error{ErrorKind::tempfail, "HELO: " + e.error().text};
        if (e->code != 250)
            return Error{ErrorKind::tempfail, "HELO: " + std::to_string(e->code) + " " +
                                                  (e->lines.empty() ? "" : e->lines.front())};
    } else {
        for (std::size_t i = 1; i < e->lines.size(); ++i) {
            std::string k = e->lines[i];
            for (char& ch : k)
                if (ch >= 'a' && ch <= 'z') ch = static_cast<char>(ch - 32);
            c->ext_.push_back(k);
        }
    }
    return c;
}

Result<SendResult> SmtpClient::send(const std::string& sender, const std::vector<std::string>& rcpts,
                                    const MessageSource& message) {
    SendResult res;
    auto fail = [&](std::string stage, SmtpReply r) {
        res.accepted = false;
        res.stage = std::move(stage);
        res.reply = std::move(r);
        return res;
    };
    std::string mail = "MAIL FROM:<" + sender + ">";
    if (has_extension("8BITMIME")) mail += " BODY=8BITMIME";
    if (has_extension("PIPELINING")) {
        // RFC 2920: the envelope and DATA in one write, the replies read in order.
        std::string batch = mail + "\r\n";
        for (const auto& r : rcpts) batch += "RCPT TO:<" + r + ">\r\n";
        batch += "DATA\r\n";
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
        auto d = read_reply();
        if (!d) return d.error();
        if (!refused && d->code != 354) {
            refused = *d;
            stage = "data";
        }
        if (refused) {
            if (d->code == 354) {
                // The server waits for a message some recipients must not get: drop the connection so it
                // discards the transaction (an empty message would be delivered otherwise).
                dead_ = true;
            } else {
                (void)command("RSET");
            }
            return fail(stage, *refused);
        }
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
        auto d = command("DATA");
        if (!d) return d.error();
        if (d->code != 354) {
            (void)command("RSET");
            return fail("data", *d);
        }
    }
    bool at_bol = true, after_cr = false;
    std::string out;
    auto flush = [&]() -> Result<void> {
        if (out.empty()) return {};
        auto w = conn_->write(out, deadline());
        out.clear();
        return w;
    };
    auto sink = [&](std::string_view piece) -> Result<void> {
        out.append(piece);
        if (out.size() >= 64 * 1024) return flush();
        return {};
    };
    auto writer = [&](std::string_view data) { return write_stuffed(data, at_bol, after_cr, sink); };
    if (auto w = message(writer); !w) return w.error();
    out.append(stuffed_terminator(at_bol, after_cr));
    if (auto w = flush(); !w) return w.error();
    auto end = read_reply();
    if (!end) return end.error();
    if (end->code != 250) return fail("end", *end);
    res.accepted = true;
    res.reply = *end;
    return res;
}

void SmtpClient::quit() {
    auto w = conn_->write("QUIT\r\n", Clock::now() + std::chrono::milliseconds(2000));
    if (w) (void)read_reply();
}

} // namespace mail
