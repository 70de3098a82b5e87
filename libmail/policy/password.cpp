// Password hashes: see password.hpp for the format.
#include "libmail/policy/password.hpp"

#include "libmail/base/limits.hpp"
#include "libmail/policy/postage.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include <condition_variable>
#include <cstdint>
#include <mutex>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <optional>

namespace mail {

namespace {

constexpr std::string_view prefix = "$scrypt$";
constexpr std::size_t salt_len = 16;
constexpr std::size_t hash_len = 32;
constexpr int block_size = 8;  // r: the value RFC 7914 §2 recommends
constexpr int parallelism = 1;

struct Params {
    int ln = 0;
    int r = 0;
    int p = 0;
};

// How many hashes may run at once, and how many do: each takes 16 MiB or more, and sixty clients
// guessing together would otherwise take a gigabyte.
struct HashGate {
    HashGate() {
#ifdef __GLIBC__
        // scrypt's blocks (16 MiB at the default cost) are then mapped for each hash and unmapped after it.
        // Left to itself glibc raises its mmap threshold at the first such free and keeps the next blocks in
        // the arena of every thread that hashed: a brute-force run left 300 MB resident behind the gate.
        mallopt(M_MMAP_THRESHOLD, 4 << 20);
#endif
    }
    std::mutex m;
    std::condition_variable cv;
    std::size_t limit = limits::auth_hashes;
    std::size_t running = 0;
};

HashGate& gate() {
    static HashGate g;
    return g;
}

// One running hash, while it lives.
class HashSlot {
public:
    HashSlot() {
        HashGate& g = gate();
        std::unique_lock<std::mutex> lk(g.m);
        g.cv.wait(lk, [&] { return g.limit == 0 || g.running < g.limit; });
        ++g.running;
    }
    ~HashSlot() {
        HashGate& g = gate();
        std::lock_guard<std::mutex> lk(g.m);
        --g.running;
        g.cv.notify_one();
    }
    HashSlot(const HashSlot&) = delete;
    HashSlot& operator=(const HashSlot&) = delete;
};

// Scrypt into out; false when OpenSSL refuses (bad parameters, no memory).
bool scrypt(std::string_view password, std::string_view salt, const Params& k, unsigned char* out, std::size_t n) {
    std::uint64_t cost = std::uint64_t{1} << k.ln;
    // What OpenSSL allocates (B and V of RFC 7914 §5), plus slack; its default
    // limit of 32 MiB would refuse the larger parameters the format allows.
    std::uint64_t maxmem = 128 * std::uint64_t(k.r) * (cost + 2 + std::uint64_t(k.p)) + (1u << 20);
    HashSlot slot;
    return EVP_PBE_scrypt(password.data(), password.size(), reinterpret_cast<const unsigned char*>(salt.data()),
                          salt.size(), cost, std::uint64_t(k.r), std::uint64_t(k.p), maxmem, out, n) == 1;
}

// Reads "name=digits" up to the end of s: one or two digits, no leading zero.
std::optional<int> read_param(std::string_view s, std::string_view name) {
    if (s.substr(0, name.size()) != name || s.size() <= name.size() + 1 || s[name.size()] != '=') return std::nullopt;
    std::string_view d = s.substr(name.size() + 1);
    if (d.size() > 2 || (d.size() > 1 && d[0] == '0')) return std::nullopt;
    int v = 0;
    for (char c : d) {
        if (c < '0' || c > '9') return std::nullopt;
        v = v * 10 + (c - '0');
    }
    return v;
}

// Splits s at the first sep: the part before it, and s becomes the rest.
std::optional<std::string_view> take(std::string_view& s, char sep) {
    auto at = s.find(sep);
    if (at == std::string_view::npos) return std::nullopt;
    std::string_view head = s.substr(0, at);
    s.remove_prefix(at + 1);
    return head;
}

std::optional<Params> parse_params(std::string_view s) {
    auto ln_text = take(s, ',');
    if (!ln_text) return std::nullopt;
    auto r_text = take(s, ',');
    if (!r_text) return std::nullopt;
    auto ln = read_param(*ln_text, "ln");
    auto r = read_param(*r_text, "r");
    auto p = read_param(s, "p");
    if (!ln || !r || !p) return std::nullopt;
    if (*ln < 10 || *ln > 20 || *r < 1 || *r > 16 || *p < 1 || *p > 4) return std::nullopt;
    return Params{*ln, *r, *p};
}

} // namespace

void set_password_hash_limit(std::size_t n) {
    HashGate& g = gate();
    std::lock_guard<std::mutex> lk(g.m);
    g.limit = n;
    g.cv.notify_all();
}

Result<std::string> hash_password(std::string_view password, int log2_n) {
    if (log2_n < 10 || log2_n > 20) return Error{ErrorKind::usage, "scrypt cost ln=" + std::to_string(log2_n) +
                                                                         " is outside 10..20"};
    unsigned char salt[salt_len];
    if (RAND_bytes(salt, sizeof salt) != 1) return Error{ErrorKind::tempfail, "random source failed"};
    std::string_view salt_view(reinterpret_cast<char*>(salt), sizeof salt);
    Params k{log2_n, block_size, parallelism};
    unsigned char out[hash_len];
    if (!scrypt(password, salt_view, k, out, sizeof out))
        return Error{ErrorKind::tempfail, "scrypt failed (out of memory?)"};
    std::string text(prefix);
    text += "ln=" + std::to_string(k.ln) + ",r=" + std::to_string(k.r) + ",p=" + std::to_string(k.p) + "$";
    text += base64_encode(salt_view);
    text += "$";
    text += base64_encode(std::string_view(reinterpret_cast<char*>(out), sizeof out));
    OPENSSL_cleanse(out, sizeof out);
    return text;
}

bool verify_password(std::string_view password, std::string_view hash) {
    if (hash.substr(0, prefix.size()) != prefix) return false;
    std::string_view rest = hash.substr(prefix.size());
    auto params_text = take(rest, '$');
    if (!params_text) return false;
    auto salt_text = take(rest, '$');
    if (!salt_text) return false;
    auto k = parse_params(*params_text);
    auto salt = base64_decode(*salt_text);
    auto want = base64_decode(rest);  // the hash: the rest, so a further '$' is malformed
    if (!k || !salt || !want || salt->size() != salt_len || want->size() != hash_len) return false;
    unsigned char got[hash_len];
    if (!scrypt(password, *salt, *k, got, sizeof got)) return false;
    bool same = CRYPTO_memcmp(got, want->data(), hash_len) == 0;
    OPENSSL_cleanse(got, sizeof got);
    return same;
}

} // namespace mail
