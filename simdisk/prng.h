// simdisk's own pseudo-random numbers: splitmix64 to derive seeds, xoshiro256** for streams.
// Nothing in simdisk uses <random>: standard-library distributions differ between library
// versions, and a crash-state sequence must be the same for a seed on every machine. There are
// no clocks here either; every stream is a pure function of the seed it was given.
#pragma once

#include <cstdint>

#include "engine/invariant.h"

namespace crashsim::simdisk {

// One splitmix64 step (Steele, Lea, Flood 2014): advances state, returns a well-mixed word.
inline uint64_t SplitMix64(uint64_t& state) {
  uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

// A sub-seed for a named component or index: different (seed, salt) pairs give unrelated
// streams.
inline uint64_t DeriveSeed(uint64_t seed, uint64_t salt) {
  uint64_t state = seed ^ (salt * 0xd1342543de82ef95ULL);
  return SplitMix64(state);
}

// xoshiro256** (Blackman, Vigna 2018), seeded through splitmix64 as its authors recommend.
class Xoshiro256 {
 public:
  explicit Xoshiro256(uint64_t seed) {
    for (uint64_t& word : s_) word = SplitMix64(seed);
  }

  uint64_t Next() {
    const uint64_t result = Rotl(s_[1] * 5, 7) * 9;
    const uint64_t t = s_[1] << 17;
    s_[2] ^= s_[0];
    s_[3] ^= s_[1];
    s_[1] ^= s_[2];
    s_[0] ^= s_[3];
    s_[2] ^= t;
    s_[3] = Rotl(s_[3], 45);
    return result;
  }

  // Uniform in [0, n), n > 0, by rejection (no modulo bias, same on every platform).
  uint64_t Below(uint64_t n) {
    INVARIANT(n > 0);
    const uint64_t limit = UINT64_MAX - UINT64_MAX % n;
    uint64_t x = Next();
    while (x >= limit) x = Next();
    return x % n;
  }

  // True with probability numerator / denominator.
  bool Chance(uint64_t numerator, uint64_t denominator) { return Below(denominator) < numerator; }

 private:
  static uint64_t Rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
  uint64_t s_[4];
};

}  // namespace crashsim::simdisk
