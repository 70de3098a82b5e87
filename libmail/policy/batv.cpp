// BATV envelope sender signing: see batv.hpp for the format.
#include "libmail/policy/batv.hpp"

#include "libmail/base/text.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include <algorithm>

namespace mail {

namespace {

constexpr std::string_view tag_prefix = "prvs=";
constexpr std::string_view label = "mailstamp-batv";
constexpr std::size_t tag_len = 10;  // KDDDSSSSSS
constexpr std::size_t mac_len = 3;   // octets, 6 hex digits
constexpr std::size_t secret_len = 32;
constexpr std::int64_t day = 86400;

std::int64_t floor_mod(std::int64_t a, std::int64_t m) { return ((a % m) + m) % m; }

// Days since the epoch, rounded down also before it.
std::int64_t day_of(std::int64_t t) { return t >= 0 ? t / day : -((-t + day - 1) / day); }

int key_digit(int key_id) { return static_cast<int>(floor_mod(key_id, 10)); }

// The six hex digits of the code for KDDD and address (already lower-cased).
std::string code(const Secret& key, std::string_view kddd, std::string_view address) {
    std::string msg;
    msg.reserve(label.size() + 1 + kddd.size() + address.size());
    msg.append(label);
    msg.push_back('\0');
    msg.append(kddd);
    msg.append(address);
    unsigned char out[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    HMAC(EVP_sha256(), key.bytes.data(), static_cast<int>(key.bytes.size()),
         reinterpret_cast<const unsigned char*>(msg.data()), msg.size(), out, &n);
    static const char digits[] = "0123456789abcdef";
    std::string hex;
    for (std::size_t i = 0; i < mac_len; ++i) {
        hex.push_back(digits[out[i] >> 4]);
        hex.push_back(digits[out[i] & 15]);
    }
    return hex;
}

// The parts of prvs=TAG=rest@domain: TAG and rest@domain; false when address has no prvs= tag.
bool split_tag(std::string_view address, std::string_view& tag, std::string& inner) {
    auto at = address.rfind('@');
    if (at == std::string_view::npos) return false;
    std::string_view local = address.substr(0, at);
    if (!istarts_with(local, tag_prefix)) return false;
    // The same shape strip_sender_tags() takes off (address.cpp): something after the second '='.
    auto eq = local.find('=', tag_prefix.size());
    if (eq == std::string_view::npos || eq + 1 >= local.size()) return false;
    tag = local.substr(tag_prefix.size(), eq - tag_prefix.size());
    inner = std::string(local.substr(eq + 1)) + std::string(address.substr(at));
    return true;
}

bool all_digits(std::string_view s) {
    return std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

bool all_hex(std::string_view s) {
    return std::all_of(s.begin(), s.end(), [](char c) {
        return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
    });
}

} // namespace

std::string_view to_string(BatvCheck c) {
    switch (c) {
    case BatvCheck::ok: return "ok";
    case BatvCheck::unsigned_address: return "unsigned";
    case BatvCheck::bad_signature: return "bad signature";
    case BatvCheck::expired: return "expired";
    }
    return "bad signature";
}

std::string batv_sign(std::string_view address, const Secret& key, std::int64_t now, int valid_days) {
    if (address.empty() || address.find('@') == std::string_view::npos) return std::string(address);
    std::int64_t expiry = floor_mod(day_of(now) + valid_days, 1000);
    std::string kddd(1, static_cast<char>('0' + key_digit(key.key_id)));
    kddd.push_back(static_cast<char>('0' + expiry / 100));
    kddd.push_back(static_cast<char>('0' + expiry / 10 % 10));
    kddd.push_back(static_cast<char>('0' + expiry % 10));
    return std::string(tag_prefix) + kddd + code(key, kddd, lower(address)) + "=" + std::string(address);
}

BatvCheck batv_check(std::string_view address, const std::vector<Secret>& keys, std::int64_t now, int max_days) {
    std::string_view tag;
    std::string inner;
    if (!split_tag(address, tag, inner)) return BatvCheck::unsigned_address;
    if (tag.size() != tag_len || !all_digits(tag.substr(0, 4)) || !all_hex(tag.substr(4)))
        return BatvCheck::bad_signature;
    std::string_view kddd = tag.substr(0, 4);
    std::string got = lower(tag.substr(4));
    std::string signed_address = lower(inner);
    int k = kddd[0] - '0';
    bool good = false;
    // Every key with this digit, not just the newest: after ten rotations
    // two keys share it, and tags made with the older one are still out there.
    for (const auto& key : keys) {
        if (key_digit(key.key_id) != k) continue;
        std::string want = code(key, kddd, signed_address);
        good |= CRYPTO_memcmp(want.data(), got.data(), want.size()) == 0;
    }
    if (!good) return BatvCheck::bad_signature;
    std::int64_t expiry = (kddd[1] - '0') * 100 + (kddd[2] - '0') * 10 + (kddd[3] - '0');
    std::int64_t ahead = floor_mod(expiry - day_of(now), 1000);  // 0 = expires today
    return ahead <= std::clamp(max_days, 0, 999) ? BatvCheck::ok : BatvCheck::expired;
}

std::string batv_strip(std::string_view address) {
    std::string_view tag;
    std::string inner;
    return split_tag(address, tag, inner) ? inner : std::string(address);
}

Result<Secret> current_batv_secret(Store& store, std::int64_t now) {
    auto keys = store.secrets(batv_secret_purpose);
    if (!keys) return keys.error();
    if (!keys->empty()) return keys->front();
    unsigned char buf[secret_len];
    if (RAND_bytes(buf, sizeof buf) != 1) return Error{ErrorKind::tempfail, "random source failed"};
    auto id = store.secret_add(batv_secret_purpose, std::string_view(reinterpret_cast<char*>(buf), sizeof buf), now);
    OPENSSL_cleanse(buf, sizeof buf);
    if (!id) return id.error();
    auto again = store.secrets(batv_secret_purpose);
    if (!again) return again.error();
    if (again->empty()) return Error{ErrorKind::software, "BATV secret vanished after creation"};
    return again->front();
}

} // namespace mail
