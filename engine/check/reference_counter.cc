#include "engine/check/reference_counter.h"

#include <fmt/format.h>

#include <algorithm>
#include <limits>

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
  counts_.assign(nb_clusters, 0);
  owners_.assign(nb_clusters, Owner::kNone);
  max_ = std::min<uint64_t>(refcount_max, std::numeric_limits<uint32_t>::max());
}

void ReferenceCounter::Set(uint64_t cluster, uint64_t value) {
  if (cluster >= counts_.size()) {
    counts_.resize(cluster + 1, 0);
    owners_.resize(cluster + 1, Owner::kNone);
  }
  counts_[cluster] = static_cast<uint32_t>(std::min(value, max_));
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
  const uint64_t first = offset / cs;
  const uint64_t last = (offset + size - 1) / cs;
  if (last >= counts_.size()) {
    counts_.resize(last + 1, 0);
    owners_.resize(last + 1, Owner::kNone);
  }
  for (uint64_t k = first; k <= last; ++k) {
    if (counts_[k] >= max_) {
      ctx.Corruption(FindingKind::kRefcountOverflow, k * cs, OwnerName(owner),
                     fmt::format("ERROR: overflow cluster offset={:#x}", k * cs));
      continue;
    }
    if (counts_[k] > 0 && ctx.annotate_overlaps &&
        (owners_[k] != owner || Exclusive(owner))) {
      ctx.Note(FindingKind::kOverlap, FindingSeverity::kInfo, k * cs, OwnerName(owner),
               fmt::format("Overlap: cluster {} is used by the {} and by the {}", k,
                           OwnerName(owners_[k]), OwnerName(owner)));
    }
    if (counts_[k] == 0) owners_[k] = owner;
    counts_[k]++;
  }
}

}  // namespace crashsim::check
