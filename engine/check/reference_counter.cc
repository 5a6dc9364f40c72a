#include "engine/check/reference_counter.h"

#include <fmt/format.h>

#include <algorithm>
#include <limits>

#include "engine/coding.h"

namespace crashsim::check {
namespace {

// Structures that must never share a cluster with anything. L2 tables and data clusters may be
// shared with snapshots, and compressed clusters with each other, as long as the kinds agree.
bool Exclusive(Owner owner) {
  return owner != Owner::kL2 && owner != Owner::kData && owner != Owner::kNone;
}

}  // namespace

const char* OwnerName(Owner owner) {
  switch (owner) {
    case Owner::kNone: return "nothing";
    case Owner::kHeader: return "qcow2 header";
    case Owner::kActiveL1: return "active L1 table";
    case Owner::kL2: return "L2 table";
    case Owner::kData: return "data cluster";
    case Owner::kSnapshotTable: return "snapshot table";
    case Owner::kSnapshotL1: return "snapshot L1 table";
    case Owner::kReftable: return "refcount table";
    case Owner::kRefblock: return "refcount block";
    case Owner::kBitmapDirectory: return "bitmap directory";
    case Owner::kBitmapTable: return "bitmap table";
    case Owner::kBitmapData: return "bitmap data";
  }
  return "?";
}

void ReferenceCounter::Reset(uint64_t nb_clusters, uint64_t refcount_max) {
  max_ = std::min<uint64_t>(refcount_max, std::numeric_limits<uint32_t>::max());
  wide_ = max_ > std::numeric_limits<uint16_t>::max();
  size_ = 0;
  counts16_.clear();
  counts32_.clear();
  classes_.clear();
  other_owners_.clear();
  Grow(nb_clusters);
}

void ReferenceCounter::Grow(uint64_t nb_clusters) {
  if (nb_clusters <= size_) return;
  size_ = nb_clusters;
  if (wide_) {
    counts32_.resize(size_, 0);
  } else {
    counts16_.resize(size_, 0);
  }
  classes_.resize(DivRoundUp(size_, 4), 0);
}

Owner ReferenceCounter::owner(uint64_t cluster) const {
  if (cluster >= size_) return Owner::kNone;
  switch (ClassOf(cluster)) {
    case kClassNone: return Owner::kNone;
    case kClassL2: return Owner::kL2;
    case kClassData: return Owner::kData;
    case kClassOther: break;
  }
  auto it = other_owners_.find(cluster);
  return it == other_owners_.end() ? Owner::kNone : it->second;
}

void ReferenceCounter::Set(uint64_t cluster, uint64_t value) {
  Grow(cluster + 1);
  Store(cluster, std::min(value, max_));
}

void ReferenceCounter::Add(Context& ctx, uint64_t offset, uint64_t size, Owner owner) {
  if (size == 0) return;
  const uint64_t cs = ctx.cluster_size();
  // The last cluster of an image may be partly written, so references may end inside the
  // cluster after EOF but not further (QEMU's rule).
  if (offset + size >= ctx.file_size + cs) {
    ctx.Corruption(FindingKind::kPastEndOfFile, offset, OwnerName(owner),
                   fmt::format("ERROR: counting reference for region exceeding the end of the "
                               "file by one cluster or more: offset {:#x} size {:#x}",
                               offset, size));
    return;
  }
  const uint64_t first = offset >> ctx.geo.cluster_bits;
  const uint64_t last = (offset + size - 1) >> ctx.geo.cluster_bits;
  Grow(last + 1);
  const OwnerClass cls = owner == Owner::kL2     ? kClassL2
                         : owner == Owner::kData ? kClassData
                         : owner == Owner::kNone ? kClassNone
                                                 : kClassOther;
  for (uint64_t k = first; k <= last; ++k) {
    const uint64_t count = Get(k);
    if (count >= max_) {
      ctx.Corruption(FindingKind::kRefcountOverflow, k * cs, OwnerName(owner),
                     fmt::format("ERROR: overflow cluster offset={:#x}", k * cs));
      continue;
    }
    if (count == 0) {
      SetClass(k, cls);
      if (cls == kClassOther) other_owners_[k] = owner;
    } else if (ctx.annotate_overlaps) {
      const Owner first_owner = this->owner(k);
      if (first_owner != owner || Exclusive(owner)) {
        ctx.Note(FindingKind::kOverlap, FindingSeverity::kInfo, k * cs, OwnerName(owner),
                 fmt::format("Overlap: cluster {} is used by the {} and by the {}", k,
                             OwnerName(first_owner), OwnerName(owner)));
      }
    }
    Store(k, count + 1);
  }
}

}  // namespace crashsim::check
