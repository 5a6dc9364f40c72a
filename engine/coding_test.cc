#include "engine/coding.h"

#include <gtest/gtest.h>

namespace crashsim {
namespace {

TEST(CodingTest, RoundTripsBigEndian) {
  uint8_t buf[8];
  StoreBE64(buf, 0x0102030405060708ull);
  EXPECT_EQ(buf[0], 0x01);
  EXPECT_EQ(buf[7], 0x08);
  EXPECT_EQ(LoadBE64(buf), 0x0102030405060708ull);
  StoreBE32(buf, 0xdeadbeef);
  EXPECT_EQ(LoadBE32(buf), 0xdeadbeefu);
  StoreBE16(buf, 0xabcd);
  EXPECT_EQ(LoadBE16(buf), 0xabcd);
}

TEST(CodingTest, Alignment) {
  EXPECT_EQ(AlignUp(1, 512), 512u);
  EXPECT_EQ(AlignDown(1023, 512), 512u);
  EXPECT_EQ(DivRoundUp(65537, 65536), 2u);
  EXPECT_TRUE(IsAligned(4096, 512));
}

}  // namespace
}  // namespace crashsim
