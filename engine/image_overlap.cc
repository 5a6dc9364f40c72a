// The metadata overlap check (engine/overlap_check.h) on an open image.
#include <fmt/format.h>

#include "engine/coding.h"
#include "engine/format/entries.h"
#include "engine/image_state.h"
#include "engine/invariant.h"

namespace crashsim {

MetadataLayout Image::State::metadata_layout() const {
  MetadataLayout m;
  m.cluster_size = header.cluster_size();
  m.l1_offset = header.l1_table_offset;
  m.l1_entries = header.l1_size;
  m.l1 = l1;
  m.reftable_offset = header.refcount_table_offset;
  m.reftable_bytes = uint64_t{header.refcount_table_clusters} * m.cluster_size;
  INVARIANT(reftable_used <= reftable.size());
  m.reftable = std::span<const uint64_t>(reftable).first(reftable_used);
  if (header.nb_snapshots > 0) {
    m.snapshot_table_offset = header.snapshots_offset;
    m.snapshot_table_bytes = snapshot_table_size;
  }
  m.snapshot_l1s = snapshot_l1s;
  if (header.bitmaps) {
    m.bitmap_directory_offset = header.bitmaps->bitmap_directory_offset;
    m.bitmap_directory_bytes = header.bitmaps->bitmap_directory_size;
  }
  return m;
}

Status Image::State::PreWriteOverlapCheck(uint64_t offset, uint64_t size, IoTag tag) {
  MetadataClasses checks = options.overlap_check;
  if (auto own = ClassWrittenBy(tag)) checks &= static_cast<MetadataClasses>(~ClassBit(*own));
  if (checks == 0 || size == 0) return Status::Ok();
  ASSIGN_OR_RETURN(std::optional<MetadataClass> hit,
                   FindMetadataOverlap(metadata_layout(), checks, offset, size,
                                       [this](const SnapshotL1Location& table) {
                                         return ReadTable(device, table.offset, table.entries,
                                                          "inactive L1 table");
                                       }));
  if (!hit) return Status::Ok();
  // QEMU marks the image corrupt and stops using it. The flag goes straight to the device: the
  // header write must not itself be checked (or refused) against a layout already known bad.
  poisoned = true;
  std::string marked = "the image is marked corrupt";
  if (header.version >= 3 && !header.corrupt()) {
    uint8_t field[8];
    StoreBE64(field, header.incompatible_features | kIncompatCorrupt);
    Status st = device.Write(kIncompatibleFeaturesOffset, field,
                             {.fua = false, .tag = IoTag::kHeader, .step = 0});
    if (st.ok()) st = device.Flush();
    if (st.ok()) {
      header.incompatible_features |= kIncompatCorrupt;
    } else {
      marked = "marking the image corrupt failed too: " + st.message();
    }
  } else if (header.version < 3) {
    marked = "a v2 image has no corrupt flag; this open refuses further writes";
  }
  return Status::Corruption(fmt::format(
      "Preventing invalid write on metadata (overlaps with {}): a {} write of {} bytes at host "
      "offset {:#x}; {}",
      MetadataClassDescription(*hit), IoTagName(tag), size, offset, marked));
}

}  // namespace crashsim
