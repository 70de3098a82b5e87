// SHA-1 compression for hashcash minting: one 64-octet block at a time on a
// saved midstate. Uses the SHA-NI instructions when the CPU has them (a
// runtime CPUID check), else portable code. Not a general hash API: whole
// messages are hashed with OpenSSL.
#pragma once
#include <array>
#include <cstdint>
#include <string_view>

namespace mail {

/// The five SHA-1 chaining words.
using Sha1State = std::array<std::uint32_t, 5>;

/// The SHA-1 initial state.
inline constexpr Sha1State sha1_initial{0x67452301u, 0xEFCDAB89u, 0x98BADCFEu, 0x10325476u, 0xC3D2E1F0u};

/// Compresses one 64-octet block into state (portable code).
void sha1_compress_portable(Sha1State& state, const unsigned char* block);
/// Compresses one 64-octet block into state with SHA-NI, or portably when absent.
void sha1_compress(Sha1State& state, const unsigned char* block);
/// Compresses two independent blocks into two states (interleaved with
/// SHA-NI so one block's rounds fill the other's latency).
void sha1_compress2(Sha1State& s1, const unsigned char* b1, Sha1State& s2, const unsigned char* b2);
/// True when SHA-NI is used.
bool sha1_has_shani();

} // namespace mail
