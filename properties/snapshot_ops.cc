#include "properties/snapshot_ops.h"

#include <fmt/format.h>

#include "properties/snapshot_list.h"

namespace crashsim {

std::string SnapshotName(size_t op_index) { return fmt::format("snap{}", op_index + 1); }

std::vector<SnapshotOpTarget> SnapshotOpTargets(const Workload& workload, bool can_hold) {
  const std::vector<uint64_t> sizes = workload.Sizes();
  std::vector<SnapshotOpTarget> out(workload.ops.size());
  SnapshotList<std::string> taken;
  for (size_t i = 0; i < workload.ops.size(); ++i) {
    SnapshotOpTarget& t = out[i];
    switch (workload.ops[i].kind) {
      case WorkloadOpKind::kSnapshot:
        t.skipped = !can_hold;
        if (can_hold) {
          t.name = SnapshotName(i);
          taken.Take(sizes[i], t.name);
        }
        break;
      case WorkloadOpKind::kDeleteSnapshot:
        t.skipped = taken.Oldest() == nullptr;
        if (!t.skipped) {
          t.name = *taken.Oldest();
          taken.DeleteOldest();
        }
        break;
      case WorkloadOpKind::kApplySnapshot: {
        const std::string* target = taken.RevertTarget(sizes[i]);
        t.skipped = target == nullptr;
        if (target) t.name = *target;
        break;
      }
      default:
        break;
    }
  }
  return out;
}

}  // namespace crashsim
