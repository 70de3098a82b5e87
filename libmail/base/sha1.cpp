// SHA-1 compression (FIPS 180-4 §6.1.2): portable and SHA-NI versions.
#include "libmail/base/sha1.hpp"

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#include <immintrin.h>
#define MAILSTAMP_X86 1
#endif

namespace mail {

namespace {
inline std::uint32_t rotl(std::uint32_t x, int n) { return (x << n) | (x >> (32 - n)); }
} // namespace

void sha1_compress_portable(Sha1State& st, const unsigned char* p) {
    std::uint32_t w[80];
    for (int i = 0; i < 16; ++i)
        w[i] = (std::uint32_t{p[4 * i]} << 24) | (std::uint32_t{p[4 * i + 1]} << 16) |
               (std::uint32_t{p[4 * i + 2]} << 8) | std::uint32_t{p[4 * i + 3]};
    for (int i = 16; i < 80; ++i) w[i] = rotl(w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16], 1);
    std::uint32_t a = st[0], b = st[1], c = st[2], d = st[3], e = st[4];
    for (int i = 0; i < 80; ++i) {
        std::uint32_t f, k;
        if (i < 20) {
            f = (b & c) | (~b & d);
            k = 0x5A827999u;
        } else if (i < 40) {
            f = b ^ c ^ d;
            k = 0x6ED9EBA1u;
        } else if (i < 60) {
            f = (b & c) | (b & d) | (c & d);
            k = 0x8F1BBCDCu;
        } else {
            f = b ^ c ^ d;
            k = 0xCA62C1D6u;
        }
        std::uint32_t t = rotl(a, 5) + f + e + k + w[i];
        e = d;
        d = c;
        c = rotl(b, 30);
        b = a;
        a = t;
    }
    st[0] += a;
    st[1] += b;
    st[2] += c;
    st[3] += d;
    st[4] += e;
}

#ifdef MAILSTAMP_X86
namespace {

// Four rounds per sha1rnds4; the round function changes every 20 rounds,
// so the immediate is group / 5. The schedule for group i >= 4 is
// msg2(msg1(W[i-4], W[i-3]) ^ W[i-2], W[i-1]).
template <int F>
__attribute__((target("sha,sse4.1"))) inline __m128i rounds(__m128i abcd, __m128i e) {
    return _mm_sha1rnds4_epu32(abcd, e, F);
}

__attribute__((target("sha,sse4.1"))) void compress_shani(Sha1State& st, const unsigned char* p) {
    const __m128i bswap = _mm_set_epi8(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    __m128i abcd = _mm_loadu_si128(reinterpret_cast<const __m128i*>(st.data()));
    abcd = _mm_shuffle_epi32(abcd, 0x1B);
    __m128i e0 = _mm_set_epi32(static_cast<int>(st[4]), 0, 0, 0);
    const __m128i abcd_save = abcd;
    const __m128i e_save = e0;

    __m128i w[20];
    for (int i = 0; i < 4; ++i)
        w[i] = _mm_shuffle_epi8(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 16 * i)), bswap);
    for (int i = 4; i < 20; ++i)
        w[i] = _mm_sha1msg2_epu32(_mm_xor_si128(_mm_sha1msg1_epu32(w[i - 4], w[i - 3]), w[i - 2]), w[i - 1]);

    __m128i prev = abcd;
    __m128i e = _mm_add_epi32(e0, w[0]);
    abcd = rounds<0>(abcd, e);
    for (int i = 1; i < 20; ++i) {
        e = _mm_sha1nexte_epu32(prev, w[i]);
        prev = abcd;
        switch (i / 5) {
        case 0: abcd = rounds<0>(abcd, e); break;
        case 1: abcd = rounds<1>(abcd, e); break;
        case 2: abcd = rounds<2>(abcd, e); break;
        default: abcd = rounds<3>(abcd, e); break;
        }
    }
    e = _mm_sha1nexte_epu32(prev, e_save);
    abcd = _mm_add_epi32(abcd, abcd_save);
    abcd = _mm_shuffle_epi32(abcd, 0x1B);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(st.data()), abcd);
    st[4] = static_cast<std::uint32_t>(_mm_extract_epi32(e, 3));
}

__attribute__((target("sha,sse4.1"))) void compress2_shani(Sha1State& s1, const unsigned char* p1, Sha1State& s2,
                                                           const unsigned char* p2) {
    const __m128i bswap = _mm_set_epi8(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    __m128i a1 = _mm_shuffle_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(s1.data())), 0x1B);
    __m128i a2 = _mm_shuffle_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(s2.data())), 0x1B);
    const __m128i a1_save = a1, a2_save = a2;
    const __m128i e1_save = _mm_set_epi32(static_cast<int>(s1[4]), 0, 0, 0);
    const __m128i e2_save = _mm_set_epi32(static_cast<int>(s2[4]), 0, 0, 0);
    __m128i w1[20], w2[20];
    for (int i = 0; i < 4; ++i) {
        w1[i] = _mm_shuffle_epi8(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p1 + 16 * i)), bswap);
        w2[i] = _mm_shuffle_epi8(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p2 + 16 * i)), bswap);
    }
    for (int i = 4; i < 20; ++i) {
        w1[i] = _mm_sha1msg2_epu32(_mm_xor_si128(_mm_sha1msg1_epu32(w1[i - 4], w1[i - 3]), w1[i - 2]), w1[i - 1]);
        w2[i] = _mm_sha1msg2_epu32(_mm_xor_si128(_mm_sha1msg1_epu32(w2[i - 4], w2[i - 3]), w2[i - 2]), w2[i - 1]);
    }
    __m128i prev1 = a1, prev2 = a2;
    __m128i e1 = _mm_add_epi32(e1_save, w1[0]);
    __m128i e2 = _mm_add_epi32(e2_save, w2[0]);
    a1 = rounds<0>(a1, e1);
    a2 = rounds<0>(a2, e2);
    for (int i = 1; i < 20; ++i) {
        e1 = _mm_sha1nexte_epu32(prev1, w1[i]);
        e2 = _mm_sha1nexte_epu32(prev2, w2[i]);
        prev1 = a1;
        prev2 = a2;
        switch (i / 5) {
        case 0: a1 = rounds<0>(a1, e1); a2 = rounds<0>(a2, e2); break;
        case 1: a1 = rounds<1>(a1, e1); a2 = rounds<1>(a2, e2); break;
        case 2: a1 = rounds<2>(a1, e1); a2 = rounds<2>(a2, e2); break;
        default: a1 = rounds<3>(a1, e1); a2 = rounds<3>(a2, e2); break;
        }
    }
    e1 = _mm_sha1nexte_epu32(prev1, e1_save);
    e2 = _mm_sha1nexte_epu32(prev2, e2_save);
    a1 = _mm_shuffle_epi32(_mm_add_epi32(a1, a1_save), 0x1B);
    a2 = _mm_shuffle_epi32(_mm_add_epi32(a2, a2_save), 0x1B);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(s1.data()), a1);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(s2.data()), a2);
    s1[4] = static_cast<std::uint32_t>(_mm_extract_epi32(e1, 3));
    s2[4] = static_cast<std::uint32_t>(_mm_extract_epi32(e2, 3));
}

bool detect_shani() {
    unsigned a, b, c, d;
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return false;
    bool sha = (b >> 29) & 1;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return false;
    bool sse41 = (c >> 19) & 1, ssse3 = (c >> 9) & 1;
    return sha && sse41 && ssse3;
}

} // namespace

bool sha1_has_shani() {
    static const bool has = detect_shani();
    return has;
}

void sha1_compress(Sha1State& st, const unsigned char* block) {
    if (sha1_has_shani()) compress_shani(st, block);
    else sha1_compress_portable(st, block);
}

void sha1_compress2(Sha1State& s1, const unsigned char* b1, Sha1State& s2, const unsigned char* b2) {
    if (sha1_has_shani()) {
        compress2_shani(s1, b1, s2, b2);
    } else {
        sha1_compress_portable(s1, b1);
        sha1_compress_portable(s2, b2);
    }
}
#else
void sha1_compress2(Sha1State& s1, const unsigned char* b1, Sha1State& s2, const unsigned char* b2) {
    sha1_compress_portable(s1, b1);
    sha1_compress_portable(s2, b2);
}
bool sha1_has_shani() { return false; }
void sha1_compress(Sha1State& st, const unsigned char* block) { sha1_compress_portable(st, block); }
#endif

} // namespace mail
