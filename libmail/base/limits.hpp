// Every bound on untrusted input, named in one place (DESIGN §8.5).
// Each is a default; programs may override them from options or config.
#pragma once
#include <cstddef>

namespace mail::limits {

/// Longest header line accepted, in octets, line ending included. Body lines
/// are not limited: the body streams through in fixed-size chunks.
/// RFC 5322 §2.1.1 says 998 + CRLF; we allow more because real mail breaks it.
inline constexpr std::size_t line_length = 64 * 1024;
/// Largest single header field (all its folded lines together).
inline constexpr std::size_t header_field_size = 64 * 1024;
/// Largest header section (all fields together).
inline constexpr std::size_t header_size = 1024 * 1024;
/// Most header fields in one message.
inline constexpr std::size_t header_fields = 10000;
/// Largest message accepted by any filter or daemon, in octets.
inline constexpr std::size_t message_size = 64 * 1024 * 1024;
/// Most recipients of one message or SMTP transaction.
inline constexpr std::size_t recipients = 1000;
/// From addresses of one message looked at (whitelist matching).
inline constexpr std::size_t from_addresses = 16;
/// Most addresses taken from one address-list header.
inline constexpr std::size_t addresses_per_field = 1000;
/// Longest address (RFC 5321 §4.5.3.1.3 path limit is 256).
inline constexpr std::size_t address_length = 320;
/// Longest local part (RFC 5321 §4.5.3.1.1).
inline constexpr std::size_t local_part_length = 64;
/// Longest domain (RFC 5321 §4.5.3.1.2).
inline constexpr std::size_t domain_length = 255;
/// MIME (mail/mime.hpp): header fields read from one body part's header.
inline constexpr std::size_t mime_fields = 1000;
/// MIME: parameters read from one Content-Type value.
inline constexpr std::size_t mime_params = 32;
/// MIME: parts (multipart containers included) a walk visits, and multipart nesting it enters.
inline constexpr std::size_t mime_parts = 64;
inline constexpr std::size_t mime_depth = 8;
/// MIME: the longest multipart boundary RFC 2046 §5.1.1 allows (what we edit), and the longest one we read
/// (mail in the wild breaks the rule).
inline constexpr std::size_t mime_boundary = 70;
inline constexpr std::size_t mime_boundary_read = 200;
/// Longest whitelist note.
inline constexpr std::size_t note_length = 1024;
/// Longest line of an import file.
inline constexpr std::size_t import_line_length = 4096;
/// Longest config file line, and largest config file.
inline constexpr std::size_t config_line_length = 4096;
inline constexpr std::size_t config_file_size = 1024 * 1024;
/// SMTP servers (msmtp-proxy, msourced): the longest command line, CRLF included (RFC 5321 §4.5.3.1.4 says
/// 512; AUTH responses need more, RFC 4954 §4).
inline constexpr std::size_t smtp_line_length = 2048;
/// Recipients accepted in one SMTP transaction (RFC 5321 §4.5.3.1.8 asks for at least 100).
inline constexpr std::size_t smtp_recipients = 100;
/// Concurrent SMTP sessions of one server.
inline constexpr std::size_t smtp_sessions = 100;
/// Concurrent SMTP sessions from one client address (an IPv4 address, an IPv6 /64) of one server.
inline constexpr std::size_t smtp_sessions_per_client = 10;
/// Failed SMTP AUTH attempts from one client address in auth_window seconds that lock the address out
/// until the window ends.
inline constexpr long auth_failures = 10;
/// Seconds of the window failed AUTH attempts are counted in (and so the longest lockout).
inline constexpr long auth_window = 900;
/// Failed AUTH attempts in a window answered at once; each later one waits 1, 2, 4... seconds.
inline constexpr long auth_free_failures = 3;
/// The longest wait before answering a failed AUTH attempt, in seconds.
inline constexpr long auth_max_delay = 8;
/// Password hashes (scrypt, 16 MiB each at the default cost) one process runs at once; the rest wait.
inline constexpr std::size_t auth_hashes = 4;
/// Seconds from a reply to the next command, and between octets of DATA (RFC 5321 §4.5.3.2.7).
inline constexpr int smtp_command_timeout = 300;
/// Seconds a whole SMTP session may last.
inline constexpr int smtp_session_time = 3600;
/// Octets a second a client must keep up during DATA, after a 10-second grace period.
inline constexpr std::size_t smtp_min_data_rate = 256;
/// Seconds to wait for a downstream server at each step.
inline constexpr int smtp_relay_timeout = 120;
/// msmtp-proxy: seconds between writes of the whitelist hit counts it batches (what a killed proxy can lose).
inline constexpr int hit_flush_interval = 2;
/// Seconds a one-time token stays reserved for the SMTP transaction that named it at RCPT when that
/// transaction neither ends nor gives it back (its proxy was killed).
inline constexpr int token_reservation = 600;
/// Token addresses handed out in 550 replies a day to one client network (/24, /64), and for one sender.
inline constexpr int token_issue_network = 20;
inline constexpr int token_issue_sender = 20;

/// The Postfix policy service (mmilter --policy): octets a line without its newline, attributes and octets a
/// request, seconds to wait for the next line (Postfix closes its idle connections after 300 s).
inline constexpr std::size_t policy_line_length = 4096;
inline constexpr std::size_t policy_attributes = 100;
inline constexpr std::size_t policy_request_size = 64 * 1024;
inline constexpr int policy_idle = 600;

/// SQLite busy timeout, milliseconds: past it a program exits 75.
inline constexpr int store_busy_timeout_ms = 10000;

} // namespace mail::limits
