#include "properties/random_workload.h"

#include <algorithm>
#include <array>

#include "engine/coding.h"
#include "simdisk/hash.h"
#include "simdisk/prng.h"

namespace crashsim {

Workload RandomWorkload(uint64_t seed, size_t op_count, uint64_t disk_size, uint64_t cluster_size) {
  simdisk::Xoshiro256 rng(simdisk::DeriveSeed(seed, 0x776f726bull));  // "work"
  Workload w;
  w.disk_size = disk_size;
  uint64_t size = disk_size;  // as the resizes so far left it
  // Resizes land within a few clusters (of at most 64 KiB) of the disk's size or of half of it:
  // on the default geometry an L2 table maps half the disk, so they grow the L1 table, clear
  // an L1 entry when shrinking past half, and leave partial last clusters.
  const uint64_t reach = 4 * std::min<uint64_t>(cluster_size, 65536) / 512;  // in sectors
  const uint64_t min_size = std::max<uint64_t>(512, AlignUp(disk_size / 2, 512) - reach * 512);
  for (size_t i = 0; i < op_count; ++i) {
    WorkloadOp op;
    uint64_t kind = rng.Below(24);
    if (kind < 10) {
      op.kind = WorkloadOpKind::kWrite;
    } else if (kind < 12) {
      op.kind = WorkloadOpKind::kZero;
    } else if (kind < 14) {
      op.kind = WorkloadOpKind::kDiscard;
    } else if (kind < 17) {
      op.kind = WorkloadOpKind::kFlush;
    } else if (kind < 18) {
      op.kind = WorkloadOpKind::kReopen;
    } else if (kind < 20) {
      op.kind = WorkloadOpKind::kRead;
    } else if (kind < 21) {
      op.kind = WorkloadOpKind::kSnapshot;
    } else if (kind < 22) {
      op.kind = WorkloadOpKind::kDeleteSnapshot;
    } else if (kind < 23) {
      op.kind = WorkloadOpKind::kApplySnapshot;
    } else {
      op.kind = WorkloadOpKind::kResize;
      const uint64_t base = rng.Chance(1, 2) ? AlignUp(disk_size / 2, 512) : disk_size;
      op.new_size = std::max(min_size, base + (rng.Below(2 * reach + 1) - reach) * 512);
      size = op.new_size;
    }
    if (op.TouchesData() || op.kind == WorkloadOpKind::kRead) {
      // Half the ops land in the first four clusters, so they overlap and overwrite.
      uint64_t span = rng.Chance(1, 2) ? std::min(size, 4 * cluster_size) : size;
      switch (rng.Below(3)) {
        case 0:
          op.offset = rng.Below(span / 512) * 512;
          break;
        case 1:
          op.offset = rng.Below(span / cluster_size) * cluster_size;
          break;
        default:
          op.offset = rng.Below(span);
          break;
      }
      switch (rng.Below(3)) {
        case 0:
          op.length = std::array<uint64_t, 3>{512, 4096, cluster_size}[rng.Below(3)];
          break;
        case 1:
          op.length = 1 + rng.Below(3 * cluster_size);
          break;
        default:
          op.length = (1 + rng.Below(8)) * cluster_size;
          break;
      }
      // A quarter of the writes are compressed, chosen by a hash rather than by `rng`, so the
      // rest of the workload is what it was before compressed writes existed.
      if (op.kind == WorkloadOpKind::kWrite &&
          simdisk::Mix64(simdisk::DeriveSeed(seed, 0x636f6d70ull) + i) % 4 == 0) {  // "comp"
        op.compressed = true;
        const uint64_t begin = AlignDown(op.offset, cluster_size);
        op.length = AlignUp(op.offset + op.length, cluster_size) - begin;
        op.offset = begin;
      }
      op.length = std::min(op.length, size - op.offset);
      if (op.kind == WorkloadOpKind::kWrite) {
        op.pattern = static_cast<uint32_t>(1 + i) | (op.compressed ? kCompressiblePattern : 0);
      }
      if (op.kind == WorkloadOpKind::kZero) op.unmap = rng.Chance(1, 2);
    }
    w.ops.push_back(op);
  }
  return w;
}

}  // namespace crashsim
