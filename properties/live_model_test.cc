// The live model after ops that failed: each sector reads as before or as the op would have left
// it, and nothing else (garbage, or the data from another offset, is still caught).
#include "properties/live_model.h"

#include <gtest/gtest.h>

#include <vector>

namespace crashsim {
namespace {

std::vector<uint8_t> Pattern(uint32_t p, uint64_t offset, size_t n) {
  std::vector<uint8_t> v(n);
  FillPattern(p, offset, v);
  return v;
}

TEST(LiveModelTest, AFailedWriteReadsOldOrNewSectorBySector) {
  InitialContent zeros;
  LiveModel live(zeros, 1 << 20, 65536);
  live.Apply({.kind = WorkloadOpKind::kWrite, .offset = 0, .length = 2048, .pattern = 1});
  const WorkloadOp failed{
      .kind = WorkloadOpKind::kWrite, .offset = 0, .length = 1024, .pattern = 2};
  live.Forget(failed);
  // Sector 0 new, sector 1 old: legal.
  std::vector<uint8_t> got = Pattern(1, 0, 2048);
  std::vector<uint8_t> fresh = Pattern(2, 0, 512);
  std::copy(fresh.begin(), fresh.end(), got.begin());
  EXPECT_TRUE(live.Verify(0, got).ok());
  // Zeros (neither old nor new) in sector 1: caught.
  std::fill(got.begin() + 512, got.begin() + 1024, uint8_t{0});
  EXPECT_FALSE(live.Verify(0, got).ok());
  // The new data shifted by a sector: caught.
  got = Pattern(1, 0, 2048);
  std::vector<uint8_t> shifted = Pattern(2, 512, 512);
  std::copy(shifted.begin(), shifted.end(), got.begin());
  EXPECT_FALSE(live.Verify(0, got).ok());
  // Beyond the failed op the write that succeeded is still demanded.
  std::vector<uint8_t> tail(1024, 0);
  EXPECT_FALSE(live.Verify(1024, tail).ok());
}

TEST(LiveModelTest, UnflushedWritesLostInARestartReadAsDurableOrAsWritten) {
  InitialContent zeros;
  LiveModel live(zeros, 1 << 20, 65536);
  const WorkloadOp a{.kind = WorkloadOpKind::kWrite, .offset = 0, .length = 512, .pattern = 1};
  const WorkloadOp b{.kind = WorkloadOpKind::kWrite, .offset = 0, .length = 512, .pattern = 2};
  live.Apply(a);
  live.MarkDurable();
  live.Apply(b);
  EXPECT_FALSE(live.Verify(0, Pattern(1, 0, 512)).ok());  // before the restart: B only
  live.LoseUnflushed({b});
  EXPECT_TRUE(live.Verify(0, Pattern(1, 0, 512)).ok());             // durable A
  EXPECT_TRUE(live.Verify(0, Pattern(2, 0, 512)).ok());             // B
  EXPECT_FALSE(live.Verify(0, std::vector<uint8_t>(512, 0)).ok());  // zeros never were
}

// Snapshots: a revert reads as the newest snapshot of the disk's size did (deletions take the
// oldest); without snapshot support the ops change nothing.
TEST(LiveModelTest, ARevertReadsAsTheNewestSnapshotOfThatSize) {
  InitialContent zeros;
  for (bool supported : {true, false}) {
    LiveModel live(zeros, 1 << 20, 65536, supported);
    live.Apply({.kind = WorkloadOpKind::kWrite, .offset = 0, .length = 1024, .pattern = 1});
    live.Apply({.kind = WorkloadOpKind::kSnapshot});
    live.Apply({.kind = WorkloadOpKind::kWrite, .offset = 0, .length = 1024, .pattern = 2});
    live.Apply({.kind = WorkloadOpKind::kSnapshot});
    live.Apply({.kind = WorkloadOpKind::kWrite, .offset = 0, .length = 1024, .pattern = 3});
    live.Apply({.kind = WorkloadOpKind::kDeleteSnapshot});  // the first goes
    live.Apply({.kind = WorkloadOpKind::kApplySnapshot});
    const uint32_t want = supported ? 2 : 3;
    EXPECT_TRUE(live.Verify(0, Pattern(want, 0, 1024)).ok()) << supported;
    EXPECT_FALSE(live.Verify(0, Pattern(supported ? 3 : 2, 0, 1024)).ok()) << supported;
  }
}

}  // namespace
}  // namespace crashsim
