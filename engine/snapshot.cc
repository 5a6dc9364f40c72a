// Internal snapshot creation (snapshot.h): Image::CreateSnapshot.
#include "engine/snapshot.h"

#include <fmt/format.h>

#include <algorithm>

#include "engine/check/snapshot_table.h"
#include "engine/coding.h"
#include "engine/image_state.h"

namespace crashsim {

std::vector<uint8_t> EncodeSnapshotEntry(uint64_t l1_offset, uint32_t l1_size,
                                         const std::string& id, const std::string& name,
                                         uint64_t disk_size) {
  // Sized once and filled in place: appending the strings with insert() trips GCC 12's
  // -Warray-bounds at -O3 (a false positive in vector's reallocation path).
  const size_t fixed = kSnapshotHeaderSize + kSnapshotExtraDataKnownSize;
  std::vector<uint8_t> e(AlignUp(fixed + id.size() + name.size(), 8), 0);
  StoreBE64(&e[0], l1_offset);
  StoreBE32(&e[8], l1_size);
  StoreBE16(&e[12], static_cast<uint16_t>(id.size()));
  StoreBE16(&e[14], static_cast<uint16_t>(name.size()));
  // date_sec, date_nsec, vm_clock_nsec, vm_state_size: 0 (deterministic, no VM state)
  StoreBE32(&e[36], kSnapshotExtraDataKnownSize);
  StoreBE64(&e[40], 0);          // vm_state_size_large
  StoreBE64(&e[48], disk_size);  // virtual disk size
  StoreBE64(&e[56], 0);          // icount: 0, as qemu-img 7.2 writes it
  std::copy(id.begin(), id.end(), e.begin() + static_cast<std::ptrdiff_t>(fixed));
  std::copy(name.begin(), name.end(), e.begin() + static_cast<std::ptrdiff_t>(fixed + id.size()));
  return e;
}

Status Image::CreateSnapshot(const std::string& id, const std::string& name) {
  State& s = *s_;
  RETURN_IF_ERROR(s.PrepareForWrite());
  if (s.header.version < 3) {
    return Status::NotSupported(
        "snapshot creation needs a v3 image (compat=1.1): it relies on "
        "the dirty bit to be crash-safe");
  }
  if (s.header.refcount_order == 0) {
    return Status::NotSupported(
        "snapshot creation needs refcount_bits of at least 2: a 1-bit "
        "refcount cannot count a shared cluster");
  }
  if (id.empty() || id.size() > 0xffff || name.size() > 0xffff) {
    return Status::InvalidArgument("snapshot id must be 1..65535 bytes, name at most 65535");
  }
  const uint64_t cs = s.header.cluster_size();
  ASSIGN_OR_RETURN(uint64_t file_size, s.device.Size());
  SnapshotTable old;
  if (s.header.nb_snapshots > 0) {
    SnapshotTableOptions so{
        .version = s.header.version, .cluster_size = cs, .virtual_size = s.header.size};
    ASSIGN_OR_RETURN(old, ReadSnapshotTable(s.device, file_size, s.header.snapshots_offset,
                                            s.header.nb_snapshots, so));
    for (const SnapshotEntry& e : old.entries) {
      if (e.id == id) return Status::InvalidArgument(fmt::format("snapshot id '{}' exists", id));
    }
  }

  if (s.header.nb_snapshots >= kMaxSnapshots) {
    return Status::InvalidArgument(
        fmt::format("the image already has {} snapshots, the limit", s.header.nb_snapshots));
  }
  // From here on the image changes under the dirty bit; a failure half way (refcount overflow,
  // I/O error) poisons the Image so that it never marks the image clean.
  Status st = [&]() -> Status {
    // 1. Everything cached reaches the disk (decrements applied, R3), then the dirty bit.
    RETURN_IF_ERROR(s.FlushMetadata(/*flush_refcounts_even_if_lazy=*/false));
    const bool was_dirty = s.dirty_on_disk;
    if (!was_dirty) {
      uint8_t field[8];
      StoreBE64(field, s.header.incompatible_features | kIncompatDirty);
      RETURN_IF_ERROR(s.DevWrite(kIncompatibleFeaturesOffset, field, IoTag::kHeader,
                                 DurableStep::kDirtyBitSet));
      RETURN_IF_ERROR(s.DevFlush());
      s.header.incompatible_features |= kIncompatDirty;
      s.dirty_on_disk = true;
      ++s.stats.dirty_bit_sets;
    }

    // 2. The L1 copy (no COPIED flags in a snapshot's table).
    const uint64_t l1_bytes = std::max<uint64_t>(s.l1.size() * 8, 8);
    ASSIGN_OR_RETURN(uint64_t l1_copy, s.AllocateClusters(DivRoundUp(l1_bytes, cs)));
    std::vector<uint8_t> l1_raw(AlignUp(l1_bytes, 512), 0);
    for (size_t i = 0; i < s.l1.size(); ++i) StoreBE64(&l1_raw[i * 8], s.l1[i] & ~kOflagCopied);
    RETURN_IF_ERROR(s.DevWrite(l1_copy, l1_raw, IoTag::kL1Table, DurableStep::kL1Write));

    // 3. One more reference to every reachable L2 table and data cluster; COPIED cleared.
    auto add_ref = [&](uint64_t host_offset, uint64_t clusters) -> Status {
      for (uint64_t c = 0; c < clusters; ++c) {
        const uint64_t ci = s.cluster_index(host_offset) + c;
        ASSIGN_OR_RETURN(uint64_t rc, s.GetRefcount(ci));
        RETURN_IF_ERROR(s.SetRefcount(ci, rc + 1));
      }
      return Status::Ok();
    };
    for (size_t i = 0; i < s.l1.size(); ++i) {
      const uint64_t l2_offset = s.l1[i] & kL1OffsetMask;
      if (l2_offset == 0) continue;
      RETURN_IF_ERROR(add_ref(l2_offset, 1));
      ASSIGN_OR_RETURN(std::span<uint8_t> table, s.L2TableForRead(i));
      bool changed = false;
      for (uint64_t j = 0; j < s.geometry.l2_entries(); ++j) {
        L2Entry e = s.GetL2Entry(table, j);
        const ClusterType type = ClassifyL2Entry(e.word, s.geometry.extended_l2);
        if (type == ClusterType::kCompressed) {
          CompressedDescriptor d = DecodeCompressed(e.word, s.header.cluster_bits);
          const uint64_t first = AlignDown(d.host_offset, cs);
          const uint64_t last = AlignDown(d.host_offset + d.compressed_size() - 1, cs);
          RETURN_IF_ERROR(add_ref(first, (last - first) / cs + 1));
        } else if (e.host_offset() != 0) {
          RETURN_IF_ERROR(add_ref(e.host_offset(), 1));
        }
        if (e.copied()) {
          e.word &= ~kOflagCopied;
          s.SetL2Entry(table, j, e);
          changed = true;
        }
      }
      if (changed) s.l2_cache.MarkDirty(l2_offset);
      s.l1[i] &= ~kOflagCopied;
    }
    // Refcounts, the L1 copy and the L2 tables are durable before the table names the copy.
    RETURN_IF_ERROR(s.WriteRefcountBlocks());
    RETURN_IF_ERROR(s.FlushMetadata(/*flush_refcounts_even_if_lazy=*/true));
    std::vector<uint8_t> active(AlignUp(s.l1.size() * 8, 512), 0);
    for (size_t i = 0; i < s.l1.size(); ++i) StoreBE64(&active[i * 8], s.l1[i]);
    if (!s.l1.empty()) {
      RETURN_IF_ERROR(
          s.DevWrite(s.header.l1_table_offset, active, IoTag::kL1Table, DurableStep::kL1Write));
    }

    // 4. The new snapshot table: the old entries verbatim, then the new one.
    std::vector<uint8_t> table(old.table_size);
    if (!table.empty()) RETURN_IF_ERROR(s.device.Read(s.header.snapshots_offset, table));
    table.resize(AlignUp(table.size(), 8), 0);  // table_size ends at the last name, unpadded
    std::vector<uint8_t> entry =
        EncodeSnapshotEntry(l1_copy, static_cast<uint32_t>(s.l1.size()), id, name, s.header.size);
    table.insert(table.end(), entry.begin(), entry.end());
    if (table.size() > kMaxSnapshotTableSize) {
      return Status::InvalidArgument("the snapshot table would pass 64 MiB");
    }
    ASSIGN_OR_RETURN(uint64_t table_offset, s.AllocateClusters(DivRoundUp(table.size(), cs)));
    RETURN_IF_ERROR(s.WriteRefcountBlocks());
    table.resize(AlignUp(table.size(), 512), 0);
    RETURN_IF_ERROR(s.DevWrite(table_offset, table, IoTag::kSnapshotTable, DurableStep::kNone));
    RETURN_IF_ERROR(s.DevFlush());

    // 5. The header switch (nb_snapshots and snapshots_offset: 12 bytes in one sector).
    uint8_t fields[12];
    StoreBE32(fields, s.header.nb_snapshots + 1);
    StoreBE64(fields + 4, table_offset);
    RETURN_IF_ERROR(s.DevWrite(60, fields, IoTag::kHeader, DurableStep::kHeaderUpdate));
    RETURN_IF_ERROR(s.DevFlush());
    const uint64_t old_offset = s.header.snapshots_offset;
    s.header.nb_snapshots += 1;
    s.header.snapshots_offset = table_offset;
    s.snapshot_l1s.push_back({l1_copy, s.l1.size()});
    s.snapshot_table_size = AlignUp(old.table_size, 8) + entry.size();

    // 6. The old table is free once the header no longer names it (R3), then the dirty bit goes.
    if (old.table_size > 0) s.QueueDecrement(old_offset, DivRoundUp(old.table_size, cs));
    RETURN_IF_ERROR(s.FlushMetadata(/*flush_refcounts_even_if_lazy=*/true));
    RETURN_IF_ERROR(s.ApplyPendingDecrements());
    RETURN_IF_ERROR(s.WriteRefcountBlocks());
    RETURN_IF_ERROR(s.DevFlush());
    if (!was_dirty) {
      s.header.incompatible_features &= ~kIncompatDirty;
      RETURN_IF_ERROR(s.WriteHeader(DurableStep::kDirtyBitClear));
      RETURN_IF_ERROR(s.DevFlush());
      s.dirty_on_disk = false;
    }
    return Status::Ok();
  }();
  if (!st.ok()) s.Poison();
  return st;
}

}  // namespace crashsim
