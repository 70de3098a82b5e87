// RFC 5322 addresses (§3.4): address lists and SMTP paths to addr-specs, and
// the normal form used for matching.
//
// Normalisation rules:
// - Domains: ASCII letters folded to lower case, one trailing dot removed.
//   IDNA is out of scope: UTF-8 domains compare bytewise after that folding.
// - Local parts: ASCII letters folded to lower case. XXX RFC 5321 §2.4 says
//   local parts are case-sensitive; every real mail system treats them as
//   case-insensitive, and a whitelist that did not would be useless.
// - A quoted local part whose content is a valid dot-atom is unquoted
//   ("john"@x is john@x); otherwise it stays quoted, with only the needed
//   quoted-pairs.
// - Sender tags: BATV (prvs=TAG=local@dom) is removed by strip_sender_tags();
//   the domain stays, so the tag cannot make the sender anyone else. SRS
//   (SRS0=H=T=dom=local@fwd, SRS1=H=fwd==H=T=dom=local@fwd2) is removed only
//   for a trusted forwarder: its hash is the forwarder's secret, so an SRS
//   address from any other domain is that domain's own address (anyone can
//   write one). Tags are not verified and their content is not checked (real
//   tags vary: msprvs1=, SRS0+, SRS0-), only their shape.
//
// Leniency (obsolete syntax of RFC 5322 §4 and real-world sloppiness):
// unquoted dots anywhere in a local part (john..doe, .x), a trailing dot on
// a domain, CFWS around dots and '@', empty list elements (a@x,,b@y),
// source routes (<@r1,@r2:user@dom>, route dropped). Refused: control
// characters other than folding whitespace, nested groups, "<>" in a list.
#pragma once
#include "libmail/base/error.hpp"

#include <string>
#include <string_view>
#include <vector>

namespace mail {

/// One mailbox: an optional display name and an addr-spec.
struct Address {
    std::string display;  ///< display name as written (unfolded, comments dropped), may be empty
    std::string local;    ///< local part, unquoted where possible
    std::string domain;   ///< domain as written
    /// local@domain, "" for the null path.
    std::string addr_spec() const;
    /// True for the null path <>.
    bool empty() const { return local.empty() && domain.empty(); }
};

/// The addr-specs of an address-list header value, in order, groups flattened.
Result<std::vector<Address>> parse_address_list(std::string_view value);
/// An SMTP path: <user@dom>, <> (empty Address), <@a,@b:user@dom>, or a bare user@dom.
Result<Address> parse_path(std::string_view path);
/// A bare local@domain, surrounding whitespace and comments allowed.
Result<Address> parse_addr_spec(std::string_view s);

/// Lower-case ASCII, one trailing dot removed.
std::string normalize_domain(std::string_view d);
/// Lower-case ASCII; quoted only when not a dot-atom.
std::string normalize_local(std::string_view l);
/// normalize_local@normalize_domain.
std::string normalize_address(const Address& a);
/// The address without BATV tags, and without the SRS wrappers whose domain is in trusted_forwarders
/// (normalised domains): an SRS1 address comes off only as far as its forwarders are all trusted.
Address strip_sender_tags(const Address& a, const std::vector<std::string>& trusted_forwarders = {});
/// The domains in values (each one domain, or several separated by spaces or commas), normalised; an error
/// (kind usage) names the first that is no host name.
Result<std::vector<std::string>> parse_domain_list(const std::vector<std::string>& values);
/// True for a syntactically valid host name (labels of letters, digits, hyphens, underscores, UTF-8; no empty labels) or a domain literal.
bool is_valid_domain(std::string_view d);

} // namespace mail
