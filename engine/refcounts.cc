// Refcounts and cluster allocation: reading and updating refcount blocks through the cache,
// first-fit allocation, new refcount blocks (R4), refcount-table growth (R4), and the queue of
// reference drops that waits for the L2 write-back (R3). See engine/protocol.h.
#include <fmt/format.h>

#include <algorithm>

#include "engine/coding.h"
#include "engine/image_state.h"
#include "engine/invariant.h"

namespace crashsim {

Result<std::span<uint8_t>> Image::State::RefcountBlockAt(uint64_t rt_index) {
  if (rt_index >= reftable.size()) return std::span<uint8_t>();
  uint64_t entry = reftable[rt_index];
  uint64_t block_offset = entry & kReftableOffsetMask;
  if (block_offset == 0) return std::span<uint8_t>();
  if (!IsAligned(block_offset, header.cluster_size()) || (entry & kReftableReservedMask)) {
    return Status::Corruption(
        fmt::format("refcount table entry {} ({:#x}) is not a valid "
                    "refcount block offset",
                    rt_index, entry));
  }
  return refblock_cache.Get(block_offset);
}

Result<uint64_t> Image::State::GetRefcount(uint64_t ci) {
  const uint64_t epb = geometry.refcount_block_entries();
  ASSIGN_OR_RETURN(std::span<uint8_t> block, RefcountBlockAt(ci / epb));
  if (block.empty()) return uint64_t{0};
  return GetRefcountEntry(block, ci % epb, header.refcount_order);
}

Status Image::State::SetRefcount(uint64_t ci, uint64_t value) {
  if (value > geometry.refcount_max()) {
    return Status::NotSupported(
        fmt::format("refcount of cluster {} would overflow {} bits; raise refcount_bits", ci,
                    geometry.refcount_bits()));
  }
  bool allocated = false;
  RETURN_IF_ERROR(EnsureRefblock(ci, &allocated));
  const uint64_t epb = geometry.refcount_block_entries();
  uint64_t block_offset = reftable[ci / epb] & kReftableOffsetMask;
  ASSIGN_OR_RETURN(std::span<uint8_t> block, refblock_cache.Get(block_offset));
  SetRefcountEntry(block, ci % epb, header.refcount_order, value);
  refblock_cache.MarkDirty(block_offset);
  refcounts_unwritten = true;
  if (value == 0 && ci < free_cluster_index) free_cluster_index = std::max<uint64_t>(ci, 1);
  return Status::Ok();
}

Status Image::State::WriteRefcountBlocks() {
  RETURN_IF_ERROR(refblock_cache.WriteBackAll());
  refcounts_unwritten = false;
  return Status::Ok();
}

Result<uint64_t> Image::State::FindFreeClusters(uint64_t count) {
  // Cluster 0 is the header; never hand it out even if its refcount was lost.
  uint64_t ci = std::max<uint64_t>(free_cluster_index, 1);
  const uint64_t limit = kMaxHostOffset >> header.cluster_bits;  // clusters below 2^56
  const uint64_t epb = geometry.refcount_block_entries();
  uint64_t run = 0;
  // A block at a time: a search from the start of a full image (the first allocation after an
  // open) reads each block once, not each entry through the cache.
  for (;;) {
    ASSIGN_OR_RETURN(std::span<uint8_t> block, RefcountBlockAt(ci / epb));
    const uint64_t block_end = (ci / epb + 1) * epb;
    for (; ci < block_end; ++ci) {
      if (ci + 1 >= limit) {
        return Status::NoSpace("no free host cluster below the 2^56 offset limit");
      }
      const bool free =
          block.empty() || GetRefcountEntry(block, ci % epb, header.refcount_order) == 0;
      run = free ? run + 1 : 0;
      if (run == count) return ci + 1 - count;
    }
  }
}

Status Image::State::EnsureRefblock(uint64_t ci, bool* allocated) {
  *allocated = false;
  const uint64_t epb = geometry.refcount_block_entries();
  const uint64_t cs = header.cluster_size();
  uint64_t rt_index = ci / epb;
  if (rt_index >= reftable.size()) {
    RETURN_IF_ERROR(GrowReftable(rt_index + 1));
    *allocated = true;
  }
  if (reftable[rt_index] != 0) return Status::Ok();

  ASSIGN_OR_RETURN(uint64_t home, FindFreeClusters(1));
  std::vector<uint8_t> block(cs, 0);
  if (home / epb == rt_index) {
    // The block describes itself.
    SetRefcountEntry(block, home % epb, header.refcount_order, 1);
  } else {
    bool nested = false;
    RETURN_IF_ERROR(EnsureRefblock(home, &nested));
    if (nested) {
      // The nested block may have taken `home`; start over with a fresh search.
      return EnsureRefblock(ci, allocated);
    }
    RETURN_IF_ERROR(SetRefcount(home, 1));
  }
  uint64_t home_offset = home << header.cluster_bits;
  RETURN_IF_ERROR(DevWrite(home_offset, block, IoTag::kRefcountBlock, DurableStep::kRefblockAlloc));
  // R4: the block and the refcount describing it are durable before the table names it.
  RETURN_IF_ERROR(WriteRefcountBlocks());
  RETURN_IF_ERROR(DevFlush());
  uint8_t entry[8];
  StoreBE64(entry, home_offset);
  RETURN_IF_ERROR(DevWrite(header.refcount_table_offset + rt_index * 8, entry,
                           IoTag::kRefcountTable, DurableStep::kReftableEntry));
  RETURN_IF_ERROR(DevFlush());
  reftable[rt_index] = home_offset;
  reftable_used = std::max(reftable_used, rt_index + 1);
  refblock_cache.Insert(home_offset, std::move(block), /*dirty=*/false);
  *allocated = true;
  return Status::Ok();
}

Status Image::State::GrowReftable(uint64_t min_entries) {
  const uint64_t cs = header.cluster_size();
  const uint64_t epb = geometry.refcount_block_entries();
  const uint64_t per_cluster = cs / 8;
  const uint64_t old_entries = reftable.size();
  // The new table and the blocks covering it go right after what the old table covers: every
  // cluster there has refcount 0, and none of it needs an existing block.
  const uint64_t start = old_entries * epb;
  uint64_t new_entries =
      AlignUp(std::max(min_entries, old_entries + old_entries / 2 + 1), per_cluster);
  uint64_t table_clusters = 0, block_count = 0;
  for (;;) {
    table_clusters = new_entries / per_cluster;
    for (;;) {
      uint64_t needed = DivRoundUp(start + table_clusters + block_count, epb) - start / epb;
      if (needed == block_count) break;
      block_count = needed;
    }
    uint64_t covered = new_entries * epb;
    if (start + table_clusters + block_count <= covered) break;
    new_entries += per_cluster;
  }
  if (new_entries * 8 > kMaxReftableBytes) {
    return Status::NoSpace(
        fmt::format("Reference count table too large: {} entries needed "
                    "(limit {} bytes)",
                    new_entries, kMaxReftableBytes));
  }
  const uint64_t table_offset = start << header.cluster_bits;
  const uint64_t blocks_start = start + table_clusters;
  if ((blocks_start + block_count) << header.cluster_bits >= kMaxHostOffset) {
    return Status::NoSpace("refcount table growth would pass the 2^56 offset limit");
  }
  std::vector<uint64_t> table = reftable;
  table.resize(new_entries, 0);
  std::vector<std::pair<uint64_t, std::vector<uint8_t>>> blocks;
  for (uint64_t j = 0; j < block_count; ++j) {
    uint64_t rt_index = start / epb + j;
    std::vector<uint8_t> block(cs, 0);
    for (uint64_t ci = std::max(start, rt_index * epb);
         ci < std::min(blocks_start + block_count, (rt_index + 1) * epb); ++ci) {
      SetRefcountEntry(block, ci % epb, header.refcount_order, 1);
    }
    uint64_t block_offset = (blocks_start + j) << header.cluster_bits;
    table[rt_index] = block_offset;
    blocks.emplace_back(block_offset, std::move(block));
  }
  for (auto& [offset, block] : blocks) {
    RETURN_IF_ERROR(DevWrite(offset, block, IoTag::kRefcountBlock, DurableStep::kRefblockAlloc));
  }
  std::vector<uint8_t> raw(table_clusters * cs, 0);
  for (uint64_t i = 0; i < new_entries; ++i) StoreBE64(&raw[i * 8], table[i]);
  RETURN_IF_ERROR(DevWrite(table_offset, raw, IoTag::kRefcountTable, DurableStep::kReftableWrite));
  RETURN_IF_ERROR(WriteRefcountBlocks());
  RETURN_IF_ERROR(DevFlush());
  // R4: switch the header to the new table only once the table and its blocks are durable.
  uint8_t field[12];
  StoreBE64(field, table_offset);
  StoreBE32(field + 8, static_cast<uint32_t>(table_clusters));
  RETURN_IF_ERROR(
      DevWrite(kReftableOffsetOffset, field, IoTag::kHeader, DurableStep::kReftableSwitch));
  RETURN_IF_ERROR(DevFlush());
  const uint64_t old_offset = header.refcount_table_offset;
  const uint64_t old_clusters = header.refcount_table_clusters;
  header.refcount_table_offset = table_offset;
  header.refcount_table_clusters = static_cast<uint32_t>(table_clusters);
  SetReftable(std::move(table));
  for (auto& [offset, block] : blocks) refblock_cache.Insert(offset, std::move(block), false);
  // The header no longer names the old table, durably: its clusters can go at once.
  for (uint64_t i = 0; i < old_clusters; ++i) {
    uint64_t ci = cluster_index(old_offset) + i;
    ASSIGN_OR_RETURN(uint64_t rc, GetRefcount(ci));
    if (rc == 0) {
      return Status::Corruption(fmt::format("old refcount table cluster {} has refcount 0", ci));
    }
    RETURN_IF_ERROR(SetRefcount(ci, rc - 1));
  }
  return Status::Ok();
}

Result<uint64_t> Image::State::AllocateClusters(uint64_t count) {
  INVARIANT(count > 0);
  if (lazy) RETURN_IF_ERROR(MarkDirty());  // protocol L1
  for (;;) {
    ASSIGN_OR_RETURN(uint64_t start, FindFreeClusters(count));
    // Every cluster of the run needs a refcount block before it can be claimed; creating one
    // takes a free cluster, possibly inside this run, so search again after any creation.
    bool any_created = false;
    const uint64_t epb = geometry.refcount_block_entries();
    for (uint64_t ci = start; ci < start + count; ci = (ci / epb + 1) * epb) {
      bool created = false;
      RETURN_IF_ERROR(EnsureRefblock(ci, &created));
      any_created |= created;
    }
    if (any_created) continue;
    for (uint64_t ci = start; ci < start + count; ++ci) {
      RETURN_IF_ERROR(SetRefcount(ci, 1));
    }
    if (start <= free_cluster_index + 1) free_cluster_index = start + count;
    stats.clusters_allocated += count;
    return start << header.cluster_bits;
  }
}

void Image::State::QueueDecrement(uint64_t host_offset, uint64_t cluster_count) {
  for (uint64_t i = 0; i < cluster_count; ++i) ++pending_decrements[cluster_index(host_offset) + i];
}

Status Image::State::ApplyPendingDecrements() {
  std::map<uint64_t, uint64_t> pending;
  pending.swap(pending_decrements);
  for (auto [ci, count] : pending) {
    ASSIGN_OR_RETURN(uint64_t rc, GetRefcount(ci));
    if (rc < count) {
      return Status::Corruption(
          fmt::format("refcount of cluster {} is {}, less than the {} references being dropped", ci,
                      rc, count));
    }
    RETURN_IF_ERROR(SetRefcount(ci, rc - count));
    if (rc == count) {
      l2_cache.Drop(ci << header.cluster_bits);
      // A freed cluster is no place for the next compressed cluster: it may be reused.
      if (compressed_free != 0 && cluster_index(compressed_free) == ci) compressed_free = 0;
    }
  }
  return Status::Ok();
}

void Image::State::ReleaseEntry(const L2Entry& entry) {
  ClusterType type = ClassifyL2Entry(entry.word, geometry.extended_l2);
  if (type == ClusterType::kCompressed) {
    CompressedDescriptor d = DecodeCompressed(entry.word, header.cluster_bits);
    uint64_t first = AlignDown(d.host_offset, header.cluster_size());
    uint64_t last = AlignDown(d.host_offset + d.compressed_size() - 1, header.cluster_size());
    QueueDecrement(first, cluster_index(last) - cluster_index(first) + 1);
  } else if (entry.host_offset() != 0) {
    QueueDecrement(entry.host_offset());
  }
}

Status Image::State::PreallocateMetadata() {
  const uint64_t cs = header.cluster_size();
  const uint64_t total = DivRoundUp(header.size, cs);
  const uint64_t per_table = geometry.l2_entries();
  uint64_t end = 0;
  for (uint64_t l1_index = 0; l1_index < l1.size(); ++l1_index) {
    uint64_t first = l1_index * per_table;
    uint64_t n = std::min(per_table, total - first);
    ASSIGN_OR_RETURN(uint64_t table_offset, L2TableForWrite(l1_index));
    ASSIGN_OR_RETURN(uint64_t data, AllocateClusters(n));
    ASSIGN_OR_RETURN(std::span<uint8_t> table, l2_cache.Get(table_offset));
    for (uint64_t i = 0; i < n; ++i) {
      L2Entry e;
      e.word = (data + i * cs) | kOflagCopied;
      // With a backing file the subclusters stay unallocated so reads fall through to it.
      if (geometry.extended_l2 && !backing && header.backing_file.empty()) e.bitmap = 0xffffffffull;
      SetL2Entry(table, i, e);
    }
    l2_cache.MarkDirty(table_offset);
    end = std::max(end, data + n * cs);
  }
  ASSIGN_OR_RETURN(uint64_t size, device.Size());
  if (end > size) RETURN_IF_ERROR(device.Resize(end));
  return Status::Ok();
}

}  // namespace crashsim
