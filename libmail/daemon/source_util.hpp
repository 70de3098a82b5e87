// Helpers the parts of msourced share (source.cpp: sending, passes, expiry;
// source_fetch.cpp: fetching; source_session.cpp: the SMTP session).
// Internal to libmail.
#pragma once
#include "libmail/daemon/source.hpp"
#include "libmail/io/smtp_client.hpp"

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace mail::source_detail {

/// An id as logged: its first 8 hex digits (a whole id is a capability to fetch held mail).
std::string id_tag(const std::string& id);
/// The address part of "HOST:PORT" or "[IPv6]:PORT".
std::string ip_of(const std::string& peer);
/// hp as HOST:PORT or [IPv6]:PORT.
std::string host_port_text(const HostPort& hp);
/// A peer's reply as kept in notes and logs: its last line, controls replaced, bounded.
std::string reply_text(const SmtpReply& r);
/// The bytes of the file at path, as a message source.
MessageSource file_source(const std::string& path);
/// The header section head with forged verdict fields removed and fields added on top (given bottom first).
Result<std::string> edited_head(const std::string& head, std::string_view authserv_id,
                                const std::vector<std::pair<std::string, std::string>>& fields);
/// A Received field's value.
std::string received_field(const std::string& from, const std::string& ip, const std::string& by,
                           const std::string& with, const std::vector<std::string>& rcpts);
/// The lower-case domain of addr ("" without one).
std::string domain_of(const std::string& addr);
/// Delivers msg (header edited with fields) to the policy's target, making the Delivery in d when needed.
Result<DeliveryResult> hand_on(const SourcePolicy& p, std::unique_ptr<Delivery>& d, const std::string& sender,
                               const std::vector<std::string>& rcpts, const HeadSpool& msg,
                               const std::vector<std::pair<std::string, std::string>>& fields);

/// A claimed row is not taken by another pass for this long (a pass that died leaves it to the next). A pass
/// works on a domain's rows for at most half of it, then gives the rest back: no row is ever worked on by two.
inline constexpr std::int64_t claim_lease = 1800;
/// The wait before the next try of a row tried tries times: retry, doubled each time, at most retry-max.
std::int64_t backoff(const SourcePolicy& p, std::int64_t tries);
/// True when a pass should stop: the daemon is shutting down.
bool stopping(const SourcePolicy& p);
/// Connects to the first host for domain that answers (offering SOURCE when need_source), never to an internal
/// address found in DNS; kind rejected when the domain takes no mail.
Result<std::pair<std::unique_ptr<SmtpClient>, HostPort>> connect_domain(const SourcePolicy& p, const std::string& domain,
                                                                        bool need_source);
/// Where a fetched message waits when its delivery failed after the GET; empty when the domain cannot be part
/// of a file name.
std::string fetched_path(const SourcePolicy& p, const SourceIn& s);
/// Fetches the partial messages in rows (all from one domain) from that domain's MX and delivers them
/// (source_fetch.cpp); counts go into pass, the Delivery in delivery is made when needed.
void fetch_domain(const SourcePolicy& p, Context& ctx, Store& store, const std::string& domain,
                  std::vector<SourceIn>& rows, SourcePass& pass, std::unique_ptr<Delivery>& delivery);

} // namespace mail::source_detail
