// Finding the hosts that receive mail for a domain: DNS MX responses (parsed
// by the resolver layer's one packet parser), per-domain overrides, and the lookups
// through the one resolver layer (io/dns.hpp) behind one call.
#pragma once
#include "libmail/base/error.hpp"
#include "libmail/io/dns.hpp"
#include "libmail/io/net.hpp"

#include <chrono>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace mail {

/// One MX record.
struct MxRecord {
    int preference = 0;
    std::string host;  ///< without the trailing dot, lower-case; "." for the root (null MX)
};

/// Parses a DNS response (RFC 1035 §4.1) to an MX query for domain: the MX records in its answer section,
/// sorted by preference (equal preferences keep their order). Kind data when the packet is malformed
/// (truncated, bad name compression or pointer loops, counts beyond the packet), never reads past it.
/// CNAME records in the answer are skipped. Pure, for tests and the fuzzer.
Result<std::vector<MxRecord>> parse_mx_response(std::string_view packet);

/// What mail_hosts needs from a response: the header's rcode and TC flag, the answer count, the MX records.
struct MxResponse {
    int rcode = 0;           ///< RFC 1035 §4.1.1 RCODE: 0 NOERROR, 2 SERVFAIL, 3 NXDOMAIN, ...
    bool truncated = false;  ///< TC flag
    int answers = 0;         ///< ANCOUNT (all types)
    std::vector<MxRecord> records;  ///< as parse_mx_response returns them
};

/// Parses a DNS response like parse_mx_response, keeping the header fields too; kind data when malformed.
Result<MxResponse> parse_mx_message(std::string_view packet);

/// Per-domain overrides (--mx-map DOMAIN=HOST:PORT): lower-case domain → where its mail goes.
using MxMap = std::map<std::string, HostPort>;

/// Parses "DOMAIN=HOST:PORT" into map (domain lower-cased, one trailing dot dropped; a later entry for
/// the same domain replaces an earlier one); kind usage when malformed.
Result<void> add_mx_map_entry(MxMap& map, std::string_view text);

/// The domain in the form used for lookups and as MxMap key: lower-case, without a trailing dot.
/// Kind data when it is not a host name (empty, bad label, over 253 octets, characters outside
/// letters, digits, '-' and '_').
Result<std::string> normalize_mail_domain(std::string_view domain);

/// The hosts to try for domain (already normalized) given a parsed response, each with port:
/// the MX hosts in order; the domain itself when NOERROR with no MX records (RFC 5321 §5.1);
/// kind rejected for NXDOMAIN or a null MX (RFC 7505); kind tempfail for any other rcode. Pure.
Result<std::vector<HostPort>> hosts_from_response(std::string_view domain, const MxResponse& response,
                                                  const std::string& port);

/// The hosts to try for mail to domain given the answer to its MX query (dns.hpp), like hosts_from_response:
/// NXDOMAIN and null MX rejected, a temporary failure or an MX host that is not a host name tempfail. Pure.
Result<std::vector<HostPort>> hosts_from_answer(std::string_view domain, const dns::Answer& answer,
                                                const std::string& port);

/// The hosts to try for mail to domain, in order. The map's entry when there is one; else the domain's MX
/// records asked through resolver (null: a resolver of /etc/resolv.conf's servers with the given timeout
/// for the whole lookup), each host with port; a domain with no
/// MX records (NOERROR, no answer) is its own host (RFC 5321 §5.1 implicit MX). Kind rejected when the
/// domain does not exist (NXDOMAIN: "no such domain") or publishes a null MX (RFC 7505: a single MX with
/// host "." → "null MX: accepts no mail"); kind tempfail when the lookup fails otherwise (timeout,
/// SERVFAIL, no resolver); kind data for a domain that is not a host name.
Result<std::vector<HostPort>> mail_hosts(std::string_view domain, const MxMap& map, const std::string& port,
                                         std::chrono::milliseconds timeout, dns::Resolver* resolver = nullptr);

/// The addresses in the answer section of a DNS response to an A or AAAA query, as numeric text (RFC 1035
/// §3.4.1, RFC 3596 §2.2), with the header's rcode and TC flag; records of other types (CNAME) are skipped.
/// Kind data when malformed. Pure, like parse_mx_message.
struct AddressResponse {
    int rcode = 0;
    bool truncated = false;
    std::vector<std::string> addresses;
};
/// Parses a response to an A or AAAA query; kind data when malformed (never reads past the packet).
Result<AddressResponse> parse_address_message(std::string_view packet);

/// True for an address no MX found in DNS may send us to: loopback, unspecified, RFC 1918 and RFC 6598
/// private, link-local, 192.0.0.0/24, 198.18.0.0/15, multicast, reserved and broadcast (IPv4); loopback,
/// unspecified, IPv4-compatible (::/96), local-use NAT64 (64:ff9b:1::/48), unique-local, link-local,
/// site-local and multicast (IPv6), and IPv4-mapped, NAT64 (64:ff9b::/96) or 6to4 (2002::/16) forms of the
/// IPv4 ones. Also true for text that is not a numeric address. Pure.
bool internal_address(std::string_view ip);

/// True when a and b are the same numeric address (an IPv4-mapped IPv6 address equals its IPv4 form).
bool same_address(std::string_view a, std::string_view b);

/// One host to try for a domain, and where it may be reached.
struct MailTarget {
    HostPort host;                       ///< as named (an MX host, the domain itself, or the --mx-map entry)
    bool mapped = false;                 ///< from --mx-map: any address, connected to by name
    std::vector<std::string> addresses;  ///< numeric addresses to connect to, internal ones left out
    std::size_t internal = 0;            ///< internal addresses left out (mailstamp never connects to them)
    std::string error;                   ///< the first of its A/AAAA lookups that failed; addresses may be partial
};

/// The hosts to try for mail to domain with their addresses: like mail_hosts, then each DNS host's A and AAAA
/// records (the first 10 hosts), all lookups within timeout together. A host whose lookup fails or runs
/// past the timeout is kept with its error set and the addresses that did resolve; the others are still
/// looked up. When enough is given and returns true for a host after one of its lookups, the hosts so far
/// are returned at once. A map entry is resolved as written (a name through the system's resolver) and kept
/// whole. Kind tempfail only when the MX lookup fails; rejected and data as mail_hosts. The lookups go
/// through resolver (null: one of /etc/resolv.conf's servers with timeout per query, as mail_hosts).
Result<std::vector<MailTarget>> mail_targets(std::string_view domain, const MxMap& map, const std::string& port,
                                             std::chrono::milliseconds timeout,
                                             const std::function<bool(const MailTarget&)>& enough = {},
                                             dns::Resolver* resolver = nullptr);

/// True when the address lookup of one of the targets failed (see MailTarget::error).
bool targets_failed(const std::vector<MailTarget>& targets);

/// True when ip is an address of one of the targets (internal addresses count only in mapped targets).
bool is_target_address(const std::vector<MailTarget>& targets, std::string_view ip);

} // namespace mail
