// Capturing traces: building a Trace from a recorded run and one checked crash state, writing
// failing ones automatically into a directory (CRASHSIM_TRACE_DIR), and the engine-independent
// crash point: "after guest op 3's acknowledgement and 2 more device writes/flushes", which
// another engine build maps onto its own recording.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "properties/crash_check.h"
#include "simdisk/recording.h"
#include "traces/trace.h"

namespace crashsim {
class Explorer;
}  // namespace crashsim

namespace crashsim::traces {

inline constexpr const char* kTraceDirEnv = "CRASHSIM_TRACE_DIR";

std::vector<TraceOp> TraceOpsOf(const simdisk::Recording& recording);

// The portable description of crash point `point` (ops [0, point) completed) of `ops`.
PortablePoint DescribePoint(const std::vector<TraceOp>& ops, uint64_t point);

struct MappedPoint {
  uint64_t point = 0;
  bool exact = true;  // false: this run did fewer device changes after the anchor than asked
  std::string note;   // why it is not exact
};
// Where `p` falls in `ops`; the point is extended over reads that follow (as CrashPoints does).
// Fails when the anchor event does not exist in `ops`.
Result<MappedPoint> MapPoint(const std::vector<TraceOp>& ops, const PortablePoint& p);

// Carries `state` (a state of `from`) over to the run `to`: the crash point by its portable
// description, each fate by the portable position of its write (dropped when it falls on
// something that is not a pending write of `to`, masks clipped to the write's units).
// `guest_map` renames guest ops of `from` to those of `to` (when ops were removed from the
// workload); nullopt means the op is gone, and a point or fate anchored on it is not carried.
// Returns nullopt when the crash point itself cannot be carried over.
using GuestMap = std::function<std::optional<uint64_t>(uint64_t)>;
std::optional<simdisk::CrashState> MapState(const std::vector<TraceOp>& from,
                                            const simdisk::CrashState& state,
                                            const simdisk::Recording& to, uint64_t atomic_unit,
                                            simdisk::OrderModel order,
                                            const GuestMap& guest_map = {});

// The trace of one checked state of a recorded run.
Trace MakeTrace(const Workload& workload, const ExploreSettings& settings,
                const simdisk::Recording& recording, const StateResult& result);

// Writes `trace` into `dir` (created if missing) as trace-<checksum>.cstrace; returns the path.
Result<std::string> WriteTraceToDir(const std::string& dir, const Trace& trace);

// What the property test and `crashsim explore` call for each failing state.
Result<std::string> WriteFailureTrace(const std::string& dir, const Workload& workload,
                                      const ExploreSettings& settings,
                                      const simdisk::Recording& recording,
                                      const StateResult& result);
Result<std::string> WriteFailureTrace(const std::string& dir, const Explorer& explorer,
                                      const StateResult& result);

// The directory named by CRASHSIM_TRACE_DIR, or nullopt when it is unset or empty.
std::optional<std::string> TraceDirFromEnv();

}  // namespace crashsim::traces
