// StepCoverage counts a state under the last write before its crash point and under each write
// its fates lose or tear; the explorer counts every state it checks, cached verdicts included.
#include "properties/step_coverage.h"

#include <gtest/gtest.h>

#include "properties/explorer.h"
#include "properties/random_workload.h"
#include "simdisk/sim_disk.h"

namespace crashsim {
namespace {

int Step(DurableStep s) { return static_cast<int>(s); }
int Tag(IoTag t) { return static_cast<int>(t); }

TEST(StepCoverage, CountsTheLastWriteBeforeThePointAndTheLostOnes) {
  simdisk::SimDiskOptions options;
  options.initial_size = 8192;
  simdisk::SimDisk disk(options);
  auto write = [&](uint64_t offset, IoTag tag, DurableStep step) {
    ASSERT_TRUE(disk.Write(offset, std::vector<uint8_t>(512, 7),
                           {.fua = false, .tag = tag, .step = static_cast<uint8_t>(step)})
                    .ok());
  };
  write(0, IoTag::kData, DurableStep::kGuestData);                  // op 0
  write(4096, IoTag::kRefcountBlock, DurableStep::kRefblockAlloc);  // op 1
  std::vector<uint8_t> buf(512);
  ASSERT_TRUE(disk.Read(0, buf).ok());                     // op 2: a read is not a write
  write(512, IoTag::kL2Table, DurableStep::kL2Writeback);  // op 3
  auto recording = disk.SnapshotRecording();

  StepCoverage c;
  c.AddRun(*recording);
  EXPECT_EQ(c.run_step[Step(DurableStep::kGuestData)], 1u);
  EXPECT_EQ(c.run_tag[Tag(IoTag::kRefcountBlock)], 1u);
  // Crashed after op 1 (the read after it does not count), ops 0 and 1 lost.
  simdisk::CrashState state;
  state.point = 3;
  state.fates = {{0, {}, {}}, {1, {}, {}}};
  c.Add(*recording, state);
  // Crashed before any write: counted as a state, under no step.
  simdisk::CrashState first;
  first.kind = simdisk::CrashKind::kProcessKill;
  c.Add(*recording, first);
  EXPECT_EQ(c.states, 2u);
  EXPECT_EQ(c.after_step[Step(DurableStep::kRefblockAlloc)], 1u);
  EXPECT_EQ(c.after_tag[Tag(IoTag::kRefcountBlock)], 1u);
  EXPECT_EQ(c.after_step[Step(DurableStep::kGuestData)], 0u);
  EXPECT_EQ(c.lost_step[Step(DurableStep::kGuestData)], 1u);
  EXPECT_EQ(c.lost_step[Step(DurableStep::kRefblockAlloc)], 1u);
  EXPECT_EQ(c.lost_tag[Tag(IoTag::kData)], 1u);

  const std::vector<DurableStep> never = c.StepsNeverCrashed();
  EXPECT_EQ(std::count(never.begin(), never.end(), DurableStep::kRefblockAlloc), 0);
  EXPECT_EQ(std::count(never.begin(), never.end(), DurableStep::kL2Writeback), 1);
  EXPECT_NE(c.Table().find("steps no state crashed after: create, header-update"),
            std::string::npos)
      << c.Table();

  StepCoverage twice = c;
  twice += c;
  EXPECT_EQ(twice.states, 4u);
  EXPECT_EQ(twice.lost_step[Step(DurableStep::kGuestData)], 2u);
  EXPECT_EQ(twice.run_step[Step(DurableStep::kL2Writeback)], 2u);
}

TEST(StepCoverage, TheExplorerCountsEveryStateItChecks) {
  ExploreOptions o;
  o.settings.image.cluster_size = 4096;
  o.settings.image.lazy_refcounts = true;
  o.settings.selection.exhaustive_budget = 8;
  o.settings.selection.samples = 1;
  auto explorer = Explorer::Record(RandomWorkload(2, 12, 64 * 4096, 4096), o);
  ASSERT_TRUE(explorer.ok()) << explorer.status().ToString();
  ExploreReport report = (*explorer)->Run();
  ASSERT_TRUE(report.ok());
  ASSERT_GT(report.cache_hits, 0u);  // states with cached verdicts are counted too
  EXPECT_EQ(report.coverage.states, report.explored);
  uint64_t after = 0;
  for (uint64_t n : report.coverage.after_step) after += n;
  EXPECT_LE(after, report.explored);
  EXPECT_GT(after, report.explored * 9 / 10);  // only points before the run's first write miss
  EXPECT_GT(report.coverage.after_step[Step(DurableStep::kDirtyBitSet)], 0u);
  EXPECT_GT(report.coverage.after_step[Step(DurableStep::kL2Writeback)], 0u);
}

}  // namespace
}  // namespace crashsim
