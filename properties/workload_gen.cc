#include "properties/workload_gen.h"

#include <fmt/format.h>

#include <algorithm>

#include "engine/coding.h"

namespace crashsim {
namespace {

rc::Gen<WorkloadOp> GenOp(uint64_t disk_size, uint64_t cluster_size) {
  // Offsets cluster around a few hot clusters so that ops overlap and overwrite.
  auto offset =
      rc::gen::oneOf(rc::gen::map(rc::gen::inRange<uint64_t>(0, disk_size / 512),
                                  [](uint64_t s) { return s * 512; }),
                     rc::gen::map(rc::gen::inRange<uint64_t>(0, disk_size / cluster_size),
                                  [cluster_size](uint64_t c) { return c * cluster_size; }),
                     rc::gen::inRange<uint64_t>(0, disk_size - 1));
  auto length =
      rc::gen::oneOf(rc::gen::element<uint64_t>(512, 4096, cluster_size),
                     rc::gen::inRange<uint64_t>(1, 3 * cluster_size + 1),
                     rc::gen::map(rc::gen::inRange<uint64_t>(1, 9),
                                  [cluster_size](uint64_t n) { return n * cluster_size; }));
  return rc::gen::apply(
      [disk_size](int kind, uint64_t off, uint64_t len, uint32_t pattern, bool unmap) {
        WorkloadOp op;
        op.kind = static_cast<WorkloadOpKind>(kind);
        if (!op.TouchesData() && op.kind != WorkloadOpKind::kRead) return op;
        op.offset = off;
        op.length = std::min(len, disk_size - off);
        if (op.kind == WorkloadOpKind::kWrite) op.pattern = pattern;
        if (op.kind == WorkloadOpKind::kZero) op.unmap = unmap;
        return op;
      },
      rc::gen::weightedElement<int>({{10, static_cast<int>(WorkloadOpKind::kWrite)},
                                     {2, static_cast<int>(WorkloadOpKind::kZero)},
                                     {2, static_cast<int>(WorkloadOpKind::kDiscard)},
                                     {3, static_cast<int>(WorkloadOpKind::kFlush)},
                                     {1, static_cast<int>(WorkloadOpKind::kReopen)},
                                     {2, static_cast<int>(WorkloadOpKind::kRead)},
                                     {1, static_cast<int>(WorkloadOpKind::kSnapshot)}}),
      offset, length, rc::gen::inRange<uint32_t>(1, 1u << 20), rc::gen::arbitrary<bool>());
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

}  // namespace crashsim
