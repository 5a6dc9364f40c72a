// QEMU's metadata overlap check (qcow2 open option `overlap-check`): before the engine writes to
// the image file, the target range is compared with where the image's metadata lives, and a
// write that would land on a structure it is not meant for is refused and the image marked
// corrupt. A guest write whose L2 entry points into the refcount table, or an allocator handed
// a cluster whose refcount a bad repair dropped to 0, then stops at the first write instead of
// destroying the structure.
//
// The classes, their option names and the templates are QEMU's: `overlap-check=none|constant|
// cached|all` picks a template (default `cached`: every check that needs no reads), and
// `overlap-check.CLASS=on|off` adjusts one class.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string_view>
#include <vector>

#include "engine/block_device.h"
#include "engine/status.h"

namespace crashsim {

enum class MetadataClass : uint8_t {
  kMainHeader,
  kActiveL1,
  kActiveL2,
  kRefcountTable,
  kRefcountBlock,
  kSnapshotTable,
  kInactiveL1,
  kInactiveL2,
  kBitmapDirectory,
};
inline constexpr int kMetadataClassCount = 9;

// A set of classes, one bit per MetadataClass.
using MetadataClasses = uint16_t;
inline constexpr MetadataClasses ClassBit(MetadataClass c) {
  return static_cast<MetadataClasses>(1u << static_cast<unsigned>(c));
}
// Checks that take constant time, those that need no reads, and all of them.
inline constexpr MetadataClasses kOverlapCheckConstant =
    ClassBit(MetadataClass::kMainHeader) | ClassBit(MetadataClass::kActiveL1) |
    ClassBit(MetadataClass::kRefcountTable) | ClassBit(MetadataClass::kSnapshotTable) |
    ClassBit(MetadataClass::kBitmapDirectory);
inline constexpr MetadataClasses kOverlapCheckCached =
    kOverlapCheckConstant | ClassBit(MetadataClass::kActiveL2) |
    ClassBit(MetadataClass::kRefcountBlock) | ClassBit(MetadataClass::kInactiveL1);
inline constexpr MetadataClasses kOverlapCheckAll =
    kOverlapCheckCached | ClassBit(MetadataClass::kInactiveL2);

// The option suffix ("active-l1") and the name QEMU's error message uses ("active L1 table").
const char* MetadataClassOptionName(MetadataClass c);
const char* MetadataClassDescription(MetadataClass c);

// The class a write tagged `tag` is meant for (it may land on that class), if any.
std::optional<MetadataClass> ClassWrittenBy(IoTag tag);

// Where an image's metadata lies, as an open image knows it (nothing here reads the disk).
struct SnapshotL1Location {
  uint64_t offset = 0;
  uint64_t entries = 0;
};
struct MetadataLayout {
  uint64_t cluster_size = 0;
  uint64_t l1_offset = 0;
  uint64_t l1_entries = 0;
  std::span<const uint64_t> l1;  // active L1 entries (host byte order)
  uint64_t reftable_offset = 0;
  uint64_t reftable_bytes = 0;
  std::span<const uint64_t> reftable;  // refcount table entries (host byte order)
  uint64_t snapshot_table_offset = 0;
  uint64_t snapshot_table_bytes = 0;  // 0: no snapshots
  std::span<const SnapshotL1Location> snapshot_l1s;
  uint64_t bitmap_directory_offset = 0;
  uint64_t bitmap_directory_bytes = 0;  // 0: no bitmaps extension
};
// Reads a snapshot's L1 table: only the inactive-l2 class needs one.
using InactiveL1Reader =
    std::function<Result<std::vector<uint64_t>>(const SnapshotL1Location& table)>;

// The first class in `checks` with a structure in the clusters [offset, offset+size) touches
// (the header: within the first cluster), in QEMU's order.
Result<std::optional<MetadataClass>> FindMetadataOverlap(const MetadataLayout& layout,
                                                         MetadataClasses checks, uint64_t offset,
                                                         uint64_t size,
                                                         const InactiveL1Reader& read_inactive_l1);

// Applies one open option to `checks`: `overlap-check=TEMPLATE` or `overlap-check.CLASS=on|off`.
// Returns false when `key` is not an overlap-check option; an error names a bad value.
Result<bool> ApplyOverlapCheckOption(std::string_view key, std::string_view value,
                                     MetadataClasses& checks);

}  // namespace crashsim
