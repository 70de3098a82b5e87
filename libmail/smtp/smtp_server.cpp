// The SMTP server state machine: see smtp_server.hpp.
#include "libmail/smtp/smtp_server.hpp"

#include "libmail/base/codec.hpp"
#include "libmail/base/text.hpp"

namespace mail {

namespace {

// Reply text as sent: no CR, LF or other controls, whatever the handler put in.
std::string clean(std::string_view s) {
    return scrub(s, 500);  // RFC 5321 §4.5.3.1.5: 512 octets a reply line
}

// Data chunks handed to the handler at about this size.
constexpr std::size_t chunk_size = 64 * 1024;

} // namespace

std::string SmtpReply::wire() const {
    std::string out;
    std::string c = std::to_string(code);
    if (lines.empty()) return c + "\r\n";
    for (std::size_t i = 0; i < lines.size(); ++i)
        out += c + (i + 1 < lines.size() ? "-" : " ") + clean(lines[i]) + "\r\n";
    return out;
}

SmtpServer::SmtpServer(SmtpServerConfig cfg, SmtpHandler& handler) : cfg_(std::move(cfg)), h_(handler) {}

void SmtpServer::greet() { reply(220, clean(cfg_.hostname) + " ESMTP mailstamp"); }

void SmtpServer::refuse_early_talker() {
    h_.on_protocol_error("client talked before the greeting");
    reply(554, "5.5.0 " + clean(cfg_.hostname) + " protocol error: talked before the greeting");
    closed_ = true;
    state_ = State::closed;
}

void SmtpServer::reply(const SmtpReply& r) { out_ += r.wire(); }
void SmtpServer::reply(int code, std::string text) { reply(SmtpReply(code, std::move(text))); }

std::string SmtpServer::take_output() {
    std::string o;
    o.swap(out_);
    return o;
}

void SmtpServer::timeout(std::string_view what) {
    if (closed_) return;
    if (state_ == State::data || has_mail_) h_.on_reset();
    h_.on_protocol_error(what);
    reply(421, "4.4.2 " + clean(cfg_.hostname) + " " + std::string(what) + ", closing connection");
    closed_ = true;
    state_ = State::closed;
}

void SmtpServer::shutdown(std::string_view what) {
    if (closed_) return;
    if (state_ == State::data || has_mail_) h_.on_reset();
    reply(421, "4.3.2 " + clean(cfg_.hostname) + " " + std::string(what) + ", closing connection");
    closed_ = true;
    state_ = State::closed;
}

void SmtpServer::end_of_input() {
    if (closed_) return;
    if (has_mail_ || state_ == State::data) h_.on_reset();
    closed_ = true;
    state_ = State::closed;
}

void SmtpServer::tls_started() {
    tls_pending_ = false;
    tls_ = true;
    in_.clear();
    greeted_ = esmtp_ = false;
    // RFC 3207 §4.2: nothing learnt from the client before the handshake counts, an AUTH neither.
    authenticated_ = false;
    auth_user_.clear();
    reset_transaction();
}

void SmtpServer::reset_transaction() {
    if (has_mail_) h_.on_reset();
    has_mail_ = false;
    rcpts_ = 0;
}

void SmtpServer::feed(std::string_view bytes) {
    while (!bytes.empty() && !closed_ && !tls_pending_) {
        if (body_ || body_out_) {
            // An extension's data goes out first: what follows its command waits.
            held_.append(bytes);
            return;
        }
        if (state_ == State::data) {
            // In slices, so a large feed is handed on in chunks, never held whole.
            std::size_t used = data_->feed(bytes.substr(0, chunk_size), chunk_);
            bytes.remove_prefix(used);
            if (data_->too_big()) chunk_.clear();
            if (data_->done()) finish_data();
            else if (chunk_.size() >= chunk_size) flush_chunk();
            continue;
        }
        // Command mode: whole lines only.
        std::size_t nl = bytes.find('\n');
        if (skipping_) {
            if (nl == std::string_view::npos) return;  // still inside the overlong line
            skipping_ = false;
            bytes.remove_prefix(nl + 1);
            continue;
        }
        if (nl == std::string_view::npos) {
            in_.append(bytes);
            if (in_.size() > cfg_.line_length) {
                in_.clear();
                skipping_ = true;
                error_counted(500, "5.5.2 line too long");
            }
            return;
        }
        std::string l = std::move(in_);
        in_.clear();
        l.append(bytes.substr(0, nl));
        bytes.remove_prefix(nl + 1);
        if (l.size() + 1 > cfg_.line_length) {
            error_counted(500, "5.5.2 line too long");
            continue;
        }
        if (!l.empty() && l.back() == '\r') l.pop_back();
        line(l);
    }
    // After STARTTLS, whatever the client pipelined in plaintext is dropped.
    if (tls_pending_) in_.clear();
}

void SmtpServer::error_counted(int code, std::string text) {
    reply(code, std::move(text));
    if (++errors_ >= cfg_.max_errors) {
        h_.on_protocol_error("too many errors");
        reply(421, "4.7.0 " + clean(cfg_.hostname) + " too many errors, closing connection");
        closed_ = true;
        state_ = State::closed;
    }
}

void SmtpServer::line(std::string_view l) {
    switch (state_) {
    case State::auth_plain:
        if (l == "*") {
            state_ = State::command;
            reply(501, "5.0.0 authentication cancelled");
            return;
        }
        auth_plain(l);
        return;
    case State::auth_login_user: {
        if (l == "*") {
            state_ = State::command;
            reply(501, "5.0.0 authentication cancelled");
            return;
        }
        auto u = base64_decode(l);
        if (!u) {
            state_ = State::command;
            h_.on_protocol_error("bad base64 in AUTH LOGIN");
            error_counted(501, "5.5.2 cannot decode the response");
            return;
        }
        login_user_ = *u;
        state_ = State::auth_login_pass;
        reply(334, "UGFzc3dvcmQ6");  // "Password:"
        return;
    }
    case State::auth_login_pass: {
        state_ = State::command;
        if (l == "*") {
            reply(501, "5.0.0 authentication cancelled");
            return;
        }
        auto p = base64_decode(l);
        if (!p) {
            h_.on_protocol_error("bad base64 in AUTH LOGIN");
            error_counted(501, "5.5.2 cannot decode the response");
            return;
        }
        bool ok = h_.on_auth("LOGIN", login_user_, *p);
        if (ok) auth_user_ = login_user_;
        login_user_.clear();
        auth_done(ok);
        return;
    }
    default: break;
    }
    auto cmd = parse_smtp_command(l);
    if (!cmd) {
        h_.on_protocol_error(cmd.error().text);
        std::string t = cmd.error().text;
        int code = std::stoi(t.substr(0, 3));
        error_counted(code, t.substr(4));
        return;
    }
    command(*cmd);
}

std::vector<std::string> SmtpServer::ehlo_lines() const {
    std::vector<std::string> v{clean(cfg_.hostname)};
    v.push_back("PIPELINING");
    v.push_back("SIZE " + std::to_string(cfg_.max_message_size));
    v.push_back("8BITMIME");
    v.push_back("ENHANCEDSTATUSCODES");
    if (cfg_.tls_available && !tls_) v.push_back("STARTTLS");
    if (cfg_.auth_available && (tls_ || cfg_.auth_without_tls) && !authenticated_) v.push_back("AUTH PLAIN LOGIN");
    for (auto& k : h_.ehlo_keywords()) v.push_back(clean(k));
    return v;
}

void SmtpServer::command(const SmtpCommand& cmd) {
    switch (cmd.verb) {
    case SmtpVerb::helo:
    case SmtpVerb::ehlo: {
        bool esmtp = cmd.verb == SmtpVerb::ehlo;
        std::string domain = cmd.arg;
        while (!domain.empty() && domain.back() == ' ') domain.pop_back();
        if (domain.empty() || domain.find(' ') != std::string::npos) {
            error_counted(501, "5.5.4 Syntax: " + cmd.word + " domain");
            return;
        }
        reset_transaction();
        SmtpReply r = h_.on_helo(domain, esmtp);
        if (!r.positive()) {
            reply(r);
            return;
        }
        greeted_ = true;
        esmtp_ = esmtp;
        if (esmtp) reply(SmtpReply(250, ehlo_lines()));
        else reply(250, clean(cfg_.hostname));
        return;
    }
    case SmtpVerb::starttls:
        if (!cfg_.tls_available || tls_) {
            error_counted(502, "5.5.1 STARTTLS not available");
            return;
        }
        if (!cmd.arg.empty()) {
            error_counted(501, "5.5.4 Syntax: STARTTLS");
            return;
        }
        reset_transaction();
        reply(220, "2.0.0 Ready to start TLS");
        tls_pending_ = true;
        return;
    case SmtpVerb::auth:
        auth_start(cmd);
        return;
    case SmtpVerb::mail: {
        if (!greeted_) {
            error_counted(503, "5.5.1 send HELO or EHLO first");
            return;
        }
        if (has_mail_) {
            error_counted(503, "5.5.1 nested MAIL command");
            return;
        }
        if (cfg_.require_auth && !authenticated_) {
            error_counted(530, "5.7.0 authentication required");
            return;
        }
        if (transactions_ >= cfg_.max_transactions) {
            reply(421, "4.7.0 " + clean(cfg_.hostname) + " too many messages in one session, closing connection");
            closed_ = true;
            state_ = State::closed;
            return;
        }
        if (!esmtp_ && !cmd.params.empty()) {
            error_counted(501, "5.5.4 parameters need EHLO");
            return;
        }
        for (const auto& [k, v] : cmd.params) {
            if (k == "SIZE") {
                bool digits = !v.empty() && v.size() <= 20;
                for (char c : v) digits = digits && c >= '0' && c <= '9';
                if (!digits) {
                    error_counted(501, "5.5.4 bad SIZE value");
                    return;
                }
                if (v.size() > 19 || std::stoull(v) > cfg_.max_message_size) {
                    reply(552, "5.3.4 message size exceeds fixed limit");
                    return;
                }
            } else if (k == "BODY") {
                if (v != "7BIT" && v != "8BITMIME" && v != "7bit" && v != "8bitmime") {
                    error_counted(501, "5.5.4 BODY must be 7BIT or 8BITMIME");
                    return;
                }
            } else if (k == "AUTH") {
                // RFC 4954 §5: accepted and ignored.
            } else {
                error_counted(555, "5.5.4 unsupported parameter " + k);
                return;
            }
        }
        SmtpReply r = h_.on_mail(cmd.path, cmd);
        if (r.positive()) {
            has_mail_ = true;
            rcpts_ = 0;
            ++transactions_;
        }
        reply(r);
        return;
    }
    case SmtpVerb::rcpt: {
        if (!has_mail_) {
            error_counted(503, "5.5.1 need MAIL before RCPT");
            return;
        }
        if (!cmd.params.empty()) {
            error_counted(555, "5.5.4 unsupported parameter " + cmd.params.front().first);
            return;
        }
        if (rcpts_ >= cfg_.max_recipients) {
            reply(452, "4.5.3 too many recipients");
            return;
        }
        SmtpReply r = h_.on_rcpt(cmd.path, cmd);
        if (r.positive()) ++rcpts_;
        reply(r);
        return;
    }
    case SmtpVerb::data: {
        if (!cmd.arg.empty()) {
            error_counted(501, "5.5.4 Syntax: DATA");
            return;
        }
        if (!has_mail_) {
            error_counted(503, "5.5.1 need MAIL before DATA");
            return;
        }
        if (rcpts_ == 0) {
            error_counted(554, "5.5.1 no valid recipients");
            return;
        }
        SmtpReply r = h_.on_data();
        if (r.code != 354) {
            reply(r);
            if (!r.positive()) reset_transaction();
            return;
        }
        reply(r);
        state_ = State::data;
        data_.emplace(cfg_.bare_newline, cfg_.max_message_size);
        chunk_.clear();
        return;
    }
    case SmtpVerb::rset:
        reset_transaction();
        reply(250, "2.0.0 OK");
        return;
    case SmtpVerb::noop:
        reply(250, "2.0.0 OK");
        return;
    case SmtpVerb::quit:
        reset_transaction();
        reply(221, "2.0.0 " + clean(cfg_.hostname) + " closing connection");
        closed_ = true;
        state_ = State::closed;
        return;
    case SmtpVerb::vrfy:
        reply(252, "2.5.0 cannot VRFY; send some mail and find out");
        return;
    case SmtpVerb::help:
        reply(214, "2.0.0 see RFC 5321; commands: EHLO HELO MAIL RCPT DATA RSET NOOP QUIT STARTTLS AUTH");
        return;
    case SmtpVerb::unknown:
        extension(cmd);
        return;
    }
}

void SmtpServer::extension(const SmtpCommand& cmd) {
    SmtpSessionState st;
    st.greeted = greeted_;
    st.esmtp = esmtp_;
    st.tls = tls_;
    st.in_transaction = has_mail_;
    st.rcpts = rcpts_;
    auto r = h_.on_extension(cmd, st);
    if (!r) {
        h_.on_protocol_error("unknown command");
        error_counted(500, "5.5.2 command not recognised");
        return;
    }
    if (!r->reply.positive()) {
        // Refusals count like any bad command: a client probing ids is closed after max_errors.
        if (r->reply.code >= 500) error_counted(r->reply.code, r->reply.lines.empty() ? "" : r->reply.lines.back());
        else reply(r->reply);
        return;
    }
    reply(r->reply);
    if (r->ends_transaction && has_mail_) {
        ++messages_;
        has_mail_ = false;
        rcpts_ = 0;
    }
    if (r->body) body_ = std::move(r->body);
}

MessageSource SmtpServer::take_body() {
    MessageSource b;
    b.swap(body_);
    body_out_ = true;  // input still waits, until body_sent()
    return b;
}

void SmtpServer::body_sent() {
    body_ = nullptr;
    body_out_ = false;
    std::string held;
    held.swap(held_);
    feed(held);
}

void SmtpServer::auth_start(const SmtpCommand& cmd) {
    if (!cfg_.auth_available || (!tls_ && !cfg_.auth_without_tls)) {
        error_counted(cfg_.auth_available ? 538 : 502,
                      cfg_.auth_available ? "5.7.11 encryption required: STARTTLS first" : "5.5.1 AUTH not available");
        return;
    }
    if (!greeted_) {
        error_counted(503, "5.5.1 send EHLO first");
        return;
    }
    if (authenticated_) {
        error_counted(503, "5.5.1 already authenticated");
        return;
    }
    if (has_mail_) {
        error_counted(503, "5.5.1 AUTH not allowed during a transaction");
        return;
    }
    if (auto no = h_.on_auth_begin()) {
        error_counted(no->code, no->lines.empty() ? std::string() : no->lines.front());
        return;
    }
    std::string mech = cmd.arg.substr(0, cmd.arg.find(' '));
    for (char& c : mech)
        if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 32);
    std::string initial = cmd.arg.find(' ') == std::string::npos ? "" : cmd.arg.substr(cmd.arg.find(' ') + 1);
    if (mech == "PLAIN") {
        if (initial.empty()) {
            state_ = State::auth_plain;
            reply(334, "");
            return;
        }
        auth_plain(initial == "=" ? "" : initial);
    } else if (mech == "LOGIN") {
        if (!initial.empty()) {
            auto u = base64_decode(initial);
            if (!u) {
                error_counted(501, "5.5.2 cannot decode the response");
                return;
            }
            login_user_ = *u;
            state_ = State::auth_login_pass;
            reply(334, "UGFzc3dvcmQ6");
            return;
        }
        state_ = State::auth_login_user;
        reply(334, "VXNlcm5hbWU6");  // "Username:"
    } else {
        error_counted(504, "5.5.4 unrecognised authentication mechanism");
    }
}

void SmtpServer::auth_plain(std::string_view b64) {
    state_ = State::command;
    auto d = base64_decode(b64);
    if (!d) {
        h_.on_protocol_error("bad base64 in AUTH PLAIN");
        error_counted(501, "5.5.2 cannot decode the response");
        return;
    }
    // authzid NUL authcid NUL passwd (RFC 4616 §2)
    std::size_t a = d->find('\0');
    std::size_t b = a == std::string::npos ? std::string::npos : d->find('\0', a + 1);
    if (b == std::string::npos) {
        error_counted(501, "5.5.2 malformed PLAIN response");
        return;
    }
    std::string authz = d->substr(0, a), user = d->substr(a + 1, b - a - 1), pass = d->substr(b + 1);
    if (!authz.empty() && authz != user) {
        auth_done(false);
        return;
    }
    bool ok = h_.on_auth("PLAIN", user, pass);
    if (ok) auth_user_ = user;
    auth_done(ok);
}

void SmtpServer::auth_done(bool ok) {
    if (ok) {
        authenticated_ = true;
        reply(235, "2.7.0 authentication successful");
    } else {
        error_counted(535, "5.7.8 authentication credentials invalid");
    }
}

void SmtpServer::flush_chunk() {
    if (!chunk_.empty() && !data_->too_big()) h_.on_data_chunk(chunk_);
    chunk_.clear();
}

void SmtpServer::finish_data() {
    flush_chunk();
    state_ = State::command;
    std::string why;
    if (data_->too_big()) why = "too big";
    else if (data_->bare() && cfg_.bare_newline == BareNewline::reject) why = "bare CR or LF";
    data_.reset();
    SmtpReply r = h_.on_data_end(why);
    if (r.positive()) ++messages_;
    reply(r);
    has_mail_ = false;
    rcpts_ = 0;
}

} // namespace mail
