// mmilter's sessions (mmilter(8)): one MTA connection's state, the admission
// core (admission.hpp) asked at MAIL, at RCPT and at the end of the message,
// and what the milter protocol is to answer, as plain values: a reply per
// stage and, at the end of the message, the edits (header fields added,
// changed or deleted, recipients swapped, a quarantine). Nothing here knows
// libmilter (tool/milter_cmd.cpp carries these out through smfi_*), so the
// unit tests drive it directly. The MTA decides relaying and delivers; a
// transaction carries one category, since the MTA makes one copy.
#pragma once
#include "libmail/daemon/proxy.hpp"
#include "libmail/policy/admission.hpp"
#include "libmail/policy/admission_auth.hpp"
#include "libmail/policy/admission_store.hpp"
#include "libmail/mail/spool.hpp"
#include "libmail/smtp/smtp_server.hpp"

#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace mail {

class Context;
class Store;

/// What a stage answers the MTA.
struct MilterReply {
    enum class Action { cont, reject, tempfail, discard };
    Action action = Action::cont;
    SmtpReply reply;  ///< reject and tempfail: the code and text ("5.7.1 ..." lines)

    static MilterReply go() { return {}; }
    /// A refusal or deferral with r (its class picks the action).
    static MilterReply of(const SmtpReply& r);
};

/// One change to the message at its end, in order.
struct MilterEdit {
    enum class Kind { insert_header, change_header, add_rcpt, del_rcpt, quarantine };
    Kind kind;
    std::string name;   ///< a header field's name; a recipient (add/del); the quarantine reason
    std::string value;  ///< the field's value, no leading space (insert, change; "" with change deletes it)
    int index = 0;      ///< insert: position (0 the top); change: the field's occurrence among those named name (1-based)
};

/// One connection from the MTA.
class MilterSession {
public:
    /// policy: the resolved admission settings (shared); ctx the logger and stamping settings; store this
    /// connection's own.
    MilterSession(const ProxyPolicy& policy, Context& ctx, Store& store);

    /// The client, from {client_addr} and {client_port} ("" when the MTA does not say), and its host name.
    MilterReply connect(const std::string& addr, const std::string& port);
    /// HELO/EHLO's argument.
    MilterReply helo(const std::string& name);
    /// MAIL FROM's path (with or without angle brackets); user: {auth_authen}, "" when not authenticated.
    MilterReply mail(const std::string& path, const std::string& user);
    /// One RCPT TO's path.
    MilterReply rcpt(const std::string& path);
    /// One header field: value is everything after the colon as the message has it, its leading space
    /// included (folds as "\n" or "\r\n"), so that signatures over the exact bytes (DKIM's simple
    /// canonicalization) check out. An MTA that eats the space after the colon (no SMFIP_HDR_LEADSPC) has it
    /// put back by the caller.
    MilterReply header(const std::string& name, const std::string& value);
    /// The end of the header section.
    MilterReply end_of_header();
    /// A piece of the body (CRLF line ends).
    MilterReply body(std::string_view chunk);
    /// The end of the message: the answer; edits filled when it is to go on.
    MilterReply end_of_message(std::vector<MilterEdit>& edits);
    /// The transaction ended without a message (RSET, a refusal, a lost connection): tokens are let go.
    void abort();
    /// The MTA refused the edits of the message end_of_message just went on with (the caller tempfails it):
    /// the token uses it claimed are given back. Until the next MAIL only: the milter protocol says nothing
    /// after the end of the message, so what the MTA does then is not known here.
    void edits_refused();

private:
    struct Rcpt {
        Decision d;
        std::string path;        ///< as the MTA gave it, for smfi_delrcpt
        std::string forward_to;  ///< forward mode: where it goes when it stays Unknown
    };
    /// The recipients' key for sharing a transaction (one category per message).
    std::string class_of(const Decision& d) const;
    void reset();
    MilterReply refuse(const Decision& d, std::string_view rcpt);
    Result<MilterReply> finish(std::vector<MilterEdit>& edits);
    Result<MilterReply> finish_outgoing(std::vector<MilterEdit>& edits);
    Result<std::optional<SmtpReply>> claim_tokens();
    void give_back_tokens();
    void header_edits(const MessageReader& msg, const Verdict& v, char letter, std::vector<MilterEdit>& edits);

    const ProxyPolicy& p_;
    Context& ctx_;
    Store& store_;
    StoreLookups lookups_;
    Lookups look_;
    GatePolicy gate_policy_;
    Gate gate_;
    std::unique_ptr<dns::Resolver> no_dns_;
    FrontAuth auth_;
    std::string client_, helo_;
    // The transaction.
    bool have_sender_ = false;
    std::size_t relayed_ = 0;  ///< recipients outside the protected domains: the MTA's to relay, none of ours
    Facts facts_;
    std::vector<Rcpt> rcpts_;
    std::vector<std::pair<std::string, std::string>> fields_;  ///< the header fields as received (name, after the colon)
    HeadSpool data_;
    std::vector<std::string> holds_, claimed_;
    std::vector<std::string> taken_;  ///< the tokens the last message that went on claimed (edits_refused)
};

} // namespace mail
