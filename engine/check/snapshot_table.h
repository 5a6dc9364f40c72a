// The internal snapshot table (qcow2 spec "Snapshots"; qcow2.md §8): nb_snapshots variable-length
// entries starting at snapshots_offset, each padded to 8 bytes. Parsed here with QEMU's limits
// (65,536 snapshots, 1 KiB of extra data per entry, 64 MiB in all) so a garbage table costs at
// most those bounds in memory and reads. The checker uses it, and the engine may use it to
// validate snapshots at open. Nothing here writes; the bytes are untrusted, and every error names
// the entry index and its host offset.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "engine/block_device.h"

namespace crashsim {

inline constexpr uint64_t kSnapshotHeaderSize = 40;              // fixed part of an entry
inline constexpr uint32_t kMaxSnapshotExtraData = 1024;          // QCOW_MAX_SNAPSHOT_EXTRA_DATA
inline constexpr uint64_t kMaxSnapshotTableSize = 1024 * 65536;  // QCOW_MAX_SNAPSHOTS_SIZE
inline constexpr uint32_t kSnapshotExtraDataKnownSize =
    24;                                                  // vm_state_size_large, disk_size, icount
inline constexpr uint32_t kSnapshotExtraDataMinV3 = 16;  // v3 needs the first two fields

struct SnapshotEntry {
  uint64_t entry_offset = 0;  // host offset of the entry's fixed part
  uint64_t entry_end = 0;     // host offset just past the entry's name (before padding)
  uint64_t l1_table_offset = 0;
  uint32_t l1_size = 0;
  std::string id;
  std::string name;
  uint32_t date_sec = 0;
  uint32_t date_nsec = 0;
  uint64_t vm_clock_nsec = 0;
  uint64_t vm_state_size = 0;    // the 64-bit extra field when present, else the 32-bit one
  uint32_t extra_data_size = 0;  // as stored, or 1024 when a repair truncated it
  uint64_t disk_size = 0;        // the image's virtual size when the entry lacks the field
  uint64_t icount = ~uint64_t{0};
  std::vector<uint8_t> unknown_extra_data;  // extra data past the known 24 bytes, kept verbatim
};

struct SnapshotTable {
  std::vector<SnapshotEntry> entries;
  // Bytes from snapshots_offset to the end of the last kept entry: what the table occupies and
  // what the checker counts as referenced (QEMU's snapshots_size).
  uint64_t table_size = 0;
  // Only when repairing: snapshots cut off because the table passed 64 MiB, and the indexes of
  // entries whose extra data passed 1 KiB and was truncated.
  uint32_t overhanging_dropped = 0;
  std::vector<uint32_t> extra_data_truncated;
};

struct SnapshotTableOptions {
  uint32_t version = 3;
  uint64_t cluster_size = 65536;
  uint64_t virtual_size = 0;  // disk_size of entries that do not store it
  // qemu-img check -r all: truncate oversized extra data and drop overhanging entries instead of
  // failing, counting each in the result.
  bool repair = false;
};

// Reads the table named by the header fields. Fails with Status::Corruption on QEMU's limits
// ("Snapshot table too large", "Snapshot table offset invalid", "Too much extra metadata in
// snapshot table entry N", "Snapshot table is too big") and with the device's error on I/O
// failure. Bytes past `file_size` read as zeros, as through QEMU's block layer.
Result<SnapshotTable> ReadSnapshotTable(BlockDevice& device, uint64_t file_size,
                                        uint64_t snapshots_offset, uint32_t nb_snapshots,
                                        const SnapshotTableOptions& options);

// The checks an entry's L1 table must pass before anything reads it: cluster aligned, at most
// 32 MiB (QCOW_MAX_L1_SIZE), and not past the end of the file.
Status ValidateSnapshotL1(const SnapshotEntry& entry, uint32_t index, uint64_t cluster_size,
                          uint64_t file_size);

// The entry `which` names: by id first, then by name (QEMU's find_snapshot_by_id_or_name);
// null if none.
const SnapshotEntry* FindSnapshot(const SnapshotTable& table, const std::string& which);

}  // namespace crashsim
