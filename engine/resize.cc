// Image::Resize: what `qemu-img resize` does to a qcow2 image, in the order of protocol rule R5
// (engine/protocol.h), so that a crash anywhere leaves the old size or the new one, never a size
// the L1 table does not cover and never stale bytes in a grown area.
//
// Growing (QEMU's qcow2_co_truncate and qcow2_grow_l1_table, exact size): a new L1 table at a
// fresh place, synced, then the 12 header bytes naming it, synced, then the old table freed.
// Then the new area is made to read as zeros before the size field says it exists. QEMU zeroes
// it only when a backing file reaches past the old end (and refuses on v2 images); the engine
// also zeroes the tail of the old last cluster and any cluster still mapped past the old end
// (left by an earlier shrink to an unaligned size, or by a shrink a crash cut short), which QEMU
// would expose (docs/findings.md F3), and writes explicit zeros on v2.
//
// Shrinking (full discard, then qcow2_shrink_l1_table): the clusters wholly past the new end
// are unmapped (L2 entries 0) and their refcounts dropped; the L1 entries past the new end are
// cleared in one write, synced, and only then their L2 tables freed. l1_size stays, as QEMU
// leaves it. The refcount table is not shrunk and the file is not truncated: what QEMU does
// there only returns space.
#include <fmt/format.h>

#include <algorithm>

#include "engine/coding.h"
#include "engine/image_state.h"
#include "engine/invariant.h"

namespace crashsim {
namespace {

using State = Image::State;

constexpr uint64_t kSizeUnit = 512;

Status CheckResizable(const State& s, uint64_t new_size) {
  if (new_size % kSizeUnit != 0) {
    return Status::InvalidArgument(
        fmt::format("The new size must be a multiple of {}: {} is not", kSizeUnit, new_size));
  }
  if (s.header.version < 3 && s.header.nb_snapshots > 0) {
    return Status::NotSupported("Can't resize a v2 image which has snapshots");
  }
  if (s.header.bitmaps && s.header.bitmaps->nb_bitmaps > 0) {
    return Status::NotSupported(
        "resizing an image with persistent bitmaps is not supported (the engine does not load "
        "them)");
  }
  const uint64_t l1_entries = s.geometry.l1_entries_for(new_size);
  if (l1_entries > kMaxL1Entries) {
    return Status::InvalidArgument(
        fmt::format("size {} needs an L1 table of {} entries; the limit is {}", new_size,
                    l1_entries, kMaxL1Entries));
  }
  return Status::Ok();
}

// R5, growth: the new table is durable before the header names it; the old one is freed after.
Status GrowL1(State& s, uint64_t entries) {
  const uint64_t cs = s.header.cluster_size();
  const uint64_t clusters = DivRoundUp(entries * 8, cs);
  ASSIGN_OR_RETURN(uint64_t offset, s.AllocateClusters(clusters));
  if (s.accurate_refcounts()) {  // R1 for the table's own refcount
    RETURN_IF_ERROR(s.WriteRefcountBlocks());
    RETURN_IF_ERROR(s.DevFlush());
  }
  std::vector<uint8_t> raw(clusters * cs, 0);
  for (size_t i = 0; i < s.l1.size(); ++i) StoreBE64(&raw[i * 8], s.l1[i]);
  RETURN_IF_ERROR(s.DevWrite(offset, raw, IoTag::kL1Table, DurableStep::kL1Grow));
  RETURN_IF_ERROR(s.DevFlush());
  uint8_t field[12];
  StoreBE32(field, static_cast<uint32_t>(entries));
  StoreBE64(field + 4, offset);
  RETURN_IF_ERROR(s.DevWrite(kL1SizeOffset, field, IoTag::kHeader, DurableStep::kL1Switch));
  RETURN_IF_ERROR(s.DevFlush());
  const uint64_t old_offset = s.header.l1_table_offset;
  const uint64_t old_clusters = DivRoundUp(uint64_t{s.header.l1_size} * 8, cs);
  s.header.l1_table_offset = offset;
  s.header.l1_size = static_cast<uint32_t>(entries);
  s.l1.resize(entries, 0);
  // The header no longer names the old table, durably: its clusters can go at once.
  for (uint64_t i = 0; i < old_clusters; ++i) {
    const uint64_t ci = s.cluster_index(old_offset) + i;
    ASSIGN_OR_RETURN(uint64_t rc, s.GetRefcount(ci));
    if (rc == 0) {
      return Status::Corruption(fmt::format("old L1 table cluster {} has refcount 0", ci));
    }
    RETURN_IF_ERROR(s.SetRefcount(ci, rc - 1));
  }
  return Status::Ok();
}

// Calls fn(guest_offset) for every guest cluster that starts in [begin, end) and whose L2 entry
// is not 0, in guest order. Costs the L2 tables that cover the range, not its length.
Status ForEachMappedIn(State& s, uint64_t begin, uint64_t end,
                       const std::function<Status(uint64_t guest_offset)>& fn) {
  const Geometry& g = s.geometry;
  const uint64_t per_table = g.l2_entries() << g.cluster_bits;
  for (uint64_t table_start = AlignDown(begin, per_table); table_start < end;
       table_start += per_table) {
    const uint64_t l1_index = g.l1_index(table_start);
    if (l1_index >= s.l1.size()) break;
    if ((s.l1[l1_index] & kL1OffsetMask) == 0) continue;
    std::vector<uint64_t> mapped;  // collected first: fn may evict the table from the cache
    {
      ASSIGN_OR_RETURN(std::span<uint8_t> table, s.L2TableForRead(l1_index));
      const uint64_t first = std::max(begin, table_start);
      const uint64_t last = std::min(end, table_start + per_table);
      for (uint64_t guest = AlignUp(first, g.cluster_size()); guest < last;
           guest += g.cluster_size()) {
        const L2Entry e = s.GetL2Entry(table, g.l2_index(guest));
        if (e.word != 0 || e.bitmap != 0) mapped.push_back(guest);
      }
    }
    for (uint64_t guest : mapped) RETURN_IF_ERROR(fn(guest));
  }
  return Status::Ok();
}

// Unmaps the cluster at `guest`: its L2 entry becomes 0 and what it held is released (R3).
Status DropCluster(State& s, uint64_t guest) {
  ASSIGN_OR_RETURN(L2Entry old, s.LookupEntry(guest));
  if (old.word == 0 && old.bitmap == 0) return Status::Ok();
  ASSIGN_OR_RETURN(uint64_t table_offset, s.L2TableForWrite(s.geometry.l1_index(guest)));
  ASSIGN_OR_RETURN(std::span<uint8_t> table, s.l2_cache.Get(table_offset));
  s.SetL2Entry(table, s.geometry.l2_index(guest), L2Entry{});
  s.l2_cache.MarkDirty(table_offset);
  s.ReleaseEntry(old);
  return Status::Ok();
}

// Makes [old_size, new_size) read as zeros. Where a backing file reaches, whole clusters get the
// zero flag (v3) or explicit zeros (v2, which has no zero flag; QEMU refuses to grow such an
// image instead); past it, clusters still mapped are unmapped and read as zeros then. The part
// of the old last cluster past old_size gets explicit zeros.
Status ZeroNewArea(State& s, uint64_t old_size, uint64_t new_size) {
  const uint64_t cs = s.header.cluster_size();
  const uint64_t aligned = std::min(AlignUp(old_size, cs), new_size);
  const uint64_t backing_size = s.backing ? s.backing->virtual_size() : 0;
  if (aligned > old_size) {
    ASSIGN_OR_RETURN(L2Entry head, s.LookupEntry(old_size));
    if (head.word != 0 || head.bitmap != 0 || backing_size > old_size) {
      std::vector<uint8_t> zeros(aligned - old_size, 0);
      RETURN_IF_ERROR(s.WriteCluster(old_size, zeros));
    }
  }
  const uint64_t backed_end = std::clamp(AlignUp(backing_size, cs), aligned, new_size);
  std::vector<uint8_t> zero_cluster;
  for (uint64_t pos = aligned; pos < backed_end; pos += cs) {
    if (s.header.version >= 3) {
      RETURN_IF_ERROR(s.ZeroCluster(pos, /*unmap=*/true, /*discard=*/false));
    } else {
      zero_cluster.resize(cs, 0);
      RETURN_IF_ERROR(s.WriteCluster(pos, zero_cluster));
    }
  }
  return ForEachMappedIn(s, backed_end, new_size,
                         [&](uint64_t guest) { return DropCluster(s, guest); });
}

Status WriteSize(State& s, uint64_t new_size) {
  uint8_t field[8];
  StoreBE64(field, new_size);
  RETURN_IF_ERROR(s.DevWrite(kSizeOffset, field, IoTag::kHeader, DurableStep::kSizeUpdate));
  RETURN_IF_ERROR(s.DevFlush());
  s.header.size = new_size;
  return Status::Ok();
}

Status Grow(State& s, uint64_t new_size) {
  const uint64_t entries = s.geometry.l1_entries_for(new_size);
  if (entries > s.l1.size()) RETURN_IF_ERROR(GrowL1(s, entries));
  RETURN_IF_ERROR(ZeroNewArea(s, s.header.size, new_size));
  // The zeros are durable before the size makes the area visible.
  RETURN_IF_ERROR(s.FlushMetadata(/*flush_refcounts_even_if_lazy=*/false));
  return WriteSize(s, new_size);
}

Status Shrink(State& s, uint64_t new_size) {
  const uint64_t cs = s.header.cluster_size();
  RETURN_IF_ERROR(ForEachMappedIn(s, AlignUp(new_size, cs), s.header.size,
                                  [&](uint64_t guest) { return DropCluster(s, guest); }));
  // The unmapping is durable (and its refcounts dropped) before any L1 entry goes.
  RETURN_IF_ERROR(s.FlushMetadata(/*flush_refcounts_even_if_lazy=*/false));
  const uint64_t keep = s.geometry.l1_entries_for(new_size);
  uint64_t first_used = s.l1.size(), last_used = 0;
  for (uint64_t i = keep; i < s.l1.size(); ++i) {
    if ((s.l1[i] & kL1OffsetMask) == 0) continue;
    first_used = std::min(first_used, i);
    last_used = i;
  }
  if (first_used < s.l1.size()) {
    std::vector<uint8_t> zeros((last_used + 1 - first_used) * 8, 0);
    RETURN_IF_ERROR(s.DevWrite(s.header.l1_table_offset + first_used * 8, zeros, IoTag::kL1Table,
                               DurableStep::kL1Shrink));
    for (uint64_t i = first_used; i <= last_used; ++i) {
      if ((s.l1[i] & kL1OffsetMask) != 0) s.QueueDecrement(s.l1[i] & kL1OffsetMask);  // R3
      s.l1[i] = 0;
    }
    RETURN_IF_ERROR(s.FlushMetadata(/*flush_refcounts_even_if_lazy=*/false));
  }
  return WriteSize(s, new_size);
}

}  // namespace

Status Image::Resize(uint64_t new_size) {
  State& s = *s_;
  RETURN_IF_ERROR(s.PrepareForWrite());
  RETURN_IF_ERROR(CheckResizable(s, new_size));
  if (new_size == s.header.size) return s.GuestFlush();  // a resize is a flush, as QEMU's syncs
  // A failure half way leaves memory and disk apart: the Image is poisoned, as for writes.
  return s.Guard(new_size > s.header.size ? Grow(s, new_size) : Shrink(s, new_size));
}

}  // namespace crashsim
