// Internal snapshot creation (snapshot.h): Image::CreateSnapshot.
#include "engine/snapshot.h"

#include <fmt/format.h>

#include <algorithm>

#include "engine/check/snapshot_table.h"
#include "engine/coding.h"
#include "engine/image_state.h"
#include "engine/snapshot_steps.h"

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

namespace snapshot_steps {

Status RequireDirtyBit(const State& s, const char* what) {
  if (s.header.version >= 3) return Status::Ok();
  return Status::NotSupported(fmt::format(
      "{} needs a v3 image (compat=1.1): it relies on the dirty bit to be crash-safe", what));
}

// The image's snapshot table (empty without snapshots).
Result<SnapshotTable> ReadTable(State& s) {
  if (s.header.nb_snapshots == 0) return SnapshotTable{};
  ASSIGN_OR_RETURN(uint64_t file_size, s.device.Size());
  SnapshotTableOptions so{.version = s.header.version,
                          .cluster_size = s.header.cluster_size(),
                          .virtual_size = s.header.size};
  return ReadSnapshotTable(s.device, file_size, s.header.snapshots_offset, s.header.nb_snapshots,
                           so);
}

// Why the image cannot take snapshot `id` now, or its current snapshot table.
Result<SnapshotTable> TableForNewSnapshot(State& s, const std::string& id,
                                          const std::string& name) {
  RETURN_IF_ERROR(RequireDirtyBit(s, "snapshot creation"));
  if (s.header.refcount_order == 0) {
    return Status::NotSupported(
        "snapshot creation needs refcount_bits of at least 2: a 1-bit "
        "refcount cannot count a shared cluster");
  }
  if (id.empty() || id.size() > 0xffff || name.size() > 0xffff) {
    return Status::InvalidArgument("snapshot id must be 1..65535 bytes, name at most 65535");
  }
  ASSIGN_OR_RETURN(SnapshotTable old, ReadTable(s));
  for (const SnapshotEntry& e : old.entries) {
    if (e.id == id) return Status::InvalidArgument(fmt::format("snapshot id '{}' exists", id));
  }
  if (s.header.nb_snapshots >= kMaxSnapshots) {
    return Status::InvalidArgument(
        fmt::format("the image already has {} snapshots, the limit", s.header.nb_snapshots));
  }
  return old;
}

// Step 1: everything cached reaches the disk (decrements applied, R3), then the dirty bit.
// Returns whether the image was dirty already (then the snapshot leaves it so).
Result<bool> FlushAndMarkDirty(State& s) {
  RETURN_IF_ERROR(s.FlushMetadata(/*flush_refcounts_even_if_lazy=*/false));
  const bool was_dirty = s.dirty_on_disk;
  if (!was_dirty) {
    uint8_t field[8];
    StoreBE64(field, s.header.incompatible_features | kIncompatDirty);
    RETURN_IF_ERROR(
        s.DevWrite(kIncompatibleFeaturesOffset, field, IoTag::kHeader, DurableStep::kDirtyBitSet));
    RETURN_IF_ERROR(s.DevFlush());
    s.header.incompatible_features |= kIncompatDirty;
    s.dirty_on_disk = true;
    ++s.stats.dirty_bit_sets;
  }
  return was_dirty;
}

// Step 2: the snapshot's copy of the L1 table (no COPIED flags in a snapshot's table); returns
// its offset.
Result<uint64_t> WriteL1Copy(State& s) {
  const uint64_t l1_bytes = std::max<uint64_t>(s.l1.size() * 8, 8);
  ASSIGN_OR_RETURN(uint64_t l1_copy,
                   s.AllocateClusters(DivRoundUp(l1_bytes, s.header.cluster_size())));
  std::vector<uint8_t> l1_raw(AlignUp(l1_bytes, 512), 0);
  for (size_t i = 0; i < s.l1.size(); ++i) StoreBE64(&l1_raw[i * 8], s.l1[i] & ~kOflagCopied);
  RETURN_IF_ERROR(s.DevWrite(l1_copy, l1_raw, IoTag::kL1Table, DurableStep::kL1Write));
  return l1_copy;
}

Status AddReference(State& s, uint64_t host_offset, uint64_t clusters) {
  for (uint64_t c = 0; c < clusters; ++c) {
    const uint64_t ci = s.cluster_index(host_offset) + c;
    ASSIGN_OR_RETURN(uint64_t rc, s.GetRefcount(ci));
    RETURN_IF_ERROR(s.SetRefcount(ci, rc + 1));
  }
  return Status::Ok();
}

// Step 3: one more reference to every reachable L2 table and data cluster, COPIED cleared in the
// active tables; refcounts, the L1 copy and the L2 tables are durable before the active L1
// table is rewritten (and before the snapshot table names the copy).
Status ShareActiveClusters(State& s) {
  const uint64_t cs = s.header.cluster_size();
  for (size_t i = 0; i < s.l1.size(); ++i) {
    const uint64_t l2_offset = s.l1[i] & kL1OffsetMask;
    if (l2_offset == 0) continue;
    RETURN_IF_ERROR(AddReference(s, l2_offset, 1));
    ASSIGN_OR_RETURN(std::span<uint8_t> table, s.L2TableForRead(i));
    bool changed = false;
    for (uint64_t j = 0; j < s.geometry.l2_entries(); ++j) {
      L2Entry e = s.GetL2Entry(table, j);
      const ClusterType type = ClassifyL2Entry(e.word, s.geometry.extended_l2);
      if (type == ClusterType::kCompressed) {
        CompressedDescriptor d = DecodeCompressed(e.word, s.header.cluster_bits);
        const uint64_t first = AlignDown(d.host_offset, cs);
        const uint64_t last = AlignDown(d.host_offset + d.compressed_size() - 1, cs);
        RETURN_IF_ERROR(AddReference(s, first, (last - first) / cs + 1));
      } else if (e.host_offset() != 0) {
        RETURN_IF_ERROR(AddReference(s, e.host_offset(), 1));
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
  RETURN_IF_ERROR(s.WriteRefcountBlocks());
  RETURN_IF_ERROR(s.FlushMetadata(/*flush_refcounts_even_if_lazy=*/true));
  if (s.l1.empty()) return Status::Ok();
  std::vector<uint8_t> active(AlignUp(s.l1.size() * 8, 512), 0);
  for (size_t i = 0; i < s.l1.size(); ++i) StoreBE64(&active[i * 8], s.l1[i]);
  return s.DevWrite(s.header.l1_table_offset, active, IoTag::kL1Table, DurableStep::kL1Write);
}

// The old table's bytes, from snapshots_offset to the end of its last entry.
Result<std::vector<uint8_t>> ReadTableBytes(State& s, const SnapshotTable& old) {
  std::vector<uint8_t> table(old.table_size);
  if (!table.empty()) RETURN_IF_ERROR(s.device.Read(s.header.snapshots_offset, table));
  return table;
}

// Step 4: a new snapshot table (`table`: whole entries, each padded to 8 bytes) written to fresh
// clusters and flushed; returns its offset.
Result<uint64_t> WriteSnapshotTable(State& s, std::vector<uint8_t> table) {
  if (table.size() > kMaxSnapshotTableSize) {
    return Status::InvalidArgument("the snapshot table would pass 64 MiB");
  }
  ASSIGN_OR_RETURN(uint64_t table_offset,
                   s.AllocateClusters(DivRoundUp(table.size(), s.header.cluster_size())));
  RETURN_IF_ERROR(s.WriteRefcountBlocks());
  table.resize(AlignUp(table.size(), 512), 0);
  RETURN_IF_ERROR(
      s.DevWrite(table_offset, table, IoTag::kSnapshotTable, DurableStep::kSnapshotTable));
  RETURN_IF_ERROR(s.DevFlush());
  return table_offset;
}

// Step 5: the header switch (nb_snapshots and snapshots_offset: 12 bytes in one sector).
Status SwitchHeaderToTable(State& s, uint32_t count, uint64_t table_offset) {
  uint8_t fields[12];
  StoreBE32(fields, count);
  StoreBE64(fields + 4, table_offset);
  RETURN_IF_ERROR(s.DevWrite(60, fields, IoTag::kHeader, DurableStep::kHeaderUpdate));
  RETURN_IF_ERROR(s.DevFlush());
  s.header.nb_snapshots = count;
  s.header.snapshots_offset = table_offset;
  return Status::Ok();
}

// Step 6: the old table is freed once the header no longer names it (R3), then the dirty bit
// goes, unless the image was dirty before the snapshot.
Status FreeOldTableAndMarkClean(State& s, uint64_t old_offset, uint64_t old_size, bool was_dirty) {
  if (old_size > 0) s.QueueDecrement(old_offset, DivRoundUp(old_size, s.header.cluster_size()));
  RETURN_IF_ERROR(s.FlushMetadata(/*flush_refcounts_even_if_lazy=*/true));
  RETURN_IF_ERROR(s.ApplyPendingDecrements());
  RETURN_IF_ERROR(s.WriteRefcountBlocks());
  RETURN_IF_ERROR(s.DevFlush());
  if (was_dirty) return Status::Ok();
  s.header.incompatible_features &= ~kIncompatDirty;
  RETURN_IF_ERROR(s.WriteHeader(DurableStep::kDirtyBitClear));
  RETURN_IF_ERROR(s.DevFlush());
  s.dirty_on_disk = false;
  return Status::Ok();
}

// Steps 1 to 6, each durable before the next starts.
Status TakeSnapshot(State& s, const SnapshotTable& old, const std::string& id,
                    const std::string& name) {
  ASSIGN_OR_RETURN(const bool was_dirty, FlushAndMarkDirty(s));
  ASSIGN_OR_RETURN(const uint64_t l1_copy, WriteL1Copy(s));
  RETURN_IF_ERROR(ShareActiveClusters(s));
  const std::vector<uint8_t> entry =
      EncodeSnapshotEntry(l1_copy, static_cast<uint32_t>(s.l1.size()), id, name, s.header.size);
  ASSIGN_OR_RETURN(std::vector<uint8_t> table, ReadTableBytes(s, old));
  table.resize(AlignUp(table.size(), 8), 0);  // table_size ends at the last name, unpadded
  table.insert(table.end(), entry.begin(), entry.end());
  ASSIGN_OR_RETURN(const uint64_t table_offset, WriteSnapshotTable(s, std::move(table)));
  const uint64_t old_offset = s.header.snapshots_offset;
  RETURN_IF_ERROR(SwitchHeaderToTable(s, s.header.nb_snapshots + 1, table_offset));
  s.snapshot_l1s.push_back({l1_copy, s.l1.size()});
  s.snapshot_table_size = AlignUp(old.table_size, 8) + entry.size();
  return FreeOldTableAndMarkClean(s, old_offset, old.table_size, was_dirty);
}

Status ReleaseL1Tree(State& s, const std::vector<uint64_t>& l1) {
  for (uint64_t l1_entry : l1) {
    const uint64_t l2_offset = l1_entry & kL1OffsetMask;
    if (l2_offset == 0) continue;
    ASSIGN_OR_RETURN(std::span<uint8_t> table, s.l2_cache.Get(l2_offset));
    for (uint64_t j = 0; j < s.geometry.l2_entries(); ++j) s.ReleaseEntry(s.GetL2Entry(table, j));
    s.QueueDecrement(l2_offset);
  }
  return s.ApplyPendingDecrements();
}

// Deletion, step 3: the deleted snapshot's tree and its L1 table lose their references. The
// header no longer names the snapshot, durably, so the drops apply at once.
Status ReleaseSnapshotTree(State& s, const SnapshotEntry& entry) {
  ASSIGN_OR_RETURN(std::vector<uint64_t> l1,
                   ReadTable(s.device, entry.l1_table_offset, entry.l1_size, "snapshot L1 table"));
  if (entry.l1_size > 0) {
    s.QueueDecrement(entry.l1_table_offset,
                     DivRoundUp(uint64_t{entry.l1_size} * 8, s.header.cluster_size()));
  }
  return ReleaseL1Tree(s, l1);
}

// Deletion, step 4: COPIED again on the active L1 and L2 entries whose cluster is referenced
// once now (QEMU's update_snapshot_refcount with addend 0), written with the refcounts.
Status RestoreCopiedFlags(State& s) {
  bool l1_changed = false;
  for (size_t i = 0; i < s.l1.size(); ++i) {
    const uint64_t l2_offset = s.l1[i] & kL1OffsetMask;
    if (l2_offset == 0) continue;
    ASSIGN_OR_RETURN(uint64_t table_rc, s.GetRefcount(s.cluster_index(l2_offset)));
    if (table_rc == 1 && !(s.l1[i] & kOflagCopied)) {
      s.l1[i] |= kOflagCopied;
      l1_changed = true;
    }
    ASSIGN_OR_RETURN(std::span<uint8_t> table, s.L2TableForRead(i));
    bool changed = false;
    for (uint64_t j = 0; j < s.geometry.l2_entries(); ++j) {
      L2Entry e = s.GetL2Entry(table, j);
      const ClusterType type = ClassifyL2Entry(e.word, s.geometry.extended_l2);
      if (type == ClusterType::kCompressed || e.host_offset() == 0 || e.copied()) continue;
      ASSIGN_OR_RETURN(uint64_t rc, s.GetRefcount(s.cluster_index(e.host_offset())));
      if (rc != 1) continue;
      e.word |= kOflagCopied;
      s.SetL2Entry(table, j, e);
      changed = true;
    }
    if (changed) s.l2_cache.MarkDirty(l2_offset);
  }
  RETURN_IF_ERROR(s.FlushMetadata(/*flush_refcounts_even_if_lazy=*/true));
  if (!l1_changed) return Status::Ok();
  std::vector<uint8_t> active(AlignUp(s.l1.size() * 8, 512), 0);
  for (size_t i = 0; i < s.l1.size(); ++i) StoreBE64(&active[i * 8], s.l1[i]);
  return s.DevWrite(s.header.l1_table_offset, active, IoTag::kL1Table, DurableStep::kL1Write);
}

// Steps 1 to 5 of a deletion, each durable before the next starts: the dirty bit; a table
// without the entry (none if it was the last), named by the header; the snapshot's references
// dropped; COPIED restored; the old table freed and the dirty bit cleared.
Status RemoveSnapshot(State& s, const SnapshotTable& old, size_t index) {
  ASSIGN_OR_RETURN(const bool was_dirty, FlushAndMarkDirty(s));
  ASSIGN_OR_RETURN(const std::vector<uint8_t> old_bytes, ReadTableBytes(s, old));
  std::vector<uint8_t> table;
  for (size_t i = 0; i < old.entries.size(); ++i) {
    if (i == index) continue;
    const SnapshotEntry& e = old.entries[i];
    const uint64_t begin = e.entry_offset - s.header.snapshots_offset;
    const uint64_t end =
        std::min<uint64_t>(AlignUp(e.entry_end - s.header.snapshots_offset, 8), old_bytes.size());
    table.resize(AlignUp(table.size(), 8), 0);
    table.insert(table.end(), old_bytes.begin() + static_cast<std::ptrdiff_t>(begin),
                 old_bytes.begin() + static_cast<std::ptrdiff_t>(end));
  }
  uint64_t table_offset = 0;
  const uint64_t table_size = table.size();
  if (!table.empty()) {
    ASSIGN_OR_RETURN(table_offset, WriteSnapshotTable(s, std::move(table)));
  }
  const uint64_t old_offset = s.header.snapshots_offset;
  RETURN_IF_ERROR(
      SwitchHeaderToTable(s, static_cast<uint32_t>(old.entries.size() - 1), table_offset));
  const SnapshotEntry& gone = old.entries[index];
  auto location =
      std::find_if(s.snapshot_l1s.begin(), s.snapshot_l1s.end(),
                   [&](const SnapshotL1Location& l) { return l.offset == gone.l1_table_offset; });
  if (location != s.snapshot_l1s.end()) s.snapshot_l1s.erase(location);
  s.snapshot_table_size = table_size;
  RETURN_IF_ERROR(ReleaseSnapshotTree(s, gone));
  RETURN_IF_ERROR(RestoreCopiedFlags(s));
  return FreeOldTableAndMarkClean(s, old_offset, old.table_size, was_dirty);
}

}  // namespace snapshot_steps

using namespace snapshot_steps;  // NOLINT: this file's own steps

Status Image::CreateSnapshot(const std::string& id, const std::string& name) {
  State& s = *s_;
  RETURN_IF_ERROR(s.PrepareForWrite());
  ASSIGN_OR_RETURN(const SnapshotTable old, TableForNewSnapshot(s, id, name));
  // From here on the image changes under the dirty bit; a failure half way (refcount overflow,
  // I/O error) poisons the Image so that it never marks the image clean.
  Status st = TakeSnapshot(s, old, id, name);
  if (!st.ok()) s.Poison();
  return st;
}

Status Image::DeleteSnapshot(const std::string& name) {
  State& s = *s_;
  RETURN_IF_ERROR(s.PrepareForWrite());
  RETURN_IF_ERROR(RequireDirtyBit(s, "snapshot deletion"));
  ASSIGN_OR_RETURN(const SnapshotTable table, ReadTable(s));
  auto it = std::find_if(table.entries.begin(), table.entries.end(),
                         [&](const SnapshotEntry& e) { return e.name == name; });
  if (it == table.entries.end()) return Status::NotFound("snapshot not found");
  Status st = RemoveSnapshot(s, table, static_cast<size_t>(it - table.entries.begin()));
  if (!st.ok()) s.Poison();
  return st;
}

Result<SnapshotTable> Image::Snapshots() {
  if (s_->closed) return Status::InvalidArgument("image is closed");
  return ReadTable(*s_);
}

}  // namespace crashsim
