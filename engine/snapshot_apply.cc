// Image::ApplySnapshot: what `qemu-img snapshot -a` does (QEMU's qcow2_snapshot_goto), under the
// dirty bit as creation and deletion are (engine/snapshot.h). A snapshot taken at another disk
// size first resizes the disk to it, as QEMU does. Then, each step durable before the next:
// the snapshot's L2 tables and the clusters they map gain a reference; the active L1 table is
// overwritten with the snapshot's (COPIED clear, padded with zeros); the old active tree loses
// its references; COPIED is set again where a cluster is referenced once; the dirty bit goes.
// A crash anywhere leaves the image dirty, and its repair leaves the old content or the
// snapshot's, never a mix of references that point at freed clusters.
#include <fmt/format.h>

#include <algorithm>

#include "engine/coding.h"
#include "engine/snapshot_steps.h"

namespace crashsim {
namespace {

using namespace snapshot_steps;  // NOLINT: the shared snapshot steps

// Step 1: one more reference to every L2 table the snapshot's L1 names and every cluster they
// map, durable before the active L1 names them.
Status AddL1Tree(State& s, const std::vector<uint64_t>& l1) {
  const uint64_t cs = s.header.cluster_size();
  for (uint64_t l1_entry : l1) {
    const uint64_t l2_offset = l1_entry & kL1OffsetMask;
    if (l2_offset == 0) continue;
    RETURN_IF_ERROR(AddReference(s, l2_offset, 1));
    ASSIGN_OR_RETURN(std::span<uint8_t> table, s.l2_cache.Get(l2_offset));
    for (uint64_t j = 0; j < s.geometry.l2_entries(); ++j) {
      const L2Entry e = s.GetL2Entry(table, j);
      if (ClassifyL2Entry(e.word, s.geometry.extended_l2) == ClusterType::kCompressed) {
        const CompressedDescriptor d = DecodeCompressed(e.word, s.header.cluster_bits);
        const uint64_t first = AlignDown(d.host_offset, cs);
        const uint64_t last = AlignDown(d.host_offset + d.compressed_size() - 1, cs);
        RETURN_IF_ERROR(AddReference(s, first, (last - first) / cs + 1));
      } else if (e.host_offset() != 0) {
        RETURN_IF_ERROR(AddReference(s, e.host_offset(), 1));
      }
    }
  }
  return s.FlushMetadata(/*flush_refcounts_even_if_lazy=*/true);
}

// Steps 1 to 5.
Status Revert(State& s, const SnapshotEntry& entry) {
  ASSIGN_OR_RETURN(const bool was_dirty, FlushAndMarkDirty(s));
  ASSIGN_OR_RETURN(std::vector<uint64_t> snapshot_l1,
                   ReadTable(s.device, entry.l1_table_offset, entry.l1_size, "snapshot L1 table"));
  RETURN_IF_ERROR(AddL1Tree(s, snapshot_l1));
  // Step 2: the active L1 becomes the snapshot's, in place; its old entries are kept in memory
  // for step 3.
  std::vector<uint64_t> old_l1 = s.l1;
  for (size_t i = 0; i < s.l1.size(); ++i) {
    s.l1[i] = i < snapshot_l1.size() ? snapshot_l1[i] & ~kOflagCopied : 0;
  }
  std::vector<uint8_t> raw(AlignUp(s.l1.size() * 8, 512), 0);
  for (size_t i = 0; i < s.l1.size(); ++i) StoreBE64(&raw[i * 8], s.l1[i]);
  RETURN_IF_ERROR(
      s.DevWrite(s.header.l1_table_offset, raw, IoTag::kL1Table, DurableStep::kL1Write));
  RETURN_IF_ERROR(s.DevFlush());
  // Step 3: nothing on disk names the old tree through the active L1 any more.
  RETURN_IF_ERROR(ReleaseL1Tree(s, old_l1));
  RETURN_IF_ERROR(RestoreCopiedFlags(s));               // step 4
  return FreeOldTableAndMarkClean(s, 0, 0, was_dirty);  // step 5: no table to free
}

}  // namespace

Status Image::ApplySnapshot(const std::string& id_or_name) {
  State& s = *s_;
  RETURN_IF_ERROR(s.PrepareForWrite());
  RETURN_IF_ERROR(RequireDirtyBit(s, "reverting to a snapshot"));
  ASSIGN_OR_RETURN(const SnapshotTable table, ReadTable(s));
  const SnapshotEntry* found = FindSnapshot(table, id_or_name);
  if (found == nullptr) return Status::NotFound("snapshot not found");
  const SnapshotEntry entry = *found;
  if (entry.disk_size != s.header.size) RETURN_IF_ERROR(Resize(entry.disk_size));
  if (entry.l1_size > s.l1.size()) {
    return Status::NotSupported(fmt::format(
        "the snapshot's L1 table has {} entries, more than the active one's {}: not supported",
        entry.l1_size, s.l1.size()));
  }
  Status st = Revert(s, entry);
  if (!st.ok()) s.Poison();
  return st;
}

}  // namespace crashsim
