// The senders an SMTP AUTH user may use (msmtp-proxy(8), `user add
// --sender`): the addresses the user owns, so that one stolen password
// cannot send as everybody at the site.
//
// A user's senders are addresses (alice@ours.example) or whole domains
// (@lists.ours.example: any address there), kept normalised in the store.
// A user without stored senders has the default: the login name when it is
// an address (alice@ours.example), else nothing at all.
#pragma once
#include "libmail/base/error.hpp"
#include "libmail/store/store.hpp"

#include <string>
#include <string_view>
#include <vector>

namespace mail {

/// An allowed sender as given to `user add --sender`: an address or @domain, normalised; kind usage otherwise.
Result<std::string> parse_user_sender(std::string_view text);
/// The senders u may use: its stored ones, else its name when that is an address, else none.
std::vector<std::string> user_senders(const User& u);
/// True when u has no stored senders and so uses the default.
bool user_senders_default(const User& u);
/// True when sender (a normalised address) is one of senders: an address exactly, or any address of an @domain.
bool may_send_as(const std::vector<std::string>& senders, std::string_view sender);

} // namespace mail
