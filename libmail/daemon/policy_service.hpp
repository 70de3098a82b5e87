// mmilter --policy: the admission core (admission.hpp) behind Postfix's
// policy delegation protocol (Postfix SMTPD_POLICY_README): a request is
// name=value lines ended by an empty line, the answer one `action=...` line
// and an empty line, many requests on one connection. At RCPT the core
// decides as for msmtp-proxy: a stranger gets `action=550 5.7.1 ...` with a
// one-time token address, anything the core accepts gets DUNNO so that
// Postfix's other restrictions go on, a lookup failure 451. A resend to a
// token address reserves the token at RCPT; the reservation becomes a use at
// END-OF-MESSAGE of the same instance (smtpd_end_of_data_restrictions), or
// at RCPT with claim_at_rcpt, and is released when the instance ends
// otherwise. Input is bounded: line length, attributes and octets a request,
// and an idle time.
#pragma once
#include "libmail/auth/auth.hpp"
#include "libmail/base/error.hpp"
#include "libmail/base/limits.hpp"
#include "libmail/daemon/hit_batch.hpp"
#include "libmail/io/smtp_io.hpp"
#include "libmail/policy/admission.hpp"
#include "libmail/policy/admission_auth.hpp"
#include "libmail/policy/admission_store.hpp"

#include <atomic>
#include <chrono>
#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace mail {

class Context;

/// The bounds on what a client may send.
struct PolicyLimits {
    std::size_t line = limits::policy_line_length;         ///< octets a line, without its newline
    std::size_t attributes = limits::policy_attributes;    ///< attributes a request
    std::size_t request = limits::policy_request_size;     ///< octets a request, newlines included
    std::chrono::milliseconds idle{limits::policy_idle * 1000};  ///< wait this long for the next line
};

/// One request: its attributes in the order given (a name given twice: the last counts).
struct PolicyRequest {
    std::vector<std::pair<std::string, std::string>> attributes;
    /// The value of name; "" when absent.
    std::string get(std::string_view name) const;
    /// True when name was given (even empty).
    bool has(std::string_view name) const;
};

/// Collects the lines of requests, within limits.
class PolicyReader {
public:
    explicit PolicyReader(const PolicyLimits& limits) : limits_(limits) {}
    /// One line without its newline (a CR before it is kept out by the caller): true when it ended a request
    /// (take() has it), false when more is wanted; kind data for input that breaks the protocol or a bound.
    Result<bool> line(std::string_view text);
    /// The request just ended; the reader starts the next.
    PolicyRequest take();
    /// True when no line of a request has been read.
    bool idle() const { return req_.attributes.empty(); }

private:
    const PolicyLimits& limits_;
    PolicyRequest req_;
    std::size_t octets_ = 0;
};

/// The resolved settings every session shares (read-only).
struct PolicyConfig {
    GatePolicy gate;                 ///< relay_control off (Postfix decides relaying), refuse_unknown on
    PolicyLimits limits;
    bool claim_at_rcpt = false;      ///< a token's use is recorded at RCPT (no END-OF-MESSAGE requests come)
    bool spf = true;                 ///< SPF of the sender at RCPT, for whitelist hits
    dns::Resolver* resolver = nullptr;
    auth::Settings auth_settings;
    std::vector<std::string> trusted_forwarders;
    std::shared_ptr<HitBatch> hits;  ///< whitelist hits to count; none: one write per hit
};

/// The answers of one connection: the transactions it sees (by instance), their token reservations.
class PolicySession {
public:
    /// store: this connection's own; nullptr when it could not be opened (every decision is then a 451).
    PolicySession(const PolicyConfig& config, Context& ctx, Store* store, std::string peer);
    /// Releases the reservations of an instance that never reached END-OF-MESSAGE.
    ~PolicySession();
    PolicySession(const PolicySession&) = delete;
    PolicySession& operator=(const PolicySession&) = delete;

    /// The action for req: "DUNNO", "550 5.7.1 ...", "451 4.3.0 ...".
    std::string answer(const PolicyRequest& req);

private:
    std::string at_rcpt(const PolicyRequest& req);
    std::string at_end(const PolicyRequest& req);
    void begin(const PolicyRequest& req);
    void end_instance();
    std::string claim();

    const PolicyConfig& c_;
    Context& ctx_;
    Store* store_;
    std::optional<StoreLookups> lookups_;
    std::optional<Lookups> look_;
    std::optional<Gate> gate_;
    std::unique_ptr<dns::Resolver> no_dns_;
    std::optional<FrontAuth> auth_;
    std::string peer_;
    // The transaction (one instance).
    std::string instance_;
    Facts facts_;
    std::string client_ip_, helo_;
    bool spf_done_ = false;
    std::vector<TokenRecord> holds_;
};

/// Runs one connection: reads requests from conn and writes the answers until the client closes it, a bound
/// is broken (logged; the connection is closed without an answer), the idle time passes or stop is set.
/// Returns the error that ended it, if any (kind data for a broken bound or protocol).
Result<void> run_policy_session(Conn& conn, PolicySession& session, const PolicyLimits& limits,
                                const std::atomic<bool>* stop);

/// The action text for a reply of the admission core: its lines joined into one ("550 5.7.1 a b c").
std::string policy_action(const SmtpReply& r);

} // namespace mail
