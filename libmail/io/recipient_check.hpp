// Whether a recipient exists, asked before a token address is handed out
// for it (msmtp-proxy --verify-recipients): a file of the addresses and
// domains that exist, or a probe of the downstream server the way Postfix's
// reject_unverified_recipient does it (MAIL FROM:<>, RCPT TO:<addr>, RSET on
// a kept connection), its answers cached for a while. Only a definite
// refusal makes an address unknown; a probe that cannot finish is a
// temporary answer, never a guess.
#pragma once
#include "libmail/base/error.hpp"
#include "libmail/io/deliver.hpp"
#include "libmail/io/net.hpp"

#include <chrono>
#include <cstddef>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <unordered_map>

namespace mail {

/// What is known about a recipient.
enum class RecipientStatus { known, unknown, tempfail };

/// The answer, with the downstream's reply line for the log ("" from a map).
struct RecipientAnswer {
    RecipientStatus status = RecipientStatus::known;
    std::string detail;
    bool cached = false;
};

/// Checks recipients; shared by every session of a process (thread-safe).
class RecipientCheck {
public:
    virtual ~RecipientCheck() = default;
    /// address: normalised local@domain (a token's or BATV address's base, not the tagged form).
    virtual RecipientAnswer check(const std::string& address) = 0;
};

/// The addresses in a file, one a line: local@domain, or @domain for every address of that domain;
/// blank lines and lines starting with # skipped; compared ignoring case. Kind usage when the file cannot be
/// read or has an invalid line (its number said).
Result<std::unique_ptr<RecipientCheck>> recipient_map(const std::string& path);

/// How a probe's answers are kept.
struct ProbeCache {
    std::chrono::seconds positive{3600};  ///< an address the downstream took
    std::chrono::seconds negative{600};   ///< an address it refused
    std::size_t max_entries = 100000;     ///< beyond this the answers nearest their end are dropped
};

/// Probes the SMTP or LMTP server target (kind relay or lmtp), saying EHLO/LHLO helo; connections kept
/// for the next probe.
Result<std::unique_ptr<RecipientCheck>> recipient_probe(const DeliveryTarget& target, std::string helo,
                                                        std::chrono::milliseconds timeout, ProbeCache cache = {});

} // namespace mail
