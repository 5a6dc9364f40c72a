// The crash property (issue: every crash point, every cache mode, both crash kinds): generated
// workloads and image options, every crash state within the bound and a sample beyond it.
// CRASHSIM_PROPERTY_SCALE (default 1) multiplies the number of cases for long soaks.
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <iterator>
#include <map>
#include <string>
#include <vector>

#include "engine/coding.h"
#include "properties/explorer.h"
#include "properties/property_env.h"
#include "properties/workload_gen.h"
#include "traces/capture.h"

namespace crashsim {
namespace {

// What the property runs covered, printed when the test program ends: every crash point of
// every generated workload (asserted per case), the states checked and the distinct images.
struct Coverage {
  uint64_t cases = 0;
  uint64_t points_covered = 0;
  uint64_t points_total = 0;
  uint64_t states = 0;
  uint64_t distinct_images = 0;
  StepCoverage steps;
};
// Per property (ctest runs each in a process of its own; a plain run of the binary runs all).
std::map<std::string, Coverage> g_coverage;

// Protocol steps no generated workload takes yet, so no state can crash after them: the
// recorded run starts from a created image (create, preallocate), and a repair inside the run
// needs a reopen of a dirty image, which only a failed close leaves (repair). A property that
// reaches one fails, so the list only ever shrinks.
const std::vector<DurableStep> kNotYetReached = {
    DurableStep::kCreate,
    DurableStep::kPreallocate,
    DurableStep::kRepair,
};
// Steps only a property with a geometry of its own reaches, and each such property: they are
// required of it and of no other.
const std::map<std::string, std::vector<DurableStep>> kGeometrySteps = {
    // A write fills a refcount block.
    {"AllocationFillsARefcountBlock", {DurableStep::kRefblockAlloc, DurableStep::kReftableEntry}},
    // An allocation passes what the refcount table covers.
    {"RefcountTableGrows", {DurableStep::kReftableWrite, DurableStep::kReftableSwitch}},
    // A resize grows the L1 table, and a shrink clears L1 entries.
    {"ResizeMovesTheL1Table",
     {DurableStep::kL1Grow, DurableStep::kL1Switch, DurableStep::kL1Shrink}},
};
// The properties that run on the generated geometries.
constexpr const char* kGeneralProperties[] = {"PowerLossLeavesARecoverableImage",
                                              "ProcessKillLeavesARecoverableImage"};

bool Contains(const std::vector<DurableStep>& steps, DurableStep step) {
  return std::find(steps.begin(), steps.end(), step) != steps.end();
}

// The steps every (unsharded) run of `property` must crash after. Together the properties
// require every step not in kNotYetReached (CrashProperty.EveryStepIsRequiredOrNotYetReached).
std::vector<DurableStep> RequiredSteps(const std::string& property) {
  if (auto it = kGeometrySteps.find(property); it != kGeometrySteps.end()) return it->second;
  std::vector<DurableStep> steps;
  for (int i = 1; i < kDurableStepCount; ++i) {
    const auto step = static_cast<DurableStep>(i);
    const bool geometry =
        std::any_of(kGeometrySteps.begin(), kGeometrySteps.end(),
                    [&](const auto& entry) { return Contains(entry.second, step); });
    if (!Contains(kNotYetReached, step) && !geometry) steps.push_back(step);
  }
  return steps;
}

void ExpectStepsCrashed(const std::string& property, const StepCoverage& steps) {
  for (DurableStep step : RequiredSteps(property)) {
    if (steps.after_step[static_cast<int>(step)] == 0) {
      ADD_FAILURE() << property << ": no crash state crashed after a " << DurableStepName(step)
                    << " write";
    }
  }
  for (DurableStep step : kNotYetReached) {
    if (steps.after_step[static_cast<int>(step)] != 0) {
      ADD_FAILURE() << property << " crashes after " << DurableStepName(step)
                    << " now: take it out of kNotYetReached (crash_property_test.cc)";
    }
  }
}

// Step coverage is asserted of runs of at least this many cases (rapidcheck's default).
constexpr uint64_t kCasesForStepCoverage = 100;

class CoverageReport : public ::testing::Environment {
 public:
  void TearDown() override {
    for (const auto& [property, c] : g_coverage) {
      std::printf(
          "crash property coverage (%s): %llu cases, crash points covered %llu of %llu, %llu "
          "states checked, %llu distinct images\n%s",
          property.c_str(), static_cast<unsigned long long>(c.cases),
          static_cast<unsigned long long>(c.points_covered),
          static_cast<unsigned long long>(c.points_total),
          static_cast<unsigned long long>(c.states),
          static_cast<unsigned long long>(c.distinct_images), c.steps.Table().c_str());
      // A shard sees only some states of each run; and a short run (the sanitizer run's 20
      // cases) may draw no snapshot-capable image (a third of the cases; WithSnapshot): 20
      // cases miss one about one run in 3,000, 100 cases one in 10^17.
      if (GetPropertyEnv().shard_count == 1 && c.cases >= kCasesForStepCoverage) {
        ExpectStepsCrashed(property, c.steps);
      }
    }
  }
};
const auto* const kCoverageReport = ::testing::AddGlobalTestEnvironment(new CoverageReport);

// Whether the CrashProperty suite has a test of this name.
bool IsCrashProperty(const std::string& name) {
  const ::testing::UnitTest& unit = *::testing::UnitTest::GetInstance();
  for (int i = 0; i < unit.total_test_suite_count(); ++i) {
    const ::testing::TestSuite& suite = *unit.GetTestSuite(i);
    if (std::string(suite.name()) != "CrashProperty") continue;
    for (int j = 0; j < suite.total_test_count(); ++j) {
      if (name == suite.GetTestInfo(j)->name()) return true;
    }
  }
  return false;
}

TEST(CrashProperty, EveryStepIsRequiredOrNotYetReached) {
  std::vector<int> required(kDurableStepCount, 0);
  std::vector<std::string> properties(std::begin(kGeneralProperties), std::end(kGeneralProperties));
  for (const auto& [property, steps] : kGeometrySteps) properties.push_back(property);
  for (const std::string& property : properties) {
    // A renamed property would be required nothing.
    EXPECT_TRUE(IsCrashProperty(property)) << property << " is no CrashProperty test";
    for (DurableStep step : RequiredSteps(property)) ++required[static_cast<int>(step)];
  }
  for (int i = 1; i < kDurableStepCount; ++i) {
    const auto step = static_cast<DurableStep>(i);
    EXPECT_EQ(required[i] > 0, !Contains(kNotYetReached, step)) << DurableStepName(step);
  }
}

// The property run's settings for a crash kind (image options, cache mode and backing file are
// generated over them).
ExploreSettings PropertySettings(simdisk::CrashKind crash) {
  ExploreSettings s = PresetSettings(SettingsPreset::kProperty);
  s.selection.kind = crash;
  s.selection.samples *= GetPropertyEnv().scale;
  return s;
}

ExploreOptions OptionsFor(const ExploreSettings& settings) {
  ExploreOptions o;
  o.settings = settings;
  const PropertyEnv& env = GetPropertyEnv();
  // 2 MiB clusters make every state cost megabytes of copying and reading: fewer of them.
  o.max_states = (settings.image.cluster_size >= (1u << 20) ? 60 : 400) * env.scale;
  o.shard_index = env.shard_index;
  o.shard_count = env.shard_count;
  return o;
}

void CheckWorkload(const ExploreSettings& settings, const Workload& workload,
                   uint64_t aging_ops = 0) {
  ExploreOptions options = OptionsFor(settings);
  options.aging_ops = aging_ops;
  auto explorer = Explorer::Record(workload, options);
  // The recorded run itself checks every read against the live model: a failure there is the
  // engine's, before any crash.
  if (!explorer.ok()) RC_FAIL("the workload's own run failed: " + explorer.status().ToString());
  ExploreReport report = (*explorer)->Run();
  Coverage& c = g_coverage[::testing::UnitTest::GetInstance()->current_test_info()->name()];
  c.cases += 1;
  c.points_covered += report.points_covered;
  c.points_total += report.points_total;
  c.states += report.explored;
  c.distinct_images += report.distinct_images;
  c.steps += report.coverage;
  RC_CLASSIFY(report.outcomes[static_cast<int>(Outcome::kDirtyRepaired)] > 0, "dirty repaired");
  RC_CLASSIFY(report.torn_metadata_states > 0, "torn metadata");
  RC_TAG(CacheModeName(settings.cache_mode));
  RC_CLASSIFY(settings.backing != BackingKind::kNone, "backing file");
  const bool capable = settings.image.version == 3 && settings.image.refcount_bits > 1;
  auto has = [&](WorkloadOpKind kind) {
    return std::any_of(workload.ops.begin(), workload.ops.end(),
                       [kind](const WorkloadOp& op) { return op.kind == kind; });
  };
  RC_CLASSIFY(capable && has(WorkloadOpKind::kSnapshot), "snapshot");
  RC_CLASSIFY(capable && has(WorkloadOpKind::kSnapshot) && has(WorkloadOpKind::kDeleteSnapshot),
              "snapshot deleted");
  RC_CLASSIFY(capable && has(WorkloadOpKind::kSnapshot) && has(WorkloadOpKind::kApplySnapshot),
              "snapshot applied");
  if (!report.ok()) {
    const StateResult& f = report.failures.front();
    // While rapidcheck shrinks, every failing case writes a trace; the last one printed is the
    // shrunk one.
    if (auto dir = traces::TraceDirFromEnv()) {
      auto path = traces::WriteFailureTrace(*dir, **explorer, f);
      std::fprintf(stderr, "crashsim trace: %s\n",
                   path.ok() ? path->c_str() : path.status().ToString().c_str());
    }
    RC_FAIL(fmt::format(
        "{}\nimage: {}\ncrash state: {}\nshrunk size: guest ops {}, lost/torn "
        "device writes {}\nworkload:\n{}",
        f.detail, SettingsText(settings, {"image", "cache", "backing"}), f.state.ToText(),
        workload.ops.size(), f.state.fates.size(), workload.ToText()));
  }
  // The budget is spread over the crash points (after the aging ops), the clean close included:
  // each has a state. (A failing run stops at its first failure, so this is asserted only of
  // passing runs.)
  if (options.shard_count == 1) RC_ASSERT(report.points_covered == report.points_total);
}

// A workload for `settings`' image; on an image that can hold snapshots (v3, refcounts wider
// than one bit) it takes one somewhere if it drew none, so every run of the property crashes the
// snapshot steps by construction rather than by luck (the snapshot op's weight alone gave about
// one case in sixteen), and in half the cases each a revert to it and a deletion of it later on
// (after writes that copied its clusters on write, when there are some).
Workload GenCrashWorkload(const ExploreSettings& settings) {
  Workload w = *GenWorkload(DiskSizeFor(settings), settings.image.cluster_size, 8);
  const bool capable = settings.image.version == 3 && settings.image.refcount_bits > 1;
  if (!capable) return w;
  auto is = [](WorkloadOpKind kind) {
    return [kind](const WorkloadOp& op) { return op.kind == kind; };
  };
  auto random_index = [](size_t lo, size_t hi) {  // [lo, hi], at the nominal size
    return *rc::gen::resize(rc::kNominalSize, rc::gen::inRange<size_t>(lo, hi + 1));
  };
  auto first = std::find_if(w.ops.begin(), w.ops.end(), is(WorkloadOpKind::kSnapshot));
  if (first == w.ops.end()) {
    first = w.ops.insert(w.ops.begin() + static_cast<std::ptrdiff_t>(random_index(0, w.ops.size())),
                         WorkloadOp{.kind = WorkloadOpKind::kSnapshot});
  }
  const size_t snapshot_at = static_cast<size_t>(first - w.ops.begin());
  // A revert to it and a deletion of it, each in half the cases (when the ops drew none).
  for (WorkloadOpKind later : {WorkloadOpKind::kApplySnapshot, WorkloadOpKind::kDeleteSnapshot}) {
    const auto from = w.ops.begin() + static_cast<std::ptrdiff_t>(snapshot_at);
    if (std::any_of(from, w.ops.end(), is(later)) || !*rc::gen::arbitrary<bool>()) continue;
    const size_t at = random_index(snapshot_at + 1, w.ops.size());
    w.ops.insert(w.ops.begin() + static_cast<std::ptrdiff_t>(at), WorkloadOp{.kind = later});
  }
  return w;
}

RC_GTEST_PROP(CrashProperty, PowerLossLeavesARecoverableImage, ()) {
  const ExploreSettings settings =
      *GenImageSettings(PropertySettings(simdisk::CrashKind::kPowerLoss), /*allow_unsafe=*/false);
  CheckWorkload(settings, GenCrashWorkload(settings));
}

RC_GTEST_PROP(CrashProperty, ProcessKillLeavesARecoverableImage, ()) {
  const ExploreSettings settings =
      *GenImageSettings(PropertySettings(simdisk::CrashKind::kProcessKill), /*allow_unsafe=*/true);
  CheckWorkload(settings, GenCrashWorkload(settings));
}

// A write that fills the first refcount block: the engine allocates a new block and names it
// in the refcount table (R4), crashed like every other step.
RC_GTEST_PROP(CrashProperty, AllocationFillsARefcountBlock, ()) {
  const ExploreSettings settings =
      *GenSmallRefcountSettings(PropertySettings(simdisk::CrashKind::kPowerLoss));
  CheckWorkload(settings, *GenRefblockFillingWorkload(5));
}

// An allocation past the 2 MiB of file the first refcount table covers: the engine writes a
// grown table with the blocks covering it, then switches the header to it (R4). The aging write
// before it is not crashed (its steps are AllocationFillsARefcountBlock's).
RC_GTEST_PROP(CrashProperty, RefcountTableGrows, ()) {
  const ExploreSettings settings =
      *GenSmallRefcountSettings(PropertySettings(simdisk::CrashKind::kPowerLoss));
  CheckWorkload(settings, *GenTableGrowingWorkload(4), kTableAgingOps);
}

// A grow that moves the L1 table to a bigger one (R5: written and synced before the header
// names it), writes in the grown area, a shrink that clears L1 entries before their L2 tables
// are freed, and a grow back over what the shrink cut off, which must read as zeros.
RC_GTEST_PROP(CrashProperty, ResizeMovesTheL1Table, ()) {
  const ExploreSettings settings =
      *GenResizeSettings(PropertySettings(simdisk::CrashKind::kPowerLoss));
  CheckWorkload(settings, *GenL1ResizeWorkload(settings.image.cluster_size, 4));
}

}  // namespace
}  // namespace crashsim
