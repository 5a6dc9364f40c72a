// The I/O-error sweep (issue 13): for a workload, each device op of the engine's run (reads,
// writes, flushes and resizes, during open, guest I/O, snapshots, reopen and close) fails once,
// with EIO and then with ENOSPC, each in a run of its own. For each such run:
//   - the error reaches the engine call it happened in (guest_run.h): never a silent success;
//   - the guest's reads until the end of the run return what the workload left, or, for the
//     bytes a failed op addressed, the old or the new content;
//   - every crash point from the error on leaves an image that satisfies the crash property
//     (clean, or dirty and repaired; no durable data lost, and a failed op promises nothing);
//   - the create the run starts from is swept too (it is not part of the recorded run), without
//     and with preallocation=metadata, which makes the only resizes the engine issues: each
//     error must reach Image::Create's caller;
//   - where the image the run leaves (a process kill at its end) is dirty, its repair is failed
//     once at each of its own device ops, EIO and ENOSPC (Explorer::SweepRepairFaults), for the
//     first `repair_sweeps` runs that leave one (each costs a repair per device op of it).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "properties/explorer.h"
#include "properties/workload.h"

namespace crashsim {

struct FaultSweepReport {
  uint64_t faults = 0;                // runs with an injected error
  uint64_t by_kind[4] = {};           // of them: read, write, flush, resize faults
  uint64_t create_faults = 0;         // creates with an injected error (SweepFaults' create sweep)
  uint64_t surfaced = 0;              // errors that reached the caller (every fault that fired)
  uint64_t states = 0;                // crash states checked after the errors
  uint64_t dirty_ends = 0;            // dirty images left by a run whose repair was swept
  uint64_t failed_repairs = 0;        // repairs run with an injected error
  std::vector<std::string> failures;  // "write#3:EIO: ..." (stops at base.max_failures)
  // The first failure that a crash state of its run shows (for a trace: traces/capture.h), with
  // that run; empty when no failure is of that kind.
  std::unique_ptr<Explorer> failing_run;
  StateResult failing_state;
  size_t failing_index = 0;  // which of `failures` it is

  bool ok() const { return failures.empty(); }
  std::string Summary() const;
};

// Sweeps every fault of `workload` run with `base` (its `fault` is ignored). With
// base.shard_count N > 1 this shard takes every N-th fault from base.shard_index (each fault's
// run is explored whole). `progress` sees each fault's text before its run.
Result<FaultSweepReport> SweepFaults(const Workload& workload, const ExploreOptions& base,
                                     uint64_t repair_sweeps = 1,
                                     const std::function<void(const std::string&)>& progress = {});

}  // namespace crashsim
