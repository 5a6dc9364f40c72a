#include "simdisk/write_cache.h"

#include <algorithm>

namespace crashsim::simdisk {

uint64_t UnitsOf(const OpRecord& op, uint64_t atomic_unit) {
  if (op.kind != OpKind::kWrite || op.length == 0) return 0;
  return (op.offset + op.length - 1) / atomic_unit - op.offset / atomic_unit + 1;
}

PendingSet PendingAt(const Recording& recording, uint64_t point, OrderModel order) {
  INVARIANT(point <= recording.op_count());
  PendingSet pending{point, recording.BarrierBefore(point), {}};
  const auto& ops = recording.ops();
  for (uint64_t seq = pending.barrier; seq < point; ++seq) {
    const OpRecord& op = ops[seq];
    if (!op.ChangesMedium()) continue;
    if (op.IsDurableWrite()) {
      // In order, a durable write implies every earlier one is durable.
      if (order == OrderModel::kPrefix) pending.items.clear();
      continue;
    }
    pending.items.push_back(
        {seq, UnitsOf(op, recording.atomic_unit()), op.tag, op.kind == OpKind::kResize});
  }
  return pending;
}

std::vector<uint64_t> CrashPoints(const Recording& recording) {
  std::vector<uint64_t> points;
  const auto& ops = recording.ops();
  for (uint64_t seq = 0; seq < ops.size(); ++seq) {
    if (ops[seq].ChangesMedium() || ops[seq].IsBarrier()) points.push_back(seq);
  }
  points.push_back(ops.size());
  return points;
}

std::vector<uint64_t> EvenlySpaced(const std::vector<uint64_t>& points, size_t n) {
  if (n == 0 || points.size() <= n) return points;
  std::vector<uint64_t> chosen;
  for (size_t i = 0; i < n; ++i) {
    // Counted back from the last point, so i = n - 1 (and n = 1) picks it.
    chosen.push_back(points[(points.size() - 1) -
                            (n - 1 - i) * (points.size() - 1) / std::max<size_t>(1, n - 1)]);
  }
  chosen.erase(std::unique(chosen.begin(), chosen.end()), chosen.end());
  return chosen;
}

}  // namespace crashsim::simdisk
