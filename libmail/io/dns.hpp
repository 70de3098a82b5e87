// The one DNS resolver layer: queries for A, AAAA, MX, TXT, PTR (and the
// CNAME chains in front of them) sent to the site's resolver over UDP, TCP
// when the answer is truncated, each with its own timeout; a bounded cache
// that honours TTLs for the daemons. The packet is untrusted and parsed by
// hand (never past its end). Everything above (MX lookups for delivery, SPF,
// DKIM keys, DMARC records) asks through the Resolver interface, so it is
// tested with a fake and never opens a socket in a unit test.
//
// Which server: --dns HOST:PORT, config key `dns`, environment MAILSTAMP_DNS
// (app/settings resolves them); unset, the nameservers of /etc/resolv.conf.
#pragma once
#include "libmail/base/error.hpp"
#include "libmail/io/net.hpp"

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace mail::dns {

/// Record types (RFC 1035 §3.2.2, RFC 3596).
enum class Type : std::uint16_t { a = 1, ns = 2, cname = 5, soa = 6, ptr = 12, mx = 15, txt = 16, aaaa = 28 };

/// The name of a type as in a zone file ("A", "TXT", ...).
std::string_view type_name(Type t);

/// How a query ended.
enum class Status {
    ok,        ///< NOERROR; no records of the type asked is NODATA (records empty)
    nxdomain,  ///< the name does not exist (RCODE 3)
    servfail,  ///< SERVFAIL, REFUSED or another error RCODE: a temporary failure
    timeout,   ///< no answer within the timeout from any server: a temporary failure
    error,     ///< a malformed or mismatched answer, a name that cannot be asked: a temporary failure
};

/// One record of the answer, of the type asked.
struct Record {
    Type type = Type::a;
    std::uint32_t ttl = 0;
    std::string name;                  ///< owner name, lower-case, no trailing dot
    std::string text;                  ///< A/AAAA: numeric address; MX/PTR/CNAME/NS: the host (lower-case, no
                                       ///< trailing dot; "" for the root); TXT: the character-strings joined
    std::vector<std::string> strings;  ///< TXT: each character-string as sent
    int preference = 0;                ///< MX
};

/// The answer to one query.
struct Answer {
    Status status = Status::ok;
    std::vector<Record> records;  ///< of the type asked (CNAMEs followed, the CNAME records left out), in order
    std::uint32_t ttl = 0;        ///< how long this answer may be cached (the least TTL; the SOA minimum for
                                  ///< NXDOMAIN/NODATA when the server sent one, else 0)
    std::string detail;           ///< for a failure: one line saying what went wrong ("timeout after 2000 ms")

    /// True when the name exists with no record of the type (NOERROR, empty) or does not exist.
    bool empty() const { return (status == Status::ok && records.empty()) || status == Status::nxdomain; }
    /// True for servfail, timeout and error: the answer is unknown, try again later.
    bool temporary() const { return status == Status::servfail || status == Status::timeout || status == Status::error; }
};

/// Asks DNS. Implementations are safe to call from several threads at once.
class Resolver {
public:
    virtual ~Resolver() = default;
    /// The answer for name (with or without a trailing dot, any case) and type. Never throws.
    virtual Answer query(std::string_view name, Type type) = 0;
};

/// How the real resolver works.
struct ResolverOptions {
    std::vector<HostPort> servers;                 ///< where to ask; empty: the nameservers of /etc/resolv.conf
    std::chrono::milliseconds timeout{5000};       ///< per query (all attempts and servers together)
    int attempts = 2;                              ///< UDP sends per server within the timeout
    std::size_t cache_entries = 0;                 ///< 0: no cache (filters); daemons keep a bounded one
    std::chrono::seconds max_ttl{86400};           ///< cached answers live at most this long
    std::string resolv_conf = "/etc/resolv.conf";  ///< read when servers is empty (its nameserver lines, at
                                                   ///< most 3; none or no file: 127.0.0.1, as glibc does)
};

/// The resolver of real servers (UDP, TCP when truncated), with a TTL cache when options.cache_entries > 0. No
/// server named or in resolv.conf: 127.0.0.1, as glibc. Kind config for a non-numeric server, a timeout <= 0.
Result<std::unique_ptr<Resolver>> make_resolver(const ResolverOptions& options);

/// The bounded TTL cache alone, in front of inner (make_resolver uses it when cache_entries > 0): answers
/// kept for min(their ttl, max_ttl), least recently used dropped beyond entries; NXDOMAIN/NODATA kept for
/// their ttl (the SOA minimum), temporary failures and ttl 0 never. now is the clock (tests pass their own).
std::unique_ptr<Resolver> make_cache(std::unique_ptr<Resolver> inner, std::size_t entries,
                                     std::chrono::seconds max_ttl,
                                     std::function<std::chrono::steady_clock::time_point()> now = {});

/// A resolver whose every answer is Status::error with detail (when no real one could be made).
std::unique_ptr<Resolver> make_failing_resolver(std::string detail);

/// Parses "HOST:PORT", "HOST" (port 53), "[IPv6]:PORT" or a comma-separated list of them, as --dns takes
/// them; kind usage when malformed. HOST must be a numeric address.
Result<std::vector<HostPort>> parse_servers(std::string_view text);

/// The name for a PTR query of a numeric IPv4 or IPv6 address ("4.3.2.1.in-addr.arpa", nibbles under
/// "ip6.arpa"); kind data when ip is not one.
Result<std::string> reverse_name(std::string_view ip);

// ---- pure packet code, for tests and the fuzzer ----

/// A name as parse_response writes names: lower-case, no trailing dot, octets of a label outside printable
/// ASCII (and '.' or '\' inside one) as \DDD, the zone-file escape.
std::string canonical_name(std::string_view name);

/// A query packet for name and type with id (RD set, one question, an EDNS0 OPT record offering 1232 octets).
/// Kind data when name is not a valid domain name (empty label, label over 63 or name over 253 octets).
Result<std::string> build_query(std::uint16_t id, std::string_view name, Type type);

/// A parsed response.
struct Response {
    std::uint16_t id = 0;
    int rcode = 0;
    bool truncated = false;
    std::string question;            ///< the question name, lower-case, no trailing dot
    std::uint16_t question_type = 0;
    std::vector<Record> answers;     ///< every record of the answer section of the types above (CNAMEs too)
    std::optional<std::uint32_t> negative_ttl;  ///< min(SOA TTL, SOA MINIMUM) from the authority section
};

/// Parses a response (RFC 1035 §4.1); kind data when malformed (truncated, bad compression or pointer loops,
/// counts beyond the packet). Never reads past the packet.
Result<Response> parse_response(std::string_view packet);

/// The records of type asked for name in r, following CNAMEs in the answer section (at most 8), as Answer
/// (status from rcode). Pure.
Answer answer_from(const Response& r, std::string_view name, Type type);

} // namespace mail::dns
