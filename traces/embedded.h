// Traces of third-party runs (format version 2): a `crashsim validate` run of QEMU (or any
// target) cannot be re-run to regenerate its device writes, so its trace embeds them
// (EmbeddedRun: the medium the target's create command made, and every successful write's
// bytes). This module turns a recorded run into such a trace and back: RecordingOf rebuilds the
// simdisk recording from the trace alone, and CheckEmbeddedState holds a crash state of it to
// the same crash property validate used (properties/crash_check.h CheckCrashedImage, with the
// guest oracle built by OracleFor), so replay, show and minimize need no target and no engine
// re-run.
#pragma once

#include <memory>
#include <string>

#include "properties/crash_check.h"
#include "properties/oracle.h"
#include "simdisk/recording.h"
#include "traces/trace.h"

namespace crashsim::traces {

// The recording the trace's embedded data describes (the trace must have `embedded`). Guest
// events are checked to pair up (an ack needs its begin).
Result<std::shared_ptr<const simdisk::Recording>> RecordingOf(const Trace& trace);

// The guest oracle of a recorded run of `workload` whose guest op ids are its positions and whose
// id `workload.ops.size()` is the closing op, counted as a flush (as the explorer and validate
// build it). `mode` is the cache mode the writer ran with: it decides what was promised. Snapshot
// ops take effect when the recording's initial image (the one the target created) can hold
// snapshots (engine/snapshot.h CanHoldSnapshots).
std::unique_ptr<GuestOracle> OracleFor(const Workload& workload, CacheMode mode,
                                       simdisk::CrashKind crash,
                                       const simdisk::Recording& recording);

// Materialises `state` of `recording` and holds it to the crash property.
StateResult CheckEmbeddedState(const simdisk::Recording& recording, const GuestOracle& oracle,
                               const simdisk::CrashState& state);

// The version 2 trace of one checked state of a third-party run: settings as the run used them,
// the recording's device ops, initial medium and write data, the state and its result.
Trace MakeEmbeddedTrace(const std::string& target, const std::string& target_version,
                        const Workload& workload, const ExploreSettings& settings,
                        const simdisk::Recording& recording, const StateResult& result);

}  // namespace crashsim::traces
