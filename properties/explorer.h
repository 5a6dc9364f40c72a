// The crash explorer: runs a guest workload on the reference engine over simdisk, enumerates
// the crash states of the recorded run, and holds each to the crash property:
//   - dirty bit clear: the image checks with no corruptions as it is (leaks allowed);
//   - dirty bit set: repair (-r all) succeeds, and the image then checks clean, twice;
//   - guest data is legal (GuestOracle) before repair where the image is readable, and after;
//   - after repair the image takes further writes with no cluster used twice;
//   - optionally, the repair itself is crashed (power loss at points spread over the whole
//     repair, and an I/O error on each of its first writes): each image it can leave satisfies
//     the crash property again (dirty and repairable, or clean with no corruptions), with the
//     durable guest data intact.
// Used by the rapidcheck properties and by `crashsim explore`.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "engine/options.h"
#include "engine/status.h"
#include "properties/backing_file.h"
#include "properties/checker.h"
#include "properties/crash_check.h"
#include "properties/guest_run.h"
#include "properties/oracle.h"
#include "properties/step_coverage.h"
#include "properties/workload.h"
#include "settings/explore_settings.h"
#include "simdisk/cost_model.h"
#include "simdisk/crash_enumerator.h"
#include "simdisk/crash_state.h"
#include "simdisk/fault_plan.h"
#include "simdisk/image_key.h"
#include "simdisk/recording.h"

namespace crashsim {

// How the explorer checks guest data: incrementally (data_check.h), in full, or both, failing a
// state whose two verdicts differ (for tests of the incremental check).
enum class DataCheckMode : uint8_t { kIncremental, kFull, kBoth };

// A run of the explorer: what it explores (the settings a trace records) and how much of it, on
// how many threads, stopping when.
struct ExploreOptions {
  ExploreSettings settings;  // image.size comes from the workload
  uint64_t max_states = 0;   // 0: no limit; never below one state per crash point
  uint32_t shard_index = 0;  // this shard explores states i with i % shard_count == index
  uint32_t shard_count = 1;
  // The first aging_ops guest ops only prepare the image (fill it up to a structure's limit,
  // say): crash points before the last of them is acknowledged are not explored or counted.
  uint64_t aging_ops = 0;
  // Check each distinct (image, durability window) once; states that leave an image already
  // checked at an equal window take its verdict. Off: every state is checked (for tests).
  bool verdict_cache = true;
  DataCheckMode data_check = DataCheckMode::kIncremental;
  CheckerMode checker = CheckerMode::kMemo;  // kBoth fails a state where memo and plain differ
  size_t max_failures = 1;                   // stop after this many failing states (0: never stop)
  uint32_t jobs = 1;  // threads checking states; results are the same for any number
};

struct ExploreReport {
  uint64_t device_ops = 0;
  simdisk::IoCounters run_io;  // what the recorded run cost the device (with simulated time)
  uint64_t guest_writes = 0;   // write, zero and discard ops in the workload
  uint64_t recording_digest = 0;
  simdisk::EnumerationStats enumeration;
  uint64_t explored = 0;  // states checked by this shard
  uint64_t outcomes[kOutcomeCount] = {};
  uint64_t torn_metadata_states = 0;
  uint64_t repair_crash_states = 0;
  uint64_t points_covered = 0;  // crash points with at least one state checked
  // Crash points explored: the run's, less those before the aging ops end or before an
  // injected error (ExploreOptions::aging_ops, ExploreSettings::fault).
  uint64_t points_total = 0;
  uint64_t distinct_images = 0;    // distinct contents among the states checked
  uint64_t verdicts_computed = 0;  // states checked from scratch (the rest took a cached verdict)
  uint64_t cache_hits = 0;
  uint64_t checker_runs = 0;  // checks and repairs the computed verdicts ran (check.h)
  DataCheckStats data;
  StepCoverage coverage;  // the protocol steps and structures the states crashed after
  std::vector<StateResult> failures;

  bool ok() const { return failures.empty(); }
  std::string Summary() const;
};

// How far Run has got, for progress displays.
struct ExploreProgress {
  uint64_t explored = 0;  // states checked so far
  // States this run checks at most (the enumeration's plan, this shard's part, the cap); 0
  // until every crash point has started, which the round-robin order does in its first round.
  uint64_t expected = 0;
};

class Explorer {
 public:
  // Records the workload's run. Fails if the engine itself fails during the run.
  static Result<std::unique_ptr<Explorer>> Record(const Workload& workload,
                                                  const ExploreOptions& options);
  // The same with every other option at its default and no failure limit (replay, minimise).
  static Result<std::unique_ptr<Explorer>> Record(const Workload& workload,
                                                  const ExploreSettings& settings);

  // Checks every state the options select; `progress` is called after each, and `observe`
  // sees each state's result, in enumeration order.
  ExploreReport Run(const std::function<void(const ExploreProgress&)>& progress = {},
                    const std::function<void(const StateResult&)>& observe = {});
  // Checks one crash state of the recorded run.
  StateResult CheckState(const simdisk::CrashState& state);
  // If `state` leaves a dirty image: its repair, failed once at each of its device ops (every
  // kind, EIO and then ENOSPC; fault_sweep.h), each held to CheckFailedRepair's property.
  // Returns the first failure or ""; `repairs` counts the failed repairs run.
  std::string SweepRepairFaults(const simdisk::CrashState& state, uint64_t* repairs = nullptr);

  const simdisk::Recording& recording() const { return *recording_; }
  std::shared_ptr<const simdisk::Recording> shared_recording() const { return recording_; }
  const Workload& workload() const { return workload_; }
  const ExploreOptions& options() const { return options_; }
  simdisk::EnumerationOptions EnumerationFor() const;
  // What the recorded run met: the injected error and the call it reached, and whatever broke
  // while it ran (an error swallowed, a read returning wrong bytes).
  const GuestRunResult& run() const { return run_; }

 private:
  Explorer(Workload workload, ExploreOptions options)
      : workload_(std::move(workload)), options_(std::move(options)) {}
  Status RecordRun();
  OpenOptions OpenFor(bool read_only) const;
  // What a state's verdict depends on: its bytes, the crash point's durability window, and,
  // after a process kill whose repair is crash-tested, what the killed process left unflushed.
  struct VerdictKey {
    simdisk::ImageKey image;
    DataWindow window;
    uint64_t inherited = 0;
    bool operator==(const VerdictKey&) const = default;
  };
  struct VerdictKeyHash {
    size_t operator()(const VerdictKey& k) const {
      return simdisk::ImageKeyHash()(k.image) ^ (k.window.begun * 0x9e3779b97f4a7c15ULL) ^
             (k.window.durable << 17) ^ (k.inherited * 0xbf58476d1ce4e5b9ULL);
    }
  };
  uint64_t InheritedKey(const simdisk::CrashState& state) const;
  // Whether the repair after `state` starts on a disk that still holds, volatile, what the
  // killed process had not flushed (disk_after_kill.h).
  bool RepairInheritsCache(const simdisk::CrashState& state) const;
  struct Verdict {
    Outcome outcome;
    bool dirty;
  };

  StateResult CheckState(const simdisk::CrashState& state, Checker& checker);
  // The lazy-refcounts contract (dirty_bit_contract.h) for a state that is `dirty`: the
  // violation, or "". Depends on the crash point, not the image: applied to cached verdicts too.
  std::string DirtyBitContract(const simdisk::CrashState& state, bool dirty) const;
  // The property for one crashed medium (repaired in place); returns the failure text, or "".
  std::string CheckMedium(simdisk::Medium& medium, uint64_t crash_point, StateResult& result,
                          Checker& checker);
  // A repair run on a copy of the crashed image, and the image it left.
  using RecordedRepair = std::optional<std::pair<CheckReport, simdisk::Medium>>;
  std::string CheckRepairCrashes(const simdisk::Medium& crashed, const simdisk::CrashState& state,
                                 Checker& checker, RecordedRepair& recorded);
  // The repair of `start` failed by `rule`: it leaves the image dirty, or clean with no
  // corruptions; a second repair succeeds; the durable guest data is intact.
  // `start_repair_checked`: the caller holds the plain repair of `start` to the crash property,
  // so a failed repair that left the bytes as they were needs no second repair here.
  std::string CheckFailedRepair(const std::shared_ptr<const simdisk::Medium>& start,
                                uint64_t crash_point, Checker& checker,
                                const simdisk::FaultRule& rule, bool start_repair_checked);
  // The guest data `image` shows, at crash_point (incremental: data_check.h).
  std::string CheckData(const simdisk::Medium& image, uint64_t crash_point, const char* when,
                        bool must_open = true);
  struct AfterRepairWrite {
    uint64_t offset;
    std::vector<uint8_t> data;
  };
  // The two writes made after a repair (made once: the same for every state).
  const std::vector<AfterRepairWrite>& AfterRepairWrites();
  std::string CheckWritesAfterRepair(simdisk::Medium& image, uint64_t crash_point,
                                     Checker& checker);
  // Guest ranges where `before` and `after` (both from the crash point's medium) can read
  // differently; nullopt when that cannot be bounded.
  std::optional<ByteRanges> ChangedGuestRanges(const simdisk::Medium& before,
                                               const simdisk::Medium& after, uint64_t crash_point);
  Checker& CheckerFor(size_t worker);

  Workload workload_;
  ExploreOptions options_;
  std::shared_ptr<const simdisk::Recording> recording_;
  std::unique_ptr<GuestOracle> oracle_;
  std::unique_ptr<simdisk::ImageKeyIndex> key_index_;
  std::unique_ptr<GuestDataCheck> data_check_;
  std::unordered_map<VerdictKey, Verdict, VerdictKeyHash> verdicts_;
  std::vector<std::unique_ptr<Checker>> checkers_;  // one per worker thread
  std::once_flag after_repair_once_;
  std::vector<AfterRepairWrite> after_repair_writes_;
  simdisk::IoCounters run_io_;
  GuestRunResult run_;
  BackingFile backing_;
};

}  // namespace crashsim
