// validate's guest workload (workload_generator.h).
#include "validate/workload_generator.h"

#include "simdisk/prng.h"

namespace crashsim::validate {

Workload GenerateWorkload(uint64_t seed, uint64_t disk_size, uint64_t cluster_size, size_t ops,
                          bool image_ops) {
  simdisk::Xoshiro256 rng(simdisk::DeriveSeed(seed, 0x7a11d47e));
  Workload w;
  w.disk_size = disk_size;
  const uint64_t clusters = disk_size / cluster_size;
  const uint64_t hot[3] = {0, rng.Below(clusters), clusters - 1};
  for (size_t i = 0; i < ops; ++i) {
    WorkloadOp op;
    const uint64_t kind = rng.Below(20);
    op.kind = kind < 12   ? WorkloadOpKind::kWrite
              : kind < 14 ? WorkloadOpKind::kZero
              : kind < 16 ? WorkloadOpKind::kDiscard
              : kind < 19 ? WorkloadOpKind::kFlush
                          : WorkloadOpKind::kReopen;
    if (op.TouchesData()) {
      const uint64_t base = rng.Below(2) ? hot[rng.Below(3)] : rng.Below(clusters);
      switch (rng.Below(3)) {
        case 0:
          op.offset = base * cluster_size;
          break;
        case 1:
          op.offset = base * cluster_size + rng.Below(cluster_size / 512) * 512;
          break;
        default:
          op.offset = base * cluster_size + rng.Below(cluster_size);
          break;
      }
      const uint64_t lengths[4] = {512, 4096, cluster_size, 1 + rng.Below(3 * cluster_size)};
      op.length = std::min(lengths[rng.Below(4)], disk_size - op.offset);
      if (op.length == 0) op.length = 1, op.offset = disk_size - 1;
      if (op.kind == WorkloadOpKind::kWrite)
        op.pattern = 1 + static_cast<uint32_t>(rng.Below(1u << 20));
      if (op.kind == WorkloadOpKind::kZero) op.unmap = rng.Below(2) == 1;
    }
    w.ops.push_back(op);
  }
  if (image_ops) {
    // From the back, so each position still names the guest op it goes before.
    const auto at = [&](size_t guest_index) {
      return w.ops.begin() + static_cast<std::ptrdiff_t>(guest_index);
    };
    w.ops.insert(at(ops), {.kind = WorkloadOpKind::kDeleteSnapshot});
    w.ops.insert(at(2 * ops / 3), {.kind = WorkloadOpKind::kApplySnapshot});
    w.ops.insert(at(ops / 2),
                 {{.kind = WorkloadOpKind::kResize, .new_size = disk_size + cluster_size},
                  {.kind = WorkloadOpKind::kResize, .new_size = disk_size}});
    w.ops.insert(at(ops / 3), {.kind = WorkloadOpKind::kSnapshot});
  }
  w.ops.push_back({.kind = WorkloadOpKind::kFlush});
  return w;
}

}  // namespace crashsim::validate
