#include "simdisk/crash_state.h"

#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>

namespace crashsim::simdisk {
namespace {

TEST(UnitMask, HexIsBitIEqualsUnitI) {
  UnitMask mask = UnitMask::Range(4, 10);
  EXPECT_EQ(mask.ToHex(), "3f0");
  EXPECT_EQ(UnitMask::FromHex("3f0"), mask);
  EXPECT_EQ(UnitMask::FromHex("003f0"), mask);
  EXPECT_EQ(UnitMask().ToHex(), "0");
  UnitMask wide;
  wide.Set(130);
  EXPECT_EQ(wide.ToHex(), "4" + std::string(32, '0'));
  EXPECT_EQ(UnitMask::FromHex(wide.ToHex()), wide);
  EXPECT_FALSE(UnitMask::FromHex("xyz").has_value());
}

TEST(CrashState, TextForm) {
  CrashState state{CrashKind::kPowerLoss,
                   42,
                   {{7, {}, {}},
                    {9, UnitMask::FromWord(0x3f0), {}},
                    {11, UnitMask::FromWord(1), UnitMask::FromWord(2)}},
                   0x5eed};
  EXPECT_EQ(state.ToText(), "power-loss@42 drop=7 tear=9:3f0 tear=11:1/2 gseed=5eed");
  auto parsed = CrashState::Parse(state.ToText());
  ASSERT_TRUE(parsed.ok());
  EXPECT_EQ(*parsed, state);
  EXPECT_EQ(CrashState::Parse("process-kill@3")->point, 3u);
}

TEST(CrashState, RejectsMalformedText) {
  for (const char* bad :
       {"", "power-loss", "power-loss@x", "reboot@1", "power-loss@1 drop=3 drop=2",
        "power-loss@1 tear=3:0", "power-loss@1 tear=3:1/1", "power-loss@1 bogus=1",
        "process-kill@4 drop=1", "power-loss@1 tear=3"}) {
    EXPECT_FALSE(CrashState::Parse(bad).ok()) << bad;
  }
}

RC_GTEST_PROP(CrashState, TextRoundTrips, ()) {
  CrashState state;
  state.kind = *rc::gen::element(CrashKind::kPowerLoss, CrashKind::kProcessKill);
  state.point = *rc::gen::arbitrary<uint64_t>();
  if (state.kind == CrashKind::kPowerLoss) {
    uint64_t op = 0;
    const auto n = *rc::gen::inRange(0, 6);
    for (int i = 0; i < n; ++i) {
      op += 1 + *rc::gen::inRange<uint64_t>(0, 1000);
      WriteFate fate{op, {}, {}};
      const auto units = *rc::gen::inRange<uint64_t>(0, 200);
      for (uint64_t u = 0; u < units; ++u) {
        const int digit = *rc::gen::inRange(0, 3);
        if (digit == 1) fate.kept.Set(u);
        if (digit == 2) fate.garbage.Set(u);
      }
      state.fates.push_back(fate);
    }
    if (state.HasGarbage()) state.garbage_seed = *rc::gen::arbitrary<uint64_t>();
  }
  auto parsed = CrashState::Parse(state.ToText());
  RC_ASSERT(parsed.ok());
  RC_ASSERT(*parsed == state);
}

}  // namespace
}  // namespace crashsim::simdisk
