// The SMTP server state machine (RFC 5321), pure: bytes from the client go
// in through feed(), replies come out of take_output(), and every decision
// about senders, recipients and message content is the handler's. No
// sockets, no clock: the I/O driver (smtp_io.hpp) does reads, writes,
// deadlines and the TLS handshake, so the fuzzer can drive this directly.
//
// Framing rules that keep the proxy safe against SMTP smuggling:
// - Commands end at LF (a CR before it is dropped); a command line longer
//   than the limit is refused and skipped up to its LF.
// - DATA ends only at <CRLF>.<CRLF>. A bare CR or bare LF inside the data is
//   never a line end for the purpose of finding that terminator; with
//   BareNewline::reject the whole message is refused when its end comes,
//   with BareNewline::normalise each one becomes CRLF in the content.
// - Input pipelined after STARTTLS is discarded (RFC 3207 §4.2; CVE-2011-0411).
#pragma once
#include "libmail/smtp/smtp_command.hpp"
#include "libmail/smtp/smtp_data.hpp"

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace mail {

/// One SMTP reply: a code and one or more text lines (the enhanced status code is part of the text).
struct SmtpReply {
    int code = 250;
    std::vector<std::string> lines;  ///< without CRLF; CR, LF and other controls are replaced when written
    SmtpReply() = default;
    SmtpReply(int c, std::string text) : code(c), lines{std::move(text)} {}
    SmtpReply(int c, std::vector<std::string> text) : code(c), lines(std::move(text)) {}
    /// The reply as sent: "250-a\r\n250 b\r\n".
    std::string wire() const;
    /// True for 2xx and 3xx.
    bool positive() const { return code < 400; }
};

/// Limits and features of one server session.
struct SmtpServerConfig {
    std::string hostname = "localhost";
    std::size_t line_length = 2048;           ///< longest command line, CRLF included
    std::size_t max_recipients = 100;         ///< recipients accepted per transaction
    std::size_t max_message_size = 64u << 20; ///< octets of message data
    std::size_t max_errors = 20;              ///< bad commands before the session is closed with 421
    std::size_t max_transactions = 1000;      ///< messages per session
    BareNewline bare_newline = BareNewline::reject;
    bool tls_available = false;    ///< offer STARTTLS
    bool auth_available = false;   ///< offer AUTH PLAIN LOGIN once TLS is on
    bool auth_without_tls = false; ///< offer AUTH on a plaintext session too (not for the Internet)
    bool require_auth = false;     ///< MAIL needs a successful AUTH first (submission)
};

/// Where a session stands, for a handler's extension commands.
struct SmtpSessionState {
    bool greeted = false;         ///< HELO or EHLO done
    bool esmtp = false;           ///< it was EHLO
    bool tls = false;
    bool in_transaction = false;  ///< MAIL was accepted
    std::size_t rcpts = 0;        ///< recipients accepted in the transaction
};

/// The answer to an extension command.
struct SmtpExtensionReply {
    SmtpReply reply;
    bool ends_transaction = false;  ///< a positive reply ends the transaction, as the end of DATA does (SOURCE)
    MessageSource body;             ///< after a positive reply: data sent dot-stuffed and ended by CRLF.CRLF (GET)
};

/// The policy and sink behind a session. Replies the handler returns are sent as they are.
class SmtpHandler {
public:
    virtual ~SmtpHandler() = default;
    /// HELO or EHLO with the client's domain; a negative reply refuses it.
    virtual SmtpReply on_helo(std::string_view domain, bool esmtp) = 0;
    /// MAIL FROM; sender is the path inside <> ("" for the null sender), cmd has the ESMTP parameters.
    virtual SmtpReply on_mail(const std::string& sender, const SmtpCommand& cmd) = 0;
    /// RCPT TO; the path inside <>.
    virtual SmtpReply on_rcpt(const std::string& rcpt, const SmtpCommand& cmd) = 0;
    /// DATA with at least one accepted recipient: 354 to go on, or a refusal.
    virtual SmtpReply on_data() = 0;
    /// A piece of message data, unstuffed, CRLF line ends; called in order.
    virtual void on_data_chunk(std::string_view data) = 0;
    /// The end of the data; why is "" for a good message, else why it must be refused ("bare LF", "too big").
    /// The reply says whether the message was taken.
    virtual SmtpReply on_data_end(std::string_view why) = 0;
    /// RSET, a new MAIL after a finished transaction, HELO/EHLO or STARTTLS: forget the transaction.
    virtual void on_reset() = 0;
    /// AUTH is asked for (before any credentials): a reply refuses it (a client locked out after failures),
    /// nothing lets it go on.
    virtual std::optional<SmtpReply> on_auth_begin() { return std::nullopt; }
    /// AUTH with these credentials; true when they are good. Called at most once per attempt.
    virtual bool on_auth(std::string_view mechanism, std::string_view user, std::string_view password) = 0;
    /// A protocol event worth a log line (bad command, too many errors, pre-greeting talk...).
    virtual void on_protocol_error(std::string_view what) = 0;
    /// EHLO keywords of the handler's extensions (e.g. "SOURCE").
    virtual std::vector<std::string> ehlo_keywords() { return {}; }
    /// A command the server does not know itself (cmd.word upper-cased, cmd.arg); nothing for
    /// "500 command not recognised". An ending reply is counted as a message when positive.
    virtual std::optional<SmtpExtensionReply> on_extension(const SmtpCommand& cmd, const SmtpSessionState& s) {
        (void)cmd;
        (void)s;
        return std::nullopt;
    }
};

/// One SMTP session, driven by bytes.
class SmtpServer {
public:
    SmtpServer(SmtpServerConfig cfg, SmtpHandler& handler);

    /// Queues the 220 greeting.
    void greet();
    /// Queues "554 5.5.0 ..." and closes: the client talked before the greeting.
    void refuse_early_talker();
    /// Processes bytes from the client; replies accumulate in the output.
    void feed(std::string_view bytes);
    /// The client closed its side: an open transaction is dropped.
    void end_of_input();
    /// Replies queued since the last call.
    std::string take_output();
    /// True when the session is over (QUIT, 421, fatal error): flush the output, then close.
    bool closed() const { return closed_; }
    /// True when "220 Ready to start TLS" was queued: flush, handshake, then call tls_started() (or close).
    bool starttls_pending() const { return tls_pending_; }
    /// True when an extension's reply carries data (GET): flush the output, send take_body() dot-stuffed and
    /// terminated, then call body_sent(). Input after that command waits until then.
    bool body_pending() const { return static_cast<bool>(body_); }
    /// The pending data.
    MessageSource take_body();
    /// The data went out: the input held back is processed.
    void body_sent();
    /// The handshake succeeded: the session starts over (a new EHLO is needed).
    void tls_started();
    /// A deadline passed: queues 421 and closes.
    void timeout(std::string_view what);
    /// The server is shutting down or full: queues 421 and closes.
    void shutdown(std::string_view what);
    /// True while message data is being read.
    bool in_data() const { return state_ == State::data; }
    /// True once TLS is on.
    bool tls_active() const { return tls_; }
    /// True after a successful AUTH.
    bool authenticated() const { return authenticated_; }
    /// The user name of a successful AUTH.
    const std::string& auth_user() const { return auth_user_; }
    /// Messages taken (on_data_end answered 2xx) so far.
    std::size_t messages() const { return messages_; }

private:
    enum class State { command, data, auth_plain, auth_login_user, auth_login_pass, closed };

    void reply(const SmtpReply& r);
    void reply(int code, std::string text);
    void line(std::string_view l);
    void command(const SmtpCommand& cmd);
    void extension(const SmtpCommand& cmd);
    void flush_chunk();
    void finish_data();
    void error_counted(int code, std::string text);
    void auth_start(const SmtpCommand& cmd);
    void auth_plain(std::string_view b64);
    void auth_done(bool ok);
    void reset_transaction();
    std::vector<std::string> ehlo_lines() const;

    SmtpServerConfig cfg_;
    SmtpHandler& h_;
    State state_ = State::command;
    std::string in_;   ///< unprocessed command-mode input
    std::string out_;
    bool closed_ = false;
    bool tls_pending_ = false;
    bool tls_ = false;
    bool greeted_ = false;  ///< HELO/EHLO done
    bool esmtp_ = false;
    bool skipping_ = false;  ///< discarding the rest of an overlong line
    bool has_mail_ = false;
    std::size_t rcpts_ = 0;
    std::size_t errors_ = 0;
    std::size_t messages_ = 0;
    std::size_t transactions_ = 0;
    bool authenticated_ = false;
    std::string auth_user_;
    std::string login_user_;
    // DATA framing
    std::optional<DotDecoder> data_;
    std::string chunk_;
    // An extension reply's data waiting to be sent, and the input held back meanwhile.
    MessageSource body_;
    bool body_out_ = false;  ///< taken and being sent: input still waits until body_sent()
    std::string held_;
};

} // namespace mail
