#include "properties/workload_gen.h"

#include <fmt/format.h>

#include <algorithm>

#include "engine/coding.h"

namespace crashsim {
namespace {

// How far past the workload's disk a generated resize may grow it: a few clusters (of at most
// 64 KiB, so that 2 MiB clusters do not make every check read megabytes of zeros).
uint64_t ResizeReach(uint64_t cluster_size) { return 4 * std::min<uint64_t>(cluster_size, 65536); }

rc::Gen<WorkloadOp> GenOp(uint64_t disk_size, uint64_t cluster_size) {
  // Offsets reach as far as a resize can grow the disk (GenWorkload folds them into the disk
  // each op meets); they cluster around a few hot clusters so that ops overlap and overwrite.
  const uint64_t reach = disk_size + ResizeReach(cluster_size);
  auto offset = rc::gen::oneOf(
      rc::gen::map(rc::gen::inRange<uint64_t>(0, reach / 512), [](uint64_t s) { return s * 512; }),
      rc::gen::map(rc::gen::inRange<uint64_t>(0, reach / cluster_size),
                   [cluster_size](uint64_t c) { return c * cluster_size; }),
      rc::gen::inRange<uint64_t>(0, reach - 1));
  auto length =
      rc::gen::oneOf(rc::gen::element<uint64_t>(512, 4096, cluster_size),
                     rc::gen::inRange<uint64_t>(1, 3 * cluster_size + 1),
                     rc::gen::map(rc::gen::inRange<uint64_t>(1, 9),
                                  [cluster_size](uint64_t n) { return n * cluster_size; }));
  // New sizes from half the disk to the reach, in 512-byte steps: grows, shrinks, sizes that
  // are not cluster multiples (a partial last cluster), and growing back over what a shrink cut.
  auto new_size =
      rc::gen::map(rc::gen::inRange<uint64_t>(AlignUp(disk_size / 2, 512) / 512, reach / 512 + 1),
                   [](uint64_t s) { return s * 512; });
  return rc::gen::apply(
      [cluster_size](int kind, uint64_t off, uint64_t len, uint32_t pattern, bool unmap,
                     uint64_t size, bool compressed) {
        WorkloadOp op;
        op.kind = static_cast<WorkloadOpKind>(kind);
        if (op.kind == WorkloadOpKind::kResize) op.new_size = size;
        if (!op.TouchesData() && op.kind != WorkloadOpKind::kRead) return op;
        op.offset = off;
        op.length = len;  // GenWorkload fits it to the disk
        if (op.kind == WorkloadOpKind::kWrite) op.pattern = pattern;
        if (op.kind == WorkloadOpKind::kZero) op.unmap = unmap;
        if (op.kind == WorkloadOpKind::kWrite && compressed) {
          // Whole clusters, so that they are compressed (where they hold no data yet).
          op.compressed = true;
          op.pattern |= kCompressiblePattern;
          op.offset = AlignDown(off, cluster_size);
          op.length = AlignUp(off + len, cluster_size) - op.offset;
        }
        return op;
      },
      rc::gen::weightedElement<int>({{10, static_cast<int>(WorkloadOpKind::kWrite)},
                                     {2, static_cast<int>(WorkloadOpKind::kZero)},
                                     {2, static_cast<int>(WorkloadOpKind::kDiscard)},
                                     {3, static_cast<int>(WorkloadOpKind::kFlush)},
                                     {1, static_cast<int>(WorkloadOpKind::kReopen)},
                                     {2, static_cast<int>(WorkloadOpKind::kRead)},
                                     {1, static_cast<int>(WorkloadOpKind::kSnapshot)},
                                     {1, static_cast<int>(WorkloadOpKind::kDeleteSnapshot)},
                                     {1, static_cast<int>(WorkloadOpKind::kApplySnapshot)},
                                     {1, static_cast<int>(WorkloadOpKind::kResize)}}),
      offset, length, rc::gen::inRange<uint32_t>(1, 1u << 20), rc::gen::arbitrary<bool>(), new_size,
      rc::gen::map(rc::gen::inRange(0, 4), [](int n) { return n == 0; }));
}

// Fits every op's range into the disk as it is when the op runs (resizes change it): an offset
// past the end wraps around, a length is cut at the end.
void FitToDisk(Workload& w) {
  uint64_t size = w.disk_size;
  for (WorkloadOp& op : w.ops) {
    if (op.kind == WorkloadOpKind::kResize) size = op.new_size;
    if (!op.TouchesData() && op.kind != WorkloadOpKind::kRead) continue;
    op.offset %= size;
    op.length = std::clamp<uint64_t>(op.length, 1, size - op.offset);
  }
}

}  // namespace

void showValue(const ExploreSettings& settings, std::ostream& os) {
  os << SettingsText(settings, {"image", "cache", "backing", "crash"});
}

rc::Gen<Workload> GenWorkload(uint64_t disk_size, uint64_t cluster_size, size_t max_ops) {
  // max_ops bounds the count only: each op draws offsets and lengths from the whole disk at the
  // nominal size (inRange scales with the size it is given, so under resize(max_ops) every op
  // would land in the disk's first few percent).
  auto op = rc::gen::resize(rc::kNominalSize, GenOp(disk_size, cluster_size));
  return rc::gen::map(
      rc::gen::resize(static_cast<int>(max_ops),
                      rc::gen::nonEmpty(rc::gen::container<std::vector<WorkloadOp>>(op))),
      [disk_size, max_ops](std::vector<WorkloadOp> ops) {
        if (ops.size() > max_ops) ops.resize(max_ops);
        Workload w;
        w.disk_size = disk_size;
        w.ops = std::move(ops);
        FitToDisk(w);
        return w;
      });
}

uint64_t DiskSizeFor(const ExploreSettings& settings) {
  const uint64_t cs = settings.image.cluster_size;
  return AlignUp((cs >= (1u << 20) ? 3 : 16) * cs + 4096, 512);
}

rc::Gen<ExploreSettings> GenImageSettings(const ExploreSettings& base, bool allow_unsafe) {
  std::vector<int> modes = {
      static_cast<int>(CacheMode::kWriteback), static_cast<int>(CacheMode::kWritethrough),
      static_cast<int>(CacheMode::kDirectsync), static_cast<int>(CacheMode::kNone)};
  if (allow_unsafe) modes.push_back(static_cast<int>(CacheMode::kUnsafe));
  return rc::gen::apply(
      [base](uint32_t version, uint64_t cluster_size, uint32_t refcount_bits, bool lazy, int mode,
             int backing) {
        ExploreSettings s = base;
        s.image.version = version;
        s.image.cluster_size = cluster_size;
        s.image.refcount_bits = version == 2 ? 16 : refcount_bits;
        s.image.lazy_refcounts = version == 3 && lazy;
        s.cache_mode = static_cast<CacheMode>(mode);
        s.backing = static_cast<BackingKind>(backing);
        return s;
      },
      rc::gen::element<uint32_t>(2, 3),
      rc::gen::weightedElement<uint64_t>({{3, 512}, {3, 4096}, {3, 65536}, {1, 2u << 20}}),
      rc::gen::element<uint32_t>(1, 16, 64), rc::gen::arbitrary<bool>(), rc::gen::elementOf(modes),
      rc::gen::element<int>(
          static_cast<int>(BackingKind::kNone), static_cast<int>(BackingKind::kNone),
          static_cast<int>(BackingKind::kRaw), static_cast<int>(BackingKind::kQcow2)));
}

rc::Gen<ExploreSettings> GenSmallRefcountSettings(const ExploreSettings& base) {
  return rc::gen::apply(
      [base](bool lazy, int mode, int backing) {
        ExploreSettings s = base;
        s.image.version = 3;
        s.image.cluster_size = 512;
        s.image.refcount_bits = 64;
        s.image.lazy_refcounts = lazy;
        s.cache_mode = static_cast<CacheMode>(mode);
        s.backing = static_cast<BackingKind>(backing);
        return s;
      },
      rc::gen::arbitrary<bool>(),
      rc::gen::element(
          static_cast<int>(CacheMode::kWriteback), static_cast<int>(CacheMode::kWritethrough),
          static_cast<int>(CacheMode::kDirectsync), static_cast<int>(CacheMode::kNone)),
      rc::gen::element(static_cast<int>(BackingKind::kNone), static_cast<int>(BackingKind::kRaw),
                       static_cast<int>(BackingKind::kQcow2)));
}

rc::Gen<Workload> GenRefblockFillingWorkload(size_t max_ops) {
  constexpr uint64_t kCluster = 512;
  constexpr uint64_t kDiskClusters = kRefblockFillingDisk / kCluster;
  return rc::gen::apply(
      [](Workload w, uint64_t clusters, uint64_t first, uint32_t pattern) {
        WorkloadOp fill;
        fill.offset = std::min(first, kDiskClusters - clusters) * kCluster;
        fill.length = clusters * kCluster;
        fill.pattern = pattern;
        w.ops.insert(w.ops.begin(), fill);
        return w;
      },
      GenWorkload(kRefblockFillingDisk, kCluster, max_ops),
      // At the nominal size: inRange scales with the size (see GenWorkload).
      rc::gen::resize(rc::kNominalSize, rc::gen::inRange<uint64_t>(72, 129)),
      rc::gen::resize(rc::kNominalSize, rc::gen::inRange<uint64_t>(0, kDiskClusters)),
      rc::gen::inRange<uint32_t>(1, 1u << 20));
}

rc::Gen<Workload> GenTableGrowingWorkload(size_t max_ops) {
  constexpr uint64_t kCluster = 512;
  constexpr uint64_t kDiskClusters = kTableGrowingDisk / kCluster;
  return rc::gen::apply(
      [](Workload w, uint64_t clusters, uint64_t first, uint32_t aging_pattern, uint32_t pattern) {
        WorkloadOp aging;
        aging.offset = 0;
        aging.length = kTableAgingClusters * kCluster;
        aging.pattern = aging_pattern;
        // Past the aged range, so every cluster of it is a fresh allocation.
        WorkloadOp growth;
        growth.offset = std::min(kTableAgingClusters + first, kDiskClusters - clusters) * kCluster;
        growth.length = clusters * kCluster;
        growth.pattern = pattern;
        WorkloadOp reopen;
        reopen.kind = WorkloadOpKind::kReopen;
        w.ops.insert(w.ops.begin(), {aging, reopen, growth});
        return w;
      },
      GenWorkload(kTableGrowingDisk, kCluster, max_ops),
      // At the nominal size: inRange scales with the size (see GenWorkload).
      rc::gen::resize(rc::kNominalSize, rc::gen::inRange<uint64_t>(12, 49)),
      rc::gen::resize(rc::kNominalSize,
                      rc::gen::inRange<uint64_t>(0, kDiskClusters - kTableAgingClusters)),
      rc::gen::inRange<uint32_t>(1, 1u << 20), rc::gen::inRange<uint32_t>(1, 1u << 20));
}

rc::Gen<ExploreSettings> GenResizeSettings(const ExploreSettings& base) {
  return rc::gen::apply(
      [](ExploreSettings s, uint64_t cluster_size) {
        s.image.cluster_size = cluster_size;
        return s;
      },
      GenImageSettings(base, /*allow_unsafe=*/false), rc::gen::element<uint64_t>(512, 4096));
}

rc::Gen<Workload> GenL1ResizeWorkload(uint64_t cluster_size, size_t max_ops) {
  const uint64_t cs = cluster_size;
  const uint64_t per_l2 = cs * (cs / 8);  // guest bytes one L2 table maps
  const uint64_t disk = AlignUp(per_l2 + per_l2 / 2, 512);
  // Past one L1 cluster's reach with 512-byte clusters (64 entries: 2 MiB), so the new table
  // takes two clusters; past two L2 tables otherwise.
  const uint64_t grow_base = cs == 512 ? (cs / 8) * per_l2 : 2 * per_l2;
  auto in_sectors = [](uint64_t lo, uint64_t hi) {  // [lo, hi], 512-byte steps, nominal size
    return rc::gen::resize(rc::kNominalSize,
                           rc::gen::map(rc::gen::inRange<uint64_t>(lo / 512, hi / 512 + 1),
                                        [](uint64_t s) { return s * 512; }));
  };
  return rc::gen::apply(
      [=](Workload w, uint64_t grown, uint64_t tail, uint64_t inside, uint32_t pattern, bool flush,
          uint64_t shrunk, uint64_t back) {
        auto write = [&](uint64_t offset, uint64_t length, uint32_t p) {
          return WorkloadOp{
              .kind = WorkloadOpKind::kWrite, .offset = offset, .length = length, .pattern = p};
        };
        w.ops.push_back({.kind = WorkloadOpKind::kResize, .new_size = grown});
        w.ops.push_back(write(grown - tail, tail, pattern));
        w.ops.push_back(write(disk + (inside % (grown - disk - 4096)), 4096, pattern + 1));
        if (flush) w.ops.push_back({.kind = WorkloadOpKind::kFlush});
        w.ops.push_back({.kind = WorkloadOpKind::kResize, .new_size = shrunk});
        const uint64_t near_end = std::min<uint64_t>(shrunk, 1024);
        w.ops.push_back(write(shrunk - near_end, near_end, pattern + 2));
        w.ops.push_back({.kind = WorkloadOpKind::kResize, .new_size = back});
        w.ops.push_back({.kind = WorkloadOpKind::kRead,
                         .offset = shrunk,
                         .length = std::min(back - shrunk, 2 * cs)});
        return w;
      },
      GenWorkload(disk, cs, max_ops), in_sectors(grow_base + 512, grow_base + per_l2),
      in_sectors(512, 2 * cs), rc::gen::resize(rc::kNominalSize, rc::gen::arbitrary<uint64_t>()),
      rc::gen::inRange<uint32_t>(1, 1u << 20), rc::gen::arbitrary<bool>(),
      in_sectors(per_l2 / 4, per_l2 - 512), in_sectors(per_l2, disk));
}

}  // namespace crashsim
