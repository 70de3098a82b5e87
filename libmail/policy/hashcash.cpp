// Hashcash minting and checking: see hashcash.hpp.
//
// Minting hashes "PREFIX" + COUNTER where PREFIX = 1:BITS:DATE:RESOURCE::RAND:
// The whole 64-octet blocks of PREFIX are compressed once (the midstate);
// RAND is padded so that the rest of PREFIX plus an 8-character counter and
// SHA-1's padding fit one block, so every try costs one compression.
#include "libmail/policy/hashcash.hpp"

#include "libmail/mail/message.hpp"
#include "libmail/base/sha1.hpp"
#include "libmail/base/text.hpp"

#include <openssl/rand.h>
#include <openssl/sha.h>

#include <atomic>
#include <charconv>
#include <cstring>
#include <ctime>
#include <mutex>
#include <thread>
#include <vector>

namespace mail {

namespace {

constexpr std::string_view alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
constexpr std::size_t counter_len = 9;  // worker, lane, then 42 bits of counter

int zero_bits(const Sha1State& st) {
    int n = 0;
    for (std::uint32_t w : st) {
        if (w == 0) {
            n += 32;
            continue;
        }
        return n + __builtin_clz(w);
    }
    return n;
}

bool split(std::string_view s, std::string_view* f, int n) {
    for (int i = 0; i < n - 1; ++i) {
        auto c = s.find(':');
        if (c == std::string_view::npos) return false;
        f[i] = s.substr(0, c);
        s.remove_prefix(c + 1);
    }
    f[n - 1] = s;
    return f[n - 1].find(':') == std::string_view::npos;
}

} // namespace

std::optional<std::int64_t> parse_hashcash_date(std::string_view d) {
    if (d.size() != 6 && d.size() != 10 && d.size() != 12) return std::nullopt;
    int v[6] = {0, 1, 1, 0, 0, 0};
    for (std::size_t i = 0; i < d.size() / 2; ++i) {
        auto [p, ec] = std::from_chars(d.data() + 2 * i, d.data() + 2 * i + 2, v[i]);
        if (ec != std::errc() || p != d.data() + 2 * i + 2) return std::nullopt;
    }
    if (v[1] < 1 || v[1] > 12 || v[2] < 1 || v[2] > 31 || v[3] > 23 || v[4] > 59 || v[5] > 60) return std::nullopt;
    std::tm tm{};
    tm.tm_year = 100 + v[0];
    tm.tm_mon = v[1] - 1;
    tm.tm_mday = v[2];
    tm.tm_hour = v[3];
    tm.tm_min = v[4];
    tm.tm_sec = v[5];
    return static_cast<std::int64_t>(timegm(&tm));
}

std::string format_hashcash_date(std::int64_t t) {
    std::time_t tt = static_cast<std::time_t>(t);
    std::tm tm{};
    gmtime_r(&tt, &tm);
    char buf[16];
    std::strftime(buf, sizeof buf, "%y%m%d", &tm);
    return buf;
}

int hashcash_value(std::string_view text) {
    unsigned char d[SHA_DIGEST_LENGTH];
    SHA1(reinterpret_cast<const unsigned char*>(text.data()), text.size(), d);
    Sha1State st;
    for (int i = 0; i < 5; ++i)
        st[i] = (std::uint32_t{d[4 * i]} << 24) | (std::uint32_t{d[4 * i + 1]} << 16) |
                (std::uint32_t{d[4 * i + 2]} << 8) | d[4 * i + 3];
    return zero_bits(st);
}

std::optional<HashcashStamp> parse_hashcash(std::string_view text) {
    text = trim(text);
    if (text.size() > 1024) return std::nullopt;
    std::string_view f[7];
    if (!split(text, f, 7) || f[0] != "1") return std::nullopt;
    HashcashStamp s;
    auto [p, ec] = std::from_chars(f[1].data(), f[1].data() + f[1].size(), s.bits);
    if (ec != std::errc() || p != f[1].data() + f[1].size() || s.bits < 0 || s.bits > 160) return std::nullopt;
    auto t = parse_hashcash_date(f[2]);
    if (!t || f[3].empty() || f[5].empty() || f[6].empty()) return std::nullopt;
    s.time = *t;
    s.resource = std::string(f[3]);
    s.text = std::string(text);
    return s;
}

std::string_view to_string(HashcashCheck c) {
    switch (c) {
    case HashcashCheck::ok: return "ok";
    case HashcashCheck::malformed: return "malformed";
    case HashcashCheck::wrong_resource: return "wrong resource";
    case HashcashCheck::too_few_bits: return "too few bits";
    case HashcashCheck::expired: return "expired";
    case HashcashCheck::future: return "dated in the future";
    }
    return "malformed";
}

HashcashCheck check_hashcash(std::string_view text, std::string_view resource, int min_bits, std::int64_t now,
                             std::int64_t validity, std::int64_t grace) {
    auto s = parse_hashcash(text);
    if (!s) return HashcashCheck::malformed;
    if (!iequals(s->resource, resource)) return HashcashCheck::wrong_resource;
    // The claimed value must be enough, and the hash must make the claim good.
    if (s->bits < min_bits || hashcash_value(s->text) < s->bits) return HashcashCheck::too_few_bits;
    if (s->time > now + grace) return HashcashCheck::future;
    if (now > s->time + validity + grace) return HashcashCheck::expired;
    return HashcashCheck::ok;
}

Result<std::string> mint_hashcash(std::string_view resource, int bits, std::int64_t now, unsigned threads) {
    if (bits < 0 || bits > 40) return Error{ErrorKind::usage, "hashcash bits must be between 0 and 40"};
    if (resource.empty() || resource.size() > 512 || resource.find(':') != std::string_view::npos)
        return Error{ErrorKind::data, "hashcash resource must be 1 to 512 octets without ':'"};
    unsigned char rnd[12];
    if (RAND_bytes(rnd, sizeof rnd) != 1) return Error{ErrorKind::tempfail, "random source failed"};
    std::string prefix = "1:" + std::to_string(bits) + ":" + format_hashcash_date(now) + ":" + std::string(resource) + "::";
    for (unsigned char c : rnd) prefix.push_back(alphabet[c & 63]);
    // Pad RAND until the tail of the prefix plus the counter fits one block
    // with SHA-1's 9 octets of padding and length.
    while (prefix.size() % 64 + 1 + counter_len > 55) prefix.push_back(alphabet[prefix.size() & 63]);
    prefix.push_back(':');

    Sha1State mid = sha1_initial;
    std::size_t whole = prefix.size() / 64 * 64;
    for (std::size_t i = 0; i < whole; i += 64) sha1_compress(mid, reinterpret_cast<const unsigned char*>(prefix.data() + i));
    std::string tail = prefix.substr(whole);
    std::uint64_t total_bits = (prefix.size() + counter_len) * 8;

    if (threads == 0) threads = std::max(1u, std::thread::hardware_concurrency());
    if (threads > 64) threads = 64;  // one counter character per worker
    std::atomic<bool> found{false};
    std::string winner;
    std::mutex m;
    auto work = [&](unsigned id) {
        // Two blocks per step, told apart by the second counter character; two
        // such pairs, so that the counter for the next step is written while
        // this step's blocks are hashed (a load right after byte stores to the
        // same 16 octets stalls on store forwarding and cost a fifth of the rate).
        alignas(64) unsigned char blocks[2][2][64] = {};
        for (auto& pair : blocks) {
            for (int b = 0; b < 2; ++b) {
                std::memcpy(pair[b], tail.data(), tail.size());
                pair[b][tail.size()] = static_cast<unsigned char>(alphabet[id % 64]);
                pair[b][tail.size() + 1] = static_cast<unsigned char>(alphabet[b]);
                pair[b][tail.size() + counter_len] = 0x80;
                for (int i = 0; i < 8; ++i) pair[b][63 - i] = static_cast<unsigned char>(total_bits >> (8 * i));
            }
        }
        auto set_counter = [&](unsigned char (*pair)[64], std::uint64_t n) {
            for (std::size_t k = 2; k < counter_len; ++k) {
                auto c = static_cast<unsigned char>(alphabet[n & 63]);
                pair[0][tail.size() + k] = c;
                pair[1][tail.size() + k] = c;
                n >>= 6;
            }
        };
        // Worker id in the first counter character keeps the workers' spaces apart.
        set_counter(blocks[0], 0);
        for (std::uint64_t n = 0; !found.load(std::memory_order_relaxed); ++n) {
            set_counter(blocks[(n + 1) & 1], n + 1);
            auto* pair = blocks[n & 1];
            Sha1State st0 = mid, st1 = mid;
            sha1_compress2(st0, pair[0], st1, pair[1]);
            int hit = zero_bits(st0) >= bits ? 0 : (zero_bits(st1) >= bits ? 1 : -1);
            if (hit >= 0) {
                std::lock_guard<std::mutex> lock(m);
                if (!found.exchange(true))
                    winner = prefix + std::string(reinterpret_cast<char*>(pair[hit] + tail.size()), counter_len);
                return;
            }
        }
    };
    std::vector<std::thread> pool;
    for (unsigned i = 1; i < threads; ++i) pool.emplace_back(work, i);
    work(0);
    for (auto& t : pool) t.join();
    return winner;
}

} // namespace mail
