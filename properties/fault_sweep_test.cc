// The I/O-error sweep as a property (issue 13): generated workloads and image options; each
// device op of the engine's run fails once with EIO and once with ENOSPC (fault_sweep.h).
#include "properties/fault_sweep.h"

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>

#include <cstdio>

#include "properties/property_env.h"
#include "properties/workload_gen.h"
#include "simdisk/write_cache.h"
#include "traces/capture.h"

namespace crashsim {
namespace {

// What the sweeps covered, printed when the test program ends.
FaultSweepReport g_total;
uint64_t g_cases = 0;

class SweepCoverage : public ::testing::Environment {
 public:
  void TearDown() override {
    if (g_cases == 0) return;
    std::printf("fault sweep coverage: %llu cases; %s", static_cast<unsigned long long>(g_cases),
                g_total.Summary().c_str());
  }
};
const auto* const kSweepCoverage = ::testing::AddGlobalTestEnvironment(new SweepCoverage);

// After each error, every crash point: the state that kept every write, and the states that
// drop or tear one metadata write (k = 1, up to 8 per point) plus one sampled state; the crash
// property proper explores the runs without errors in depth. The repair is failed at each of
// its ops instead of crashed.
ExploreSettings SweepSettings() {
  ExploreSettings s;
  s.selection.k = 1;
  s.selection.exhaustive_budget = 8;
  s.selection.samples = 1;
  s.repair_crash_states = 0;
  return s;
}

// A lazy-refcount image (v3, writethrough) of `cluster_size` clusters.
ExploreSettings LazySettings(uint64_t cluster_size) {
  ExploreSettings s = SweepSettings();
  s.image.lazy_refcounts = true;
  s.image.cluster_size = cluster_size;
  return s;
}

ExploreOptions SweepOptionsFor(const ExploreSettings& settings) {
  ExploreOptions o;
  o.settings = settings;
  o.max_states = 0;
  o.shard_index = GetPropertyEnv().shard_index;  // shards split the faults
  o.shard_count = GetPropertyEnv().shard_count;
  return o;
}

void CheckSweep(const ExploreSettings& settings, const Workload& workload) {
  auto report = SweepFaults(workload, SweepOptionsFor(settings));
  RC_ASSERT(report.ok());
  ++g_cases;
  g_total.faults += report->faults;
  for (int k = 0; k < 4; ++k) g_total.by_kind[k] += report->by_kind[k];
  g_total.create_faults += report->create_faults;
  g_total.surfaced += report->surfaced;
  g_total.states += report->states;
  g_total.dirty_ends += report->dirty_ends;
  g_total.failed_repairs += report->failed_repairs;
  RC_CLASSIFY(report->dirty_ends > 0, "dirty end repaired under faults");
  RC_TAG(CacheModeName(settings.cache_mode));
  if (!report->ok()) {
    if (auto dir = traces::TraceDirFromEnv(); dir && report->failing_run) {
      auto path = traces::WriteFailureTrace(*dir, *report->failing_run, report->failing_state);
      std::fprintf(stderr, "crashsim trace: %s\n",
                   path.ok() ? path->c_str() : path.status().ToString().c_str());
    }
    RC_FAIL(fmt::format(
        "{}\nimage: {}\nshrunk size: guest ops {}, lost/torn device writes {}\n"
        "workload:\n{}",
        report->failures.front(), SettingsText(settings, {"image", "cache", "backing"}),
        workload.ops.size(), report->failing_state.state.fates.size(), workload.ToText()));
  }
  // Every fault fired and reached its caller (a fault that did not is a failure above).
  RC_ASSERT(report->surfaced == report->faults);
  if (GetPropertyEnv().shard_count == 1) RC_ASSERT(report->faults > 0);
}

TEST(FaultSweep, AnInjectedErrorReachesTheGuestAndTheRunGoesOn) {
  auto workload = Workload::Parse(
      "disk 1048576\nwrite 0x0 4096 p=1\nwrite 0x10000 4096 p=2\n"
      "read 0x0 4096\nflush\nread 0x10000 4096\n");
  ASSERT_TRUE(workload.ok());
  ExploreOptions o = SweepOptionsFor(LazySettings(65536));
  o.settings.fault = *simdisk::ParseFault("write#1:ENOSPC");
  auto explorer = Explorer::Record(*workload, o);
  ASSERT_TRUE(explorer.ok()) << explorer.status().ToString();
  const GuestRunResult& run = (*explorer)->run();
  ASSERT_TRUE(run.fault.has_value());
  EXPECT_EQ(run.fault->returned.code(), StatusCode::kNoSpace);
  EXPECT_NE(run.fault->call.find("guest op #"), std::string::npos) << run.fault->call;
  EXPECT_TRUE(run.failure.empty()) << run.failure;
  EXPECT_GE(run.failed_calls, 1u);
  // The guest op the error hit is not acknowledged; the run went on, and the reads after it
  // were (they were checked against the live model: bytes of the failed write may be either).
  const simdisk::Recording& recording = (*explorer)->recording();
  const uint64_t hit = recording.ops()[run.fault->seq].guest_op;
  ASSERT_LT(hit, workload->ops.size());
  const auto& guest = recording.guest_ops();
  EXPECT_EQ(guest[hit].ack_seq, UINT64_MAX);
  EXPECT_NE(guest[2].ack_seq, UINT64_MAX);  // read 0x0 4096
  EXPECT_NE(guest[4].ack_seq, UINT64_MAX);  // read 0x10000 4096
  ExploreReport report = (*explorer)->Run();
  EXPECT_TRUE(report.ok()) << report.failures.front().detail;
  // Only the crash points from the error on are explored.
  EXPECT_GT(report.explored, 0u);
  EXPECT_LT(report.points_total, simdisk::CrashPoints((*explorer)->recording()).size());
}

TEST(FaultSweep, AWriteCacheMayLoseUnflushedWritesWhenAFailedReopenRestartsTheImage) {
  // Found by the property: writeback; the reopen's close fails on its L2 write, the engine is
  // dropped, and the read after it reopens an image that never got the write's mapping. The
  // write was acknowledged but never flushed, and the guest was told the flush failed: losing
  // it is legal (as after a process kill), so the live model must not demand it.
  auto workload = Workload::Parse("disk 1052672\nwrite 0x0 65536 p=1\nreopen\nread 0x0 1\n");
  ASSERT_TRUE(workload.ok());
  ExploreSettings settings = SweepSettings();
  settings.image.refcount_bits = 1;
  settings.cache_mode = CacheMode::kWriteback;
  ExploreOptions o = SweepOptionsFor(settings);
  o.settings.fault = *simdisk::ParseFault("write#4:EIO");
  auto explorer = Explorer::Record(*workload, o);
  ASSERT_TRUE(explorer.ok()) << explorer.status().ToString();
  ASSERT_TRUE((*explorer)->run().fault.has_value());
  EXPECT_NE((*explorer)->run().fault->call.find("reopen"), std::string::npos);
  EXPECT_EQ((*explorer)->run().failure, "");
  // Write-through promised the write at its acknowledgement: there the read must see it.
  settings.cache_mode = CacheMode::kWritethrough;
  auto through = SweepFaults(*workload, SweepOptionsFor(settings));
  ASSERT_TRUE(through.ok());
  EXPECT_TRUE(through->ok()) << through->failures.front();
}

TEST(FaultSweep, ARepairFlushesWhatItFoundBeforeMarkingTheImageClean) {
  // Found by the property: the reopen's close writes the refcount block and its flush fails, so
  // the block stays in the disk's cache; the next open repairs the dirty image, finds the
  // refcounts right (it reads the cached block) and cleared the dirty bit without a flush first.
  // A power loss could then keep the clean header and tear the block: corruptions, no dirty bit.
  auto workload = Workload::Parse("disk 69632\nwrite 0x0 4096 p=1\nreopen\n");
  ASSERT_TRUE(workload.ok());
  ExploreSettings settings = LazySettings(4096);
  settings.image.refcount_bits = 1;
  settings.cache_mode = CacheMode::kDirectsync;
  ExploreOptions o = SweepOptionsFor(settings);
  o.settings.fault = *simdisk::ParseFault("flush#3:EIO");
  auto explorer = Explorer::Record(*workload, o);
  ASSERT_TRUE(explorer.ok()) << explorer.status().ToString();
  ASSERT_TRUE((*explorer)->run().fault.has_value());
  EXPECT_NE((*explorer)->run().fault->call.find("reopen"), std::string::npos);
  ExploreReport report = (*explorer)->Run();
  EXPECT_TRUE(report.ok()) << report.failures.front().state.ToText() << ": "
                           << report.failures.front().detail;
  EXPECT_GT(report.torn_metadata_states, 0u);
}

TEST(FaultSweep, ALazyRefcountWorkloadSweepsEveryOpAndRepairs) {
  auto workload = Workload::Parse(
      "disk 1048576\nwrite 0x0 4096 p=1\nflush\n"
      "write 0x20000 70000 p=2\nsnapshot\nwrite 0x0 512 p=3\n");
  ASSERT_TRUE(workload.ok());
  auto report = SweepFaults(*workload, SweepOptionsFor(LazySettings(4096)),
                            /*repair_sweeps=*/2);
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  EXPECT_TRUE(report->ok()) << report->failures.front();
  EXPECT_GT(report->faults, 40u);
  EXPECT_EQ(report->faults % 2, 0u);  // EIO and ENOSPC for every op
  EXPECT_EQ(report->surfaced, report->faults);
  EXPECT_GT(report->states, report->faults);
  // An error poisons the engine, which marks a v3 image dirty: the image the run leaves is dirty,
  // and its repair is swept.
  EXPECT_EQ(report->dirty_ends, 2u);
  EXPECT_GT(report->failed_repairs, 4u);
  // Every kind of device op failed somewhere; resizes come from preallocation=metadata creates.
  for (uint64_t n : report->by_kind) EXPECT_GT(n, 0u);
  EXPECT_GT(report->create_faults, 0u);
}

RC_GTEST_PROP(FaultSweep, EveryDeviceOpFailingOnceLeavesARecoverableImage, ()) {
  const ExploreSettings settings = *GenImageSettings(SweepSettings(), /*allow_unsafe=*/false);
  CheckSweep(settings, *GenWorkload(DiskSizeFor(settings), settings.image.cluster_size, 5));
}

}  // namespace
}  // namespace crashsim
