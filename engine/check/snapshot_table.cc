#include "engine/check/snapshot_table.h"

#include <fmt/format.h>

#include <algorithm>
#include <limits>

#include "engine/check/device_io.h"
#include "engine/coding.h"
#include "engine/format/header.h"

namespace crashsim {
namespace {

Status EntryError(uint32_t index, uint64_t offset, const std::string& what) {
  return Status::Corruption(
      fmt::format("snapshot table entry {} at {:#x}: {}", index, offset, what));
}

// Reads `size` bytes of the entry at *cursor into a string and advances the cursor.
Result<std::vector<uint8_t>> ReadBytes(BlockDevice& device, uint64_t file_size, uint64_t& cursor,
                                       uint64_t size) {
  std::vector<uint8_t> bytes(size);
  RETURN_IF_ERROR(check::ReadZeroFilled(device, file_size, cursor, bytes));
  cursor += size;
  return bytes;
}

}  // namespace

Result<SnapshotTable> ReadSnapshotTable(BlockDevice& device, uint64_t file_size,
                                        uint64_t snapshots_offset, uint32_t nb_snapshots,
                                        const SnapshotTableOptions& options) {
  // QEMU's qcow2_validate_table with 40-byte entries.
  if (nb_snapshots > kMaxSnapshots) {
    return Status::Corruption(fmt::format("Snapshot table too large: {} snapshots (limit {})",
                                          nb_snapshots, kMaxSnapshots));
  }
  constexpr uint64_t kInt64Max = std::numeric_limits<int64_t>::max();
  if (kInt64Max - uint64_t{nb_snapshots} * kSnapshotHeaderSize < snapshots_offset ||
      !IsAligned(snapshots_offset, options.cluster_size)) {
    return Status::Corruption(
        fmt::format("Snapshot table offset invalid: {:#x}", snapshots_offset));
  }
  SnapshotTable table;
  uint64_t cursor = snapshots_offset;
  uint64_t table_length = 0;
  for (uint32_t i = 0; i < nb_snapshots; ++i) {
    const uint64_t entry_start = cursor;
    table_length = AlignUp(table_length, 8);
    cursor = AlignUp(cursor, 8);
    SnapshotEntry e;
    e.entry_offset = cursor;
    ASSIGN_OR_RETURN(std::vector<uint8_t> h,
                     ReadBytes(device, file_size, cursor, kSnapshotHeaderSize));
    e.l1_table_offset = LoadBE64(&h[0]);
    e.l1_size = LoadBE32(&h[8]);
    uint16_t id_size = LoadBE16(&h[12]);
    uint16_t name_size = LoadBE16(&h[14]);
    e.date_sec = LoadBE32(&h[16]);
    e.date_nsec = LoadBE32(&h[20]);
    e.vm_clock_nsec = LoadBE64(&h[24]);
    e.vm_state_size = LoadBE32(&h[32]);
    e.extra_data_size = LoadBE32(&h[36]);

    bool truncate_extra = false;
    if (e.extra_data_size > kMaxSnapshotExtraData) {
      if (!options.repair) {
        return EntryError(i, e.entry_offset,
                          fmt::format("Too much extra metadata in snapshot table entry {} "
                                      "({} > {} bytes)",
                                      i, e.extra_data_size, kMaxSnapshotExtraData));
      }
      table.extra_data_truncated.push_back(i);
      truncate_extra = true;
    }
    uint64_t known = std::min<uint64_t>(kSnapshotExtraDataKnownSize, e.extra_data_size);
    ASSIGN_OR_RETURN(std::vector<uint8_t> extra, ReadBytes(device, file_size, cursor, known));
    extra.resize(kSnapshotExtraDataKnownSize, 0);
    if (e.extra_data_size >= 8) e.vm_state_size = LoadBE64(&extra[0]);
    e.disk_size = e.extra_data_size >= 16 ? LoadBE64(&extra[8]) : options.virtual_size;
    if (e.extra_data_size >= 24) e.icount = LoadBE64(&extra[16]);
    if (e.extra_data_size > kSnapshotExtraDataKnownSize) {
      // The stored size decides where the id starts even when the kept copy is truncated.
      uint64_t extra_end = cursor + e.extra_data_size - kSnapshotExtraDataKnownSize;
      if (truncate_extra) e.extra_data_size = kMaxSnapshotExtraData;
      ASSIGN_OR_RETURN(
          e.unknown_extra_data,
          ReadBytes(device, file_size, cursor, e.extra_data_size - kSnapshotExtraDataKnownSize));
      cursor = extra_end;
    }
    ASSIGN_OR_RETURN(std::vector<uint8_t> id, ReadBytes(device, file_size, cursor, id_size));
    ASSIGN_OR_RETURN(std::vector<uint8_t> name, ReadBytes(device, file_size, cursor, name_size));
    e.id.assign(id.begin(), id.end());
    e.name.assign(name.begin(), name.end());

    table_length += kSnapshotHeaderSize + e.extra_data_size + id_size + name_size;
    if (table_length > kMaxSnapshotTableSize ||
        cursor - snapshots_offset > static_cast<uint64_t>(std::numeric_limits<int>::max())) {
      if (!options.repair) {
        return EntryError(
            i, e.entry_offset,
            fmt::format("Snapshot table is too big ({} overhanging snapshots)", nb_snapshots - i));
      }
      table.overhanging_dropped = nb_snapshots - i;
      cursor = entry_start;
      break;
    }
    e.entry_end = cursor;
    table.entries.push_back(std::move(e));
  }
  table.table_size = cursor - snapshots_offset;
  return table;
}

Status ValidateSnapshotL1(const SnapshotEntry& entry, uint32_t index, uint64_t cluster_size,
                          uint64_t file_size) {
  if (!IsAligned(entry.l1_table_offset, cluster_size)) {
    return EntryError(
        index, entry.entry_offset,
        fmt::format("L1 table offset {:#x} is not cluster aligned", entry.l1_table_offset));
  }
  if (entry.l1_size > kMaxL1Entries) {
    return EntryError(index, entry.entry_offset,
                      fmt::format("Snapshot L1 table too large: {} entries (limit {})",
                                  entry.l1_size, kMaxL1Entries));
  }
  if (entry.l1_size > 0 && (entry.l1_table_offset == 0 || entry.l1_table_offset >= file_size ||
                            uint64_t{entry.l1_size} * 8 > file_size - entry.l1_table_offset)) {
    return EntryError(index, entry.entry_offset,
                      fmt::format("L1 table at {:#x} ({} entries) lies outside the file ({} bytes)",
                                  entry.l1_table_offset, entry.l1_size, file_size));
  }
  return Status::Ok();
}

const SnapshotEntry* FindSnapshot(const SnapshotTable& table, const std::string& which) {
  for (const SnapshotEntry& e : table.entries) {
    if (e.id == which) return &e;
  }
  for (const SnapshotEntry& e : table.entries) {
    if (e.name == which) return &e;
  }
  return nullptr;
}

}  // namespace crashsim
