// The stamp book's keys and balance in the store, shared by mstamp --paid,
// mstamp book and mstamp authority.
#pragma once
#include "libmail/base/error.hpp"
#include "libmail/store/store.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace mail {

/// Secret purposes in the store.
inline constexpr std::string_view owner_key_purpose = "book-owner";
inline constexpr std::string_view authority_key_purpose = "authority";

/// The private key among the store's owner keys whose public key is pub, if any.
Result<std::optional<std::string>> owner_key_for(Store& store, std::string_view pub);
/// Stamps left in the unexpired books at now.
Result<std::int64_t> book_balance(Store& store, std::int64_t now);

} // namespace mail
