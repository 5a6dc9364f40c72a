// Replaying a trace: re-run the guest workload on this build's engine over simdisk, verify that
// the engine issued the same device ops bit for bit (kinds, offsets, flags, tags, data hashes),
// rebuild the exact crash state, hold it to the crash property, and compare the verdict.
//
// A trace of a third-party run (format 2, Trace::embedded) carries its device writes' data: replay
// rebuilds the recording from it (traces/embedded.h), checks the crash state with the same
// property validate used and compares the verdict; no engine runs, and --portable does not apply.
//
// Portable replay uses only the guest half: the workload and the engine-independent crash point.
// It maps the point onto this build's recording, checks the trace's crash state carried over
// (MapState) and, when that does not settle it, every crash state at that point within the
// trace's bounds. That is how a trace found on one engine build is replayed on another.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "properties/crash_check.h"
#include "traces/trace.h"

namespace crashsim {
class Explorer;
}  // namespace crashsim

namespace crashsim::traces {

// Exit codes of `crashsim replay` (and the result codes below).
inline constexpr int kReplayMatch = 0;             // the recorded verdict reproduced
inline constexpr int kReplayError = 1;             // usage, I/O or parse error
inline constexpr int kReplayVerdictDiffers = 2;    // e.g. the failure no longer reproduces
inline constexpr int kReplayDeviceLogDiffers = 3;  // the engine issued different device ops

struct ReplayOptions {
  bool portable = false;       // ignore the device log; map the crash point (see above)
  uint64_t max_states = 4096;  // portable: states checked at the mapped point
};

struct ReplayResult {
  // Out of line: Explorer is complete only in replay.cc.
  ReplayResult();
  ~ReplayResult();
  ReplayResult(ReplayResult&&) noexcept;
  ReplayResult& operator=(ReplayResult&&) noexcept;

  int code = kReplayMatch;
  std::string message;        // one paragraph: what was compared and what differed
  simdisk::CrashState state;  // the state checked (portable: the deciding one)
  StateResult actual;         // its result
  uint64_t states_checked = 0;
  std::unique_ptr<Explorer> explorer;  // this build's recorded run (null for embedded traces)
  // The run the state was checked on: the explorer's recording, or the one rebuilt from an
  // embedded trace's data.
  std::shared_ptr<const simdisk::Recording> recording;
};

// The first difference between the trace's device log and `recording`, or empty.
std::string CompareDeviceLog(const Trace& trace, const simdisk::Recording& recording);

// A failure's class: its detail up to the first number or colon ("image not marked dirty
// has"), so that a shrunk or ported failure can be told apart from a different bug.
std::string FailureClass(const std::string& detail);

Result<ReplayResult> Replay(const Trace& trace, const ReplayOptions& options = {});

}  // namespace crashsim::traces
