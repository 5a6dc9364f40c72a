#include "properties/dirty_bit_contract.h"

#include <fmt/format.h>

#include <algorithm>

#include "engine/protocol.h"

namespace crashsim {

std::string DirtyBitContractViolation(const simdisk::Recording& recording, const Workload& workload,
                                      uint64_t point, std::optional<uint64_t> fault_seq) {
  const auto& ops = recording.ops();
  for (uint64_t seq = std::min<uint64_t>(point, ops.size()); seq-- > 0;) {
    const simdisk::OpRecord& op = ops[seq];
    if (op.kind != simdisk::OpKind::kWrite ||
        op.step != static_cast<uint8_t>(DurableStep::kDirtyBitSet)) {
      continue;
    }
    if (fault_seq && seq > *fault_seq) return "";  // poisoned after the injected error
    const bool in_workload = op.guest_op < workload.ops.size();
    // Creating, deleting and reverting to a snapshot run under the dirty bit (engine/snapshot.h).
    const WorkloadOpKind kind =
        in_workload ? workload.ops[op.guest_op].kind : WorkloadOpKind::kFlush;
    if (kind == WorkloadOpKind::kSnapshot || kind == WorkloadOpKind::kDeleteSnapshot ||
        kind == WorkloadOpKind::kApplySnapshot) {
      return "";
    }
    std::string by;
    if (in_workload) {
      by = fmt::format("guest op #{} ({})", op.guest_op, workload.ops[op.guest_op].ToText());
    } else if (op.guest_op == workload.ops.size()) {
      by = "the close";
    } else {
      by = "a device op outside every guest op";
    }
    return fmt::format(
        "lazy refcounts are off, yet the crash left the dirty bit set: {} set it (device op {}), "
        "and only a snapshot's creation, deletion or revert may",
        by, seq);
  }
  return "lazy refcounts are off, yet the crash left the dirty bit set, and no write before the "
         "crash point set it";
}

}  // namespace crashsim
