// Minimising a failing trace by delta debugging, outside rapidcheck, on the trace itself: the
// failure must keep reproducing (same failure class, replay.h FailureClass) after each step.
//   1. guest ops: ddmin removes chunks of the workload; each candidate is re-recorded and the
//      crash state carried over (MapState); when that state no longer fails, the states at the
//      carried-over crash point are searched (bounded) for one that fails the same way;
//   2. crash-state fates: drop a fate (the write persists whole), clear garbage units, keep more
//      units of a torn write;
//   3. sizes: halve the length of each guest write, zero and discard, and move it to a lower
//      offset (0, or half way down), in 512-byte granules;
// then 2 again. A trace of a third-party run (embedded data, format 2) cannot be re-recorded with
// another workload, so only step 2 applies to it: guest ops, their sizes and the device-op log
// stay as recorded. Deterministic: the same trace and options give the same result on any machine.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "traces/trace.h"

namespace crashsim::traces {

struct MinimizeOptions {
  uint64_t max_checks = 4000;                 // crash states checked in all
  uint64_t states_per_candidate = 48;         // searched at a candidate's crash point
  bool any_failure = false;                   // accept any failure, not only the same class
  std::function<void(std::string_view)> log;  // one line per accepted step
};

struct TraceCounts {
  uint64_t guest_ops = 0;
  uint64_t guest_bytes = 0;  // bytes written, zeroed or discarded by the workload
  uint64_t device_ops = 0;
  uint64_t device_writes = 0;
  uint64_t dropped = 0;  // writes (or resizes) the crash dropped
  uint64_t torn = 0;     // writes it tore

  std::string ToText() const;
};
TraceCounts CountsOf(const Trace& trace);

struct MinimizeReport {
  Trace trace;  // the minimised trace
  TraceCounts before, after;
  uint64_t checks = 0;             // crash states checked
  uint64_t runs = 0;               // workloads re-recorded
  std::vector<std::string> steps;  // what each accepted step removed

  std::string Summary() const;
};

// Fails when `trace` is not a failure or does not reproduce on this build (Replay first).
Result<MinimizeReport> Minimize(const Trace& trace, const MinimizeOptions& options = {});

}  // namespace crashsim::traces
