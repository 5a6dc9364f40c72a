// Deterministic 64-bit hashing for data digests, state descriptions and deduplication. Bytes are
// read explicitly little-endian so a digest is the same on every machine. Not cryptographic:
// 64 bits make an accidental collision among the states of one run negligible, not impossible.
#pragma once

#include <cstdint>
#include <span>
#include <string_view>

namespace crashsim::simdisk {

// The splitmix64 finaliser: a bijective mix of one word.
inline uint64_t Mix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

// Order-sensitive combination: HashCombine(HashCombine(h, a), b) != ... (h, b), a).
inline uint64_t HashCombine(uint64_t h, uint64_t value) {
  return Mix64(h ^ (value + 0x9e3779b97f4a7c15ULL + (h << 6) + (h >> 2)));
}

uint64_t HashBytes(std::span<const uint8_t> data, uint64_t seed = 0);
uint64_t HashString(std::string_view text, uint64_t seed = 0);

}  // namespace crashsim::simdisk
