// Helpers the two halves of msourced share (source.cpp: sending, passes,
// expiry; source_session.cpp: the SMTP session). Internal to libmail.
#pragma once
#include "libmail/daemon/source.hpp"

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

} // namespace mail::source_detail
