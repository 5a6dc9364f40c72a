// The explorer's shortcuts against their definitions, on every state of small workloads: the
// incremental guest-data check against the full one (including the repaired and repair-crashed
// images derived from each state), and verdicts taken from the cache against verdicts computed.
#include "properties/explorer.h"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "properties/property_env.h"
#include "properties/random_workload.h"
#include "simdisk/write_cache.h"

namespace crashsim {
namespace {

struct Case {
  const char* name;
  uint64_t seed;
  uint64_t cluster_size;
  uint32_t refcount_bits;
  bool lazy;
  CacheMode cache;
  BackingKind backing;
  simdisk::CrashKind crash = simdisk::CrashKind::kPowerLoss;
};

// Snapshots (seeds 3, 5, 7 take one), both backing files, 512 B to 2 MiB clusters, refcount
// widths 1 and 64, lazy refcounts on and off, writethrough and writeback; and a process kill,
// whose repairs start on a disk that still holds the killed run's unflushed writes.
const Case kCases[] = {
    {"lazy_wt_64k_snapshot", 3, 65536, 16, true, CacheMode::kWritethrough, BackingKind::kNone},
    {"wb_4k_raw_backing", 5, 4096, 16, false, CacheMode::kWriteback, BackingKind::kRaw},
    {"lazy_wb_4k_qcow2_backing", 7, 4096, 64, true, CacheMode::kWriteback, BackingKind::kQcow2},
    {"wt_512_refcount1", 8, 512, 1, false, CacheMode::kWritethrough, BackingKind::kNone},
    {"lazy_wt_2m", 4, 2 << 20, 16, true, CacheMode::kWritethrough, BackingKind::kNone},
    {"lazy_wb_64k_kill", 16, 65536, 16, true, CacheMode::kWriteback, BackingKind::kNone,
     simdisk::CrashKind::kProcessKill},
};

void PrintTo(const Case& c, std::ostream* os) { *os << c.name; }

ExploreOptions OptionsFor(const Case& c) {
  ExploreOptions o;
  o.settings.image.cluster_size = c.cluster_size;
  o.settings.image.refcount_bits = c.refcount_bits;
  o.settings.image.lazy_refcounts = c.lazy;
  o.settings.cache_mode = c.cache;
  o.settings.backing = c.backing;
  o.settings.selection.seed = c.seed;
  o.settings.selection.kind = c.crash;
  o.settings.selection.exhaustive_budget = 16;
  o.settings.selection.samples = 2;
  o.settings.repair_crash_states = 1;
  o.max_failures = 0;
  return o;
}

Workload WorkloadFor(const Case& c) {
  // 2 MiB clusters make every check cost megabytes: fewer ops there, and fewer still in the
  // sanitizer run (CRASHSIM_REDUCED_TESTS, property_env.h), where each of those megabytes is
  // a fresh mapping that ASan zero-fills: 4 ops took about 160 s of CPU there.
  const bool huge = c.cluster_size >= (1u << 20);
  const uint32_t huge_ops = GetPropertyEnv().reduced ? 3 : 4;
  return RandomWorkload(c.seed, huge ? huge_ops : 10, (huge ? 4 : 24) * c.cluster_size,
                        c.cluster_size);
}

class ExplorerShortcuts : public ::testing::TestWithParam<Case> {};

TEST_P(ExplorerShortcuts, IncrementalDataCheckAgreesWithTheFullOne) {
  const Case& c = GetParam();
  ExploreOptions o = OptionsFor(c);
  o.data_check = DataCheckMode::kBoth;
  o.verdict_cache = false;  // every state, and every image derived from it, is checked
  auto explorer = Explorer::Record(WorkloadFor(c), o);
  ASSERT_TRUE(explorer.ok()) << explorer.status().ToString();
  ExploreReport report = (*explorer)->Run();
  for (const StateResult& f : report.failures)
    ADD_FAILURE() << f.state.ToText() << ": " << f.detail;
  EXPECT_GT(report.explored, 50u);
  EXPECT_EQ(report.enumeration.crash_points, report.enumeration.points_total);
  // The incremental check must have done real work, not fallen back to the full one.
  EXPECT_LT(report.data.full_checks * 4, report.data.checks) << report.Summary();
}

// Every check and repair of every state (the crashed image, its repair, the repair's own crash
// states and failed repairs, the writes after repair) runs memoised and plainly on a copy: the
// reports must be equal byte for byte and the repaired bytes equal.
TEST_P(ExplorerShortcuts, IncrementalCheckerReportsEqualTheFullOnes) {
  const Case& c = GetParam();
  ExploreOptions o = OptionsFor(c);
  o.checker = CheckerMode::kBoth;
  o.verdict_cache = false;
  auto explorer = Explorer::Record(WorkloadFor(c), o);
  ASSERT_TRUE(explorer.ok()) << explorer.status().ToString();
  ExploreReport report = (*explorer)->Run();
  for (const StateResult& f : report.failures)
    ADD_FAILURE() << f.state.ToText() << ": " << f.detail;
  EXPECT_GT(report.explored, 50u);
}

TEST_P(ExplorerShortcuts, CachedVerdictsEqualComputedOnes) {
  const Case& c = GetParam();
  std::vector<std::string> verdicts[2];
  ExploreReport reports[2];
  for (int cached = 0; cached < 2; ++cached) {
    ExploreOptions o = OptionsFor(c);
    o.verdict_cache = cached == 1;
    auto explorer = Explorer::Record(WorkloadFor(c), o);
    ASSERT_TRUE(explorer.ok()) << explorer.status().ToString();
    reports[cached] = (*explorer)->Run({}, [&](const StateResult& r) {
      verdicts[cached].push_back(fmt::format("{} {} dirty={} torn={} {}", r.state.ToText(),
                                             OutcomeName(r.outcome), r.dirty, r.torn_metadata,
                                             r.detail));
    });
  }
  ASSERT_EQ(verdicts[0].size(), verdicts[1].size());
  for (size_t i = 0; i < verdicts[0].size(); ++i) ASSERT_EQ(verdicts[0][i], verdicts[1][i]);
  // The cache was used (not asserted of the kill case: a kill leaves one state per point, and
  // in this workload no two share image, window and unflushed writes).
  if (c.crash == simdisk::CrashKind::kPowerLoss) {
    EXPECT_LT(reports[1].verdicts_computed, reports[0].verdicts_computed);
  }
  EXPECT_EQ(reports[1].verdicts_computed + reports[1].cache_hits, reports[1].explored);
}

TEST_P(ExplorerShortcuts, OneOrTwoJobsGiveTheSameReport) {
  const Case& c = GetParam();
  std::vector<std::string> verdicts[2];
  ExploreReport reports[2];
  for (uint32_t jobs : {1u, 2u}) {
    ExploreOptions o = OptionsFor(c);
    o.jobs = jobs;
    auto explorer = Explorer::Record(WorkloadFor(c), o);
    ASSERT_TRUE(explorer.ok()) << explorer.status().ToString();
    reports[jobs - 1] = (*explorer)->Run({}, [&](const StateResult& r) {
      verdicts[jobs - 1].push_back(
          fmt::format("{} {} {} {}", r.state.ToText(), OutcomeName(r.outcome), r.dirty, r.detail));
    });
  }
  EXPECT_EQ(verdicts[0], verdicts[1]);
  EXPECT_EQ(reports[0].Summary(), reports[1].Summary());
}

// Aging ops prepare the image: no state crashes before the last of them is acknowledged, every
// point after it is covered, and the data check, whose references then start mid-run, agrees
// with the full one.
TEST(Explorer, AgingOpsAreNotCrashed) {
  auto workload = Workload::Parse(
      "disk 262144\nwrite 0 65536 p=1\nreopen\nwrite 0x10000 4096 p=2\nzero 0 512\n");
  ASSERT_TRUE(workload.ok()) << workload.status().ToString();
  ExploreOptions o;
  o.settings.image.cluster_size = 4096;
  o.settings.image.lazy_refcounts = true;
  o.settings.cache_mode = CacheMode::kWriteback;
  o.data_check = DataCheckMode::kBoth;
  o.max_failures = 0;
  o.aging_ops = 2;
  auto explorer = Explorer::Record(*workload, o);
  ASSERT_TRUE(explorer.ok()) << explorer.status().ToString();
  const simdisk::Recording& recording = (*explorer)->recording();
  const uint64_t aged = recording.guest_ops()[1].ack_seq + 1;
  uint64_t after = 0, all = 0;
  for (uint64_t point : simdisk::CrashPoints(recording)) {
    ++all;
    after += point >= aged;
  }
  ASSERT_LT(after, all);
  uint64_t states = 0;
  ExploreReport report = (*explorer)->Run({}, [&](const StateResult& r) {
    ++states;
    EXPECT_GE(r.state.point, aged) << r.state.ToText();
  });
  for (const StateResult& f : report.failures)
    ADD_FAILURE() << f.state.ToText() << ": " << f.detail;
  EXPECT_EQ(report.points_total, after);
  EXPECT_EQ(report.points_covered, after);
  EXPECT_GT(states, after);
}

// Compressed writes are crash-tested: packed compressed clusters, a compressed write over free
// clusters next to compressed ones, a plain write into a compressed cluster (copy on write), a
// discard of one, and a compressed write over data (written plain); every state holds, and the
// run leaves compressed clusters. The default workload has compressed writes too.
TEST(Explorer, CompressedWritesAreCrashTested) {
  auto workload = Workload::Parse(
      "disk 1048576\n"
      "write 0 196608 p=2147483649 compressed\n"
      "write 0x30000 65536 p=2147483650 compressed\n"
      "write 100 1000 p=3\n"
      "discard 0x10000 65536\n"
      "write 0x10000 65536 p=2147483652 compressed\n"
      "flush\n"
      "write 0 65536 p=2147483653 compressed\n");
  ASSERT_TRUE(workload.ok()) << workload.status().ToString();
  for (bool lazy : {false, true}) {
    ExploreOptions o;
    o.settings.image.lazy_refcounts = lazy;
    o.settings.cache_mode = lazy ? CacheMode::kWriteback : CacheMode::kWritethrough;
    o.settings.selection.exhaustive_budget = 16;
    o.max_failures = 0;
    auto explorer = Explorer::Record(*workload, o);
    ASSERT_TRUE(explorer.ok()) << explorer.status().ToString();
    const simdisk::Recording& recording = (*explorer)->recording();
    simdisk::Medium last = *recording.MediumAt(recording.op_count());
    OpenOptions ro;
    ro.read_only = true;
    auto image = Image::Open(last, ro);
    ASSERT_TRUE(image.ok()) << image.status().ToString();
    std::vector<ClusterType> types;
    for (uint64_t c = 0; c < 4; ++c) {
      auto m = (*image)->Map(c * 65536);
      ASSERT_TRUE(m.ok());
      types.push_back(m->type);
    }
    // Cluster 0 was copied on write (then overwritten plain), 1 compressed again after the
    // discard, 2 and 3 compressed.
    EXPECT_EQ(types,
              (std::vector<ClusterType>{ClusterType::kNormal, ClusterType::kCompressed,
                                        ClusterType::kCompressed, ClusterType::kCompressed}));
    ExploreReport report = (*explorer)->Run({}, {});
    for (const StateResult& f : report.failures) {
      ADD_FAILURE() << f.state.ToText() << ": " << f.detail;
    }
    EXPECT_GT(report.explored, 50u);
  }
  size_t compressed = 0;
  for (const WorkloadOp& op : RandomWorkload(1, 200, uint64_t{1} << 30, 65536).ops) {
    compressed += op.compressed;
  }
  EXPECT_GT(compressed, 10u);
}

INSTANTIATE_TEST_SUITE_P(Workloads, ExplorerShortcuts, ::testing::ValuesIn(kCases),
                         [](const auto& param_info) { return std::string(param_info.param.name); });

}  // namespace
}  // namespace crashsim
