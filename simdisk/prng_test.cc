#include "simdisk/prng.h"

#include <gtest/gtest.h>

#include "simdisk/hash.h"

namespace crashsim::simdisk {
namespace {

TEST(Prng, SplitMix64MatchesReferenceVector) {
  // First outputs of the reference splitmix64.c for seed 1234567.
  uint64_t state = 1234567;
  EXPECT_EQ(SplitMix64(state), 6457827717110365317ULL);
  EXPECT_EQ(SplitMix64(state), 3203168211198807973ULL);
  EXPECT_EQ(SplitMix64(state), 9817491932198370423ULL);
}

TEST(Prng, XoshiroIsAPureFunctionOfTheSeed) {
  Xoshiro256 a(42), b(42), c(43);
  uint64_t differ = 0;
  for (int i = 0; i < 100; ++i) {
    const uint64_t x = a.Next();
    EXPECT_EQ(x, b.Next());
    differ += x != c.Next();
  }
  EXPECT_GT(differ, 95u);
}

TEST(Prng, BelowStaysInRangeAndCoversIt) {
  Xoshiro256 rng(1);
  uint64_t seen[7] = {};
  for (int i = 0; i < 7000; ++i) ++seen[rng.Below(7)];
  for (uint64_t count : seen) EXPECT_GT(count, 800u);
}

TEST(Hash, IsStableAndSensitive) {
  const std::vector<uint8_t> a = {1,  2,  3,  4,  5,  6,  7,  8,  9,  10, 11,
                                  12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22,
                                  23, 24, 25, 26, 27, 28, 29, 30, 31, 32, 33};
  std::vector<uint8_t> b = a;
  b[32] ^= 1;
  EXPECT_EQ(HashBytes(a), HashBytes(a));
  EXPECT_NE(HashBytes(a), HashBytes(b));
  EXPECT_NE(HashBytes(a), HashBytes({a.data(), 32}));
  EXPECT_NE(HashBytes(a, 1), HashBytes(a, 2));
}

}  // namespace
}  // namespace crashsim::simdisk
