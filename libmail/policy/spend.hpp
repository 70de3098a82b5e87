// The online spend check of a stamp authority (`mstamp authority serve`) and
// its client (mverify --authority).
//
// Protocol (mailstamp-spend-1, mstamp(1)): one TCP connection, lines ending in
// CRLF (LF accepted), at most spend_max_line octets. The client sends
//   SPEND <nonce> <stamp>
// where nonce is 32 to 128 lowercase hex digits the client drew at random for
// this request and stamp is the Mailstamp-Postage value (format_postage).
// The server spends only what the owner really stamped: the book must be one
// of its own and carry its signature, and the owner's signature over book,
// index, recipient and message must verify; anything else is refused and
// nothing is recorded. It records (book:<id>:<index>, the stamp's message
// identity) unless the stamp is already recorded, and answers
//   250 fresh SIG    first time this stamp is seen: recorded
//   251 same SIG     seen before on this same message: not a double spend
//   550 spent SIG    seen before on another message: a double spend
//   554 <reason>     not a stamp of this authority, or its signatures fail
//   530 <reason>     the old form "SPEND book:..." that carried no stamp
//   500 <reason>     a malformed request
//   451 <reason>     the store could not answer
// SIG is base64 of the authority's Ed25519 signature (with the key that
// issued the book) over
//   "mailstamp-spend-1" 0x00 len(4)|nonce SHA-256(stamp as sent)(32) code(3)
// The client believes only 250, 251 and 550 whose SIG verifies under the
// book's authority key; anything else makes the stamp Questionable, never Stamped.
// Several requests may follow on one connection; QUIT gets "221 bye" and
// the connection closes. An idle connection is closed after a timeout.
#pragma once
#include "libmail/base/error.hpp"
#include "libmail/policy/postage.hpp"
#include "libmail/store/store.hpp"

#include <cstdint>
#include <functional>
#include <iosfwd>
#include <string>
#include <string_view>
#include <vector>

namespace mail {

/// The longest request or answer line, CRLF excluded: a stamp of the largest parse_postage takes fits.
inline constexpr std::size_t spend_max_line = 9216;

/// Asks the authority at host:port (HOST:PORT or [IPv6]:PORT) to spend stamp, under a fresh nonce.
/// Unreachable or timed out: an Error of kind tempfail, within timeout_ms in all; an answer that is not a
/// 250, 251 or 550 signed by the book's authority over this request and nonce: an Error of kind data.
Result<SpendState> remote_spend(std::string_view authority, const PostageStamp& stamp, int timeout_ms);

/// The octets the authority signs in an answer with code (250, 251, 550) to nonce and stamp text.
std::string spend_answer_signed_bytes(std::string_view nonce, std::string_view stamp_text, std::string_view code);

/// Checks an answer line to (nonce, stamp_text) signed by authority_pub; the state it reports, or an Error of kind data.
Result<SpendState> parse_spend_answer(std::string_view answer, std::string_view nonce, std::string_view stamp_text,
                                      std::string_view authority_pub);

/// Options of the spend-check server.
struct SpendServerOptions {
    std::vector<std::string> listen;  ///< HOST:PORT, [IPv6]:PORT
    int max_sessions = 64;
    int idle_timeout_ms = 30000;
    std::int64_t max_requests = 0;    ///< stop after this many requests (tests); 0 = forever
    /// Called with each bound address (HOST:PORT, the real port when 0 was asked for) once listening.
    std::function<void(const std::string&)> on_listen;
};

/// Serves spend checks against store for books of the authority keys until killed (or max_requests);
/// errors binding are returned.
Result<void> serve_spend(Store& store, const std::vector<KeyPair>& keys, const SpendServerOptions& opt,
                         std::ostream& log);

/// The answer line for a request line (no line end), recording through store and signing with the key of
/// keys that issued the stamp's book; exposed for tests.
std::string spend_answer(Store& store, const std::vector<KeyPair>& keys, std::string_view request, std::int64_t now);

} // namespace mail
