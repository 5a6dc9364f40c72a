// The lazy-refcounts contract from the other side: with lazy refcounts off the engine sets the
// dirty bit only around a snapshot's creation, deletion or revert (whose refcount changes run under
// it, engine/snapshot.cc) or when it poisons itself after an I/O error. A crash state that shows
// the bit anywhere else repairs fine, since nothing was left inconsistent, yet the engine broke the
// contract.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "properties/workload.h"
#include "simdisk/recording.h"

namespace crashsim {

// For a dirty crash state at `point` of a run with lazy refcounts off: "" if the last write
// before the point that set the dirty bit (engine/protocol.h kDirtyBitSet; a lost one still
// shows what the engine did) served a snapshot, delete-snapshot or apply-snapshot op of `workload`
// or came after the injected error at `fault_seq`; otherwise the violation, naming the op that set
// it.
std::string DirtyBitContractViolation(const simdisk::Recording& recording, const Workload& workload,
                                      uint64_t point, std::optional<uint64_t> fault_seq);

}  // namespace crashsim
