// Whitelist entries: their text syntax, matching, and the import/export formats.
//
// Entry syntax (mwhitelist(1)):
//   user@dom     a sender address
//   dom, @dom    a sender domain, exactly
//   .dom         a sender domain and every domain below it
//   rcpt:ADDR    an unconditional recipient (in the lines format; the CLI uses --recipient)
// Matching: the sender is normalised (address.hpp) with BATV tags stripped
// (SRS wrappers of trusted forwarders are the caller's to take off first; any
// other SRS address is its forwarder's own); a sender at an address literal
// matches no sender entry. An entry applies when its scope is empty, or equals
// the recipient's address or domain. The most specific match wins: address over domain over
// the longest subdomain entry; a recipient- or domain-scoped entry over an
// unscoped one.
#pragma once
#include "libmail/base/error.hpp"
#include "libmail/store/store.hpp"

#include <iosfwd>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace mail {

/// Parses an ENTRY argument (user@dom, dom, @dom, .dom) to kind and normalised value.
Result<WlEntry> parse_wl_entry(std::string_view text);
/// Parses a recipient address for an unconditional-recipient entry.
Result<WlEntry> parse_wl_recipient(std::string_view text);
/// Parses a --for scope (a domain or one address) to its normalised form.
Result<std::string> parse_wl_scope(std::string_view text);
/// The entry as written in lists and the lines format (@dom, .dom, user@dom, rcpt:addr).
std::string wl_entry_text(const WlEntry& e);

/// The scope for entries made from mail that sender sent: sender (normalised) when it is an address in one of
/// domains (the protected domains), else "" (a personal store, or a sender who is not ours).
std::string wl_outgoing_scope(std::string_view sender, const std::vector<std::string>& domains);
/// Entries for the recipients of outgoing mail: sender addresses of source outgoing, scoped to scope, created
/// at now; recipients that are no whitelistable address (an address literal, a malformed domain) are left out.
std::vector<WlEntry> wl_outgoing_entries(const std::vector<std::string>& rcpts, std::string_view scope,
                                         std::int64_t now);

/// The best entry for sender (and recipient, when not empty), if any. Reads only.
Result<std::optional<WlEntry>> wl_match(Store& store, std::string_view sender, std::string_view recipient);

/// Import/export formats.
enum class WlFormat { lines, csv };

/// Counts printed by import.
struct WlImportCounts {
    std::int64_t added = 0;
    std::int64_t existing = 0;
    std::int64_t lines = 0;
};

/// Reads entries in format from in and adds them in one transaction; a malformed line fails the batch.
Result<WlImportCounts> wl_import(Store& store, std::istream& in, WlFormat format, std::int64_t now);
/// Writes every entry in format; wl_import of the output reproduces the store's entries.
Result<void> wl_export(Store& store, std::ostream& out, WlFormat format);
/// Writes every entry as a JSON array.
Result<void> wl_list_json(Store& store, std::ostream& out);
/// Writes a header line naming the columns, then every entry, one per line, its fields separated by tabs.
Result<void> wl_list_text(Store& store, std::ostream& out);

/// Splits one CSV record (RFC 4180 quoting) into fields; nothing when malformed.
std::optional<std::vector<std::string>> csv_split(std::string_view line);
/// Quotes a CSV field when it needs it.
std::string csv_field(std::string_view s);
/// Escapes s as a JSON string literal, quotes included.
std::string json_string(std::string_view s);

} // namespace mail
