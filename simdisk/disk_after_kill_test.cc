// A disk after a kill: its live medium is the killed run's at the kill point, and every power
// loss of the killed run at that point (each pending write dropped, kept or torn) is a power loss
// of the new disk right after its inherited ops, with the same bytes.
#include "simdisk/disk_after_kill.h"

#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>

#include <algorithm>

#include "simdisk/materialise.h"
#include "simdisk/test_util.h"

namespace crashsim::simdisk {
namespace {

using testing::GenWorkload;
using testing::ReadAll;
using testing::RunWorkload;

// The original seq of each op the new disk inherited, in its order.
std::vector<uint64_t> InheritedSeqs(const Recording& recording, uint64_t point) {
  std::vector<uint64_t> seqs;
  for (uint64_t seq = recording.BarrierBefore(point); seq < point; ++seq) {
    if (recording.ops()[seq].ChangesMedium()) seqs.push_back(seq);
  }
  return seqs;
}

RC_GTEST_PROP(DiskAfterKill, EveryPowerLossOfTheKilledRunIsOneOfTheNewDisk, ()) {
  SimDiskOptions options;
  options.cache_mode = *rc::gen::element(CacheMode::kWriteback, CacheMode::kUnsafe);
  const auto ops = *GenWorkload(16384, 12, /*with_resize=*/true);
  auto run = RunWorkload(ops, options, 16384);
  auto recording = run->SnapshotRecording();
  const uint64_t point = *rc::gen::inRange<uint64_t>(0, recording->op_count() + 1);

  DiskAfterKill after = MakeDiskAfterKill(*recording, point, SimDiskOptions{});
  // (Compared into a bool: RC_ASSERT would print both media in full.)
  const bool live_equal = ReadAll(after.disk->live()) == ReadAll(*recording->MediumAt(point));
  RC_ASSERT(live_equal);
  const std::vector<uint64_t> seqs = InheritedSeqs(*recording, point);
  RC_ASSERT(after.inherited_ops == seqs.size());
  auto inherited = after.disk->SnapshotRecording();

  CrashModel model = testing::GenModel();
  // Garbage is seeded by the torn write's seq, which differs between the two recordings.
  model.content = TearContent::kOldOrNew;
  EnumerationOptions e;
  e.selection.model = model;
  e.selection.k = 2;
  e.selection.exhaustive_budget = 64;
  e.selection.samples = 4;
  e.dedupe = false;
  e.points = {point};
  CrashEnumerator enumerator(recording, e);
  uint64_t states = 0;
  while (auto state = enumerator.Next()) {
    CrashState mapped = *state;
    mapped.point = after.inherited_ops;
    for (WriteFate& fate : mapped.fates) {
      const auto at = std::find(seqs.begin(), seqs.end(), fate.op);
      RC_ASSERT(at != seqs.end());  // a pending op of the killed run was inherited
      fate.op = static_cast<uint64_t>(at - seqs.begin());
    }
    RC_ASSERT(ValidateCrashState(*inherited, mapped).ok());
    auto original = Materialise(*recording, *state);
    auto again = Materialise(*inherited, mapped);
    RC_ASSERT(original.ok() && again.ok());
    const bool equal = ReadAll(**original) == ReadAll(**again);
    RC_ASSERT(equal);
    ++states;
  }
  RC_ASSERT(states > 0);
  RC_CLASSIFY(seqs.size() > 1, "2+ inherited ops");
}

TEST(DiskAfterKill, TheDigestSeesThePendingBytesNotOnlyTheMedium) {
  auto run = [](uint8_t middle) {
    SimDisk disk;
    EXPECT_TRUE(disk.Resize(8192).ok());
    EXPECT_TRUE(disk.Flush().ok());
    EXPECT_TRUE(disk.Write(0, std::vector<uint8_t>(512, 1), {}).ok());
    EXPECT_TRUE(disk.Write(0, std::vector<uint8_t>(512, middle), {}).ok());
    EXPECT_TRUE(disk.Write(0, std::vector<uint8_t>(512, 1), {}).ok());
    return disk.SnapshotRecording();
  };
  auto a = run(2), b = run(3), c = run(2);
  const uint64_t end = a->op_count();
  // The same bytes on the medium, but a power loss after b's kill can leave 3s where a's
  // cannot: a repair after the kill must not take one's verdict for the other.
  EXPECT_EQ(ReadAll(*a->MediumAt(end)), ReadAll(*b->MediumAt(end)));
  EXPECT_NE(InheritedDigest(*a, end), InheritedDigest(*b, end));
  EXPECT_EQ(InheritedDigest(*a, end), InheritedDigest(*c, end));
  // After the flush nothing is pending, whatever came before it.
  EXPECT_EQ(InheritedDigest(*a, 2), InheritedDigest(*b, 2));
  EXPECT_EQ(MakeDiskAfterKill(*a, 2, {}).inherited_ops, 0u);
  EXPECT_EQ(MakeDiskAfterKill(*a, end, {}).inherited_ops, 3u);
}

}  // namespace
}  // namespace crashsim::simdisk
