// Fuzz target: the SMTP server state machine driven by arbitrary client
// bytes. Input: one flags octet, one split octet, then what the client sends.
// Flags: 0x01 auth_without_tls, 0x02 bare newlines normalised, 0x04
// require_auth, 0x08 small limits, 0x10 end with a timeout instead of end of
// input. Split: how the bytes are cut into feed() calls (whole, a byte at a
// time, or at data-dependent points). STARTTLS is "handshaken" whenever it is
// pending. Invariants, any violation aborts:
//  - every output line ends in CRLF and has no other CR or LF, starts with a
//    3-digit code followed by ' ' or '-', and a '-' line is continued by a line
//    with the same code;
//  - nothing is produced once closed();
//  - a message accepted for delivery (why == "") has CRLF line ends only,
//    whatever the bare_newline mode, and is no larger than the limit;
//  - on_data_end is called no more often than DATA was answered 354, data
//    chunks come only between the two, and the handler's calls nest properly;
//  - authenticated() only after on_auth said yes, for that user;
//  - the data ends exactly at the first CRLF.CRLF (the CRLF before DATA's
//    data counting), never at a bare CR or LF variant;
//  - without STARTTLS, the same bytes cut differently give the same replies
//    and the same handler calls.
#include "libmail/smtp/smtp_server.hpp"

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

namespace {

void check(bool ok) {
    if (!ok) std::abort();
}

bool crlf_only(const std::string& s) {
    for (std::size_t i = 0; i < s.size(); ++i) {
        if (s[i] == '\r' && (i + 1 >= s.size() || s[i + 1] != '\n')) return false;
        if (s[i] == '\n' && (i == 0 || s[i - 1] != '\r')) return false;
    }
    return true;
}

struct Handler : mail::SmtpHandler {
    std::size_t max_size = 0;
    bool in_data = false;
    std::size_t datas = 0, ends = 0;
    std::string content;
    bool auth_ok = false;
    std::string log;  // every call, for comparing runs

    mail::SmtpReply on_helo(std::string_view domain, bool) override {
        check(!in_data);
        check(domain.find_first_of("\r\n") == std::string_view::npos);
        log += "helo " + std::string(domain) + "\n";
        return {250, std::string(domain)};
    }
    mail::SmtpReply on_mail(const std::string& sender, const mail::SmtpCommand&) override {
        check(!in_data);
        log += "mail " + sender + "\n";
        // Untrusted text in a reply: the server has to keep the framing.
        return {250, "2.1.0 <" + sender + "> ok\r\nsmuggled"};
    }
    mail::SmtpReply on_rcpt(const std::string& rcpt, const mail::SmtpCommand&) override {
        check(!in_data);
        log += "rcpt " + rcpt + "\n";
        return {250, std::vector<std::string>{"2.1.5 ok", "<" + rcpt + ">\n"}};
    }
    mail::SmtpReply on_data() override {
        check(!in_data);
        ++datas;
        in_data = true;
        content.clear();
        return {354, "go ahead"};
    }
    void on_data_chunk(std::string_view d) override {
        check(in_data);
        check(!d.empty());
        content.append(d);
    }
    mail::SmtpReply on_data_end(std::string_view why) override {
        check(in_data);
        in_data = false;
        ++ends;
        check(ends <= datas);
        log += "end " + std::string(why) + " " + content + "\n";
        if (why.empty()) {
            check(crlf_only(content));
            check(content.size() <= max_size);
        }
        content.clear();
        if (!why.empty()) return {554, "5.6.0 " + std::string(why)};
        return {250, "2.0.0 queued"};
    }
    void on_reset() override {
        log += "reset\n";
        in_data = false;
        content.clear();
    }
    bool on_auth(std::string_view, std::string_view user, std::string_view password) override {
        check(!in_data);
        log += "auth " + std::string(user) + "\n";
        auth_ok = user == "user" && password == "pass";
        return auth_ok;
    }
    void on_protocol_error(std::string_view) override {}
};

// Checks one take_output(); counts the 354 replies.
void check_output(const std::string& out, std::size_t& replies_354) {
    if (out.empty()) return;
    check(out.size() >= 2 && out.substr(out.size() - 2) == "\r\n");
    std::size_t pos = 0;
    int continued = -1;  // the code a '-' line promised
    while (pos < out.size()) {
        std::size_t e = out.find("\r\n", pos);
        check(e != std::string::npos);
        std::string_view l(out.data() + pos, e - pos);
        check(l.find_first_of("\r\n") == std::string_view::npos);
        check(l.size() >= 3);
        for (int i = 0; i < 3; ++i) check(l[i] >= '0' && l[i] <= '9');
        check(l[0] >= '2' && l[0] <= '5');
        int code = (l[0] - '0') * 100 + (l[1] - '0') * 10 + (l[2] - '0');
        check(l.size() == 3 || l[3] == ' ' || l[3] == '-');
        check(l.size() <= 512);
        if (continued >= 0) check(code == continued);
        bool more = l.size() > 3 && l[3] == '-';
        continued = more ? code : -1;
        if (!more && code == 354) ++replies_354;
        pos = e + 2;
    }
    check(continued < 0);  // a multi-line reply is never cut between outputs
}

// One session over in, cut into feeds by split; what came out and what the handler saw.
struct Run {
    std::string transcript;
    bool tls = false;  // STARTTLS happened: what follows it in a feed is dropped, so cuts matter
};

Run run(unsigned flags, unsigned split, std::string_view in) {
    mail::SmtpServerConfig cfg;
    cfg.hostname = "mx.example";
    cfg.tls_available = true;
    cfg.auth_available = true;
    cfg.auth_without_tls = flags & 0x01;
    cfg.bare_newline = (flags & 0x02) ? mail::BareNewline::normalise : mail::BareNewline::reject;
    cfg.require_auth = flags & 0x04;
    if (flags & 0x08) {
        cfg.line_length = 80;
        cfg.max_message_size = 200;
        cfg.max_recipients = 3;
        cfg.max_errors = 6;
        cfg.max_transactions = 3;
    }
    Handler h;
    h.max_size = cfg.max_message_size;
    mail::SmtpServer s(cfg, h);
    Run result;
    s.greet();
    std::size_t replies_354 = 0;
    bool was_closed = false;
    auto after = [&]() {
        std::string out = s.take_output();
        if (was_closed) check(out.empty());
        check_output(out, replies_354);
        result.transcript += out;
        check(h.ends <= replies_354);
        check(h.datas == replies_354);
        if (s.authenticated()) {
            check(h.auth_ok);
            check(s.auth_user() == "user");
        }
        if (s.closed()) was_closed = true;
        if (s.starttls_pending()) {
            check(!s.closed());
            result.tls = true;
            s.tls_started();
            check(s.tls_active());
            check(!s.starttls_pending());
            check(!s.authenticated());
            h.auth_ok = false;
            h.in_data = false;
        }
    };
    after();

    std::size_t pos = 0, step = 0, data_start = 0;
    bool start_known = false;
    while (pos < in.size()) {
        std::size_t n;
        switch (split % 4) {
        case 0: n = in.size(); break;
        case 1: n = 1; break;
        case 2: n = 1 + static_cast<unsigned char>(in[pos]) % 13; break;
        default: n = 1 + ((split * 7 + step * 13) ^ static_cast<unsigned char>(in[pos])) % 97; break;
        }
        n = std::min(n, in.size() - pos);
        const bool was_in_data = s.in_data();
        s.feed(in.substr(pos, n));
        pos += n;
        ++step;
        // A byte at a time, where the data started and ended is known exactly: the end must be the first
        // CRLF.CRLF counting the line end before the data (RFC 5321 §4.1.1.4), whatever bare CR or LF came first.
        // (Only when the feed that started the data was that one byte: a longer one leaves the start unknown.)
        if (!was_in_data && s.in_data()) {
            start_known = n == 1;
            data_start = pos;
        }
        if (n == 1 && start_known && was_in_data && !s.in_data() && !s.closed()) {
            std::string x = "\r\n" + std::string(in.substr(data_start, pos - data_start));
            check(x.find("\r\n.\r\n") == x.size() - 5);
        }
        after();
    }
    if (flags & 0x10) s.timeout("idle timeout");
    else s.end_of_input();
    after();
    check(s.closed());
    s.feed("NOOP\r\n");
    after();
    result.transcript += h.log;
    return result;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size < 2) return 0;
    const unsigned flags = data[0];
    const unsigned split = data[1];
    std::string_view in(reinterpret_cast<const char*>(data) + 2, size - 2);
    Run a = run(flags, split, in);
    // Where the feeds are cut changes nothing (but after STARTTLS, by design). One of the two runs is a byte
    // at a time, for the check on the end of the data.
    Run b = run(flags, split % 4 == 1 ? 0 : 1, in);
    if (!a.tls && !b.tls) check(a.transcript == b.transcript);
    return 0;
}
