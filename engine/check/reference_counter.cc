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
    case Owner::kNone:
      return "nothing";
    case Owner::kHeader:
      return "qcow2 header";
    case Owner::kActiveL1:
      return "active L1 table";
    case Owner::kL2:
      return "L2 table";
    case Owner::kData:
      return "data cluster";
    case Owner::kSnapshotTable:
      return "snapshot table";
    case Owner::kSnapshotL1:
      return "snapshot L1 table";
    case Owner::kReftable:
      return "refcount table";
    case Owner::kRefblock:
      return "refcount block";
    case Owner::kBitmapDirectory:
      return "bitmap directory";
    case Owner::kBitmapTable:
      return "bitmap table";
    case Owner::kBitmapData:
      return "bitmap data";
  }
  return "?";
}

void ReferenceCounter::Reset(uint64_t nb_clusters, uint64_t refcount_max) {
  max_ = std::min<uint64_t>(refcount_max, std::numeric_limits<uint32_t>::max());
  size_ = 0;
  bytes_.clear();
  wide_pages_.clear();
  other_owners_.clear();
  past_eof_.clear();
  Grow(nb_clusters);
}

void ReferenceCounter::Grow(uint64_t nb_clusters) {
  if (nb_clusters <= size_) return;
  size_ = nb_clusters;
  bytes_.resize(size_, Byte{0});
  wide_pages_.resize(DivRoundUp(size_, uint64_t{1} << kWidePageBits));
}

void ReferenceCounter::Store(uint64_t cluster, uint64_t value) {
  const uint8_t owner_bit = static_cast<uint8_t>(bytes_[cluster]) & kNotData;
  if (value < kEscape) {
    bytes_[cluster] = static_cast<Byte>(owner_bit | value);
    return;
  }
  std::unique_ptr<uint32_t[]>& page = wide_pages_[cluster >> kWidePageBits];
  if (!page) page = std::make_unique<uint32_t[]>(uint64_t{1} << kWidePageBits);
  page[cluster & ((1u << kWidePageBits) - 1)] = static_cast<uint32_t>(value);
  bytes_[cluster] = static_cast<Byte>(owner_bit | kEscape);
}

bool ReferenceCounter::AllZero(uint64_t begin, uint64_t end) const {
  uint8_t any = 0;  // an owner bit is only ever set with a count
  for (uint64_t k = begin; k < end; ++k) any |= static_cast<uint8_t>(bytes_[k]);
  return any == 0;
}

void ReferenceCounter::Set(uint64_t cluster, uint64_t value) {
  Grow(cluster + 1);
  Store(cluster, std::min(value, max_));
}

Owner ReferenceCounter::owner(uint64_t cluster) const {
  if (Get(cluster) == 0) return Owner::kNone;
  if (!(static_cast<uint8_t>(bytes_[cluster]) & kNotData)) return Owner::kData;
  auto it = other_owners_.find(cluster);
  return it == other_owners_.end() ? Owner::kL2 : it->second;
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
    past_eof_.push_back({offset, size, owner, false});
    return;
  }
  Count(ctx, offset >> ctx.geo.cluster_bits, (offset + size - 1) >> ctx.geo.cluster_bits, owner);
}

size_t ReferenceCounter::CountPastEofBelow(Context& ctx, uint64_t end) {
  size_t counted = 0;
  for (PastEofRegion& r : past_eof_) {
    if (r.counted || (r.offset >> ctx.geo.cluster_bits) >= end) continue;
    r.counted = true;
    ++counted;
    Count(ctx, r.offset >> ctx.geo.cluster_bits, (r.offset + r.size - 1) >> ctx.geo.cluster_bits,
          r.owner);
  }
  return counted;
}

void ReferenceCounter::Count(Context& ctx, uint64_t first, uint64_t last, Owner owner) {
  const uint64_t cs = ctx.cluster_size();
  Grow(last + 1);
  for (uint64_t k = first; k <= last; ++k) {
    const uint64_t count = Get(k);
    if (count >= max_) {
      ctx.Corruption(FindingKind::kRefcountOverflow, k * cs, OwnerName(owner),
                     fmt::format("ERROR: overflow cluster offset={:#x}", k * cs));
      continue;
    }
    if (count == 0) {
      // The first claim: the owner bit and, for metadata other than L2 tables, the map.
      bytes_[k] = static_cast<Byte>(owner == Owner::kData ? 0 : kNotData);
      if (owner != Owner::kData && owner != Owner::kL2) other_owners_[k] = owner;
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
