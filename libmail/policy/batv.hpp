// BATV envelope sender signing (draft-levine-smtp-batv-01, the "prvs" scheme),
// so that msmtp-proxy can refuse bounces to addresses it never sent from.
//
// A signed sender is prvs=KDDDSSSSSS=local@domain:
//   K       the signing key's store id mod 10 (one decimal digit)
//   DDD     the expiry day, days since the epoch (UTC) mod 1000, three digits
//   SSSSSS  HMAC-SHA256(key, "mailstamp-batv" | 0x00 | KDDD | lower-cased local@domain)[0..3), lower-case hex
// XXX draft-levine-smtp-batv-01 §4.1: the draft's prvs hashes with SHA-1 over
// the key and the address; HMAC-SHA256 with a label is used instead. Only
// this site checks its own tags, so nobody else needs to compute them.
// The address signed is ASCII-lower-cased, so a relay that folds case cannot
// break a tag; the hex is read in either case for the same reason.
// The tag makes the local part 16 octets longer; it is added even past the
// 64 octets of RFC 5321 §4.5.3.1.1, which few servers enforce: refusing to
// sign would make the bounces to that sender unsigned.
// Checking: an address batv_strip leaves unchanged is unsigned_address; a
// prvs= tag not of the shape above, or whose code no key with its K gives, is
// bad_signature; a right code whose day is more than max_days past today
// (mod 1000) is expired. A tag is good on its expiry day itself.
// The same shape is what address.hpp's strip_sender_tags() removes, so a
// signed sender normalises to the unsigned one everywhere else.
#pragma once
#include "libmail/base/error.hpp"
#include "libmail/store/store.hpp"

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace mail {

/// The purpose under which BATV keys are stored (Store::secrets).
inline constexpr std::string_view batv_secret_purpose = "batv";

/// prvs=KDDDSSSSSS=local@domain: K = key id mod 10, DDD = expiry day (days since the epoch + valid_days) mod 1000, SSSSSS = first 3 octets of HMAC-SHA256(key, "mailstamp-batv" | 0x00 | KDDD | lower-cased address) in lower-case hex. address is local@domain (no angle brackets); the null path "" and anything without an '@' come back unchanged.
std::string batv_sign(std::string_view address, const Secret& key, std::int64_t now, int valid_days = 7);

/// The outcome of checking a recipient of a bounce.
enum class BatvCheck { ok, unsigned_address, bad_signature, expired };

/// The word for an outcome ("ok", "unsigned", "bad signature", "expired").
std::string_view to_string(BatvCheck c);

/// Checks address (as a bounce's RCPT gives it; the prvs= tag case-insensitive) against keys (the key whose id mod 10 is K); the expiry day must lie within [today, today + 1000 - 1 days) treated modulo 1000 with a window of max_days (default 30) ahead of today; signature compared in constant time.
BatvCheck batv_check(std::string_view address, const std::vector<Secret>& keys, std::int64_t now, int max_days = 30);

/// The address with a prvs= tag removed (unchanged when there is none).
std::string batv_strip(std::string_view address);

/// The newest BATV key from the store, creating the first one (32 random octets) when there is none.
Result<Secret> current_batv_secret(Store& store, std::int64_t now);

} // namespace mail
