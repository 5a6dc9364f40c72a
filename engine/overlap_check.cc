#include "engine/overlap_check.h"

#include <fmt/format.h>

#include <array>

#include "engine/coding.h"
#include "engine/format/entries.h"

namespace crashsim {
namespace {

struct ClassNames {
  const char* option;
  const char* description;
};
constexpr std::array<ClassNames, kMetadataClassCount> kNames = {{
    {"main-header", "qcow2_header"},
    {"active-l1", "active L1 table"},
    {"active-l2", "active L2 table"},
    {"refcount-table", "refcount table"},
    {"refcount-block", "refcount block"},
    {"snapshot-table", "snapshot table"},
    {"inactive-l1", "inactive L1 table"},
    {"inactive-l2", "inactive L2 table"},
    {"bitmap-directory", "bitmap directory"},
}};

}  // namespace

const char* MetadataClassOptionName(MetadataClass c) {
  return kNames[static_cast<size_t>(c)].option;
}

const char* MetadataClassDescription(MetadataClass c) {
  return kNames[static_cast<size_t>(c)].description;
}

std::optional<MetadataClass> ClassWrittenBy(IoTag tag) {
  switch (tag) {
    case IoTag::kHeader:
      return MetadataClass::kMainHeader;
    case IoTag::kL1Table:
      return MetadataClass::kActiveL1;
    case IoTag::kL2Table:
      return MetadataClass::kActiveL2;
    case IoTag::kRefcountTable:
      return MetadataClass::kRefcountTable;
    case IoTag::kRefcountBlock:
      return MetadataClass::kRefcountBlock;
    case IoTag::kSnapshotTable:
      return MetadataClass::kSnapshotTable;
    case IoTag::kBitmap:
      return MetadataClass::kBitmapDirectory;
    case IoTag::kUnknown:
    case IoTag::kData:
    case IoTag::kCowData:
      return std::nullopt;
  }
  return std::nullopt;
}

Result<std::optional<MetadataClass>> FindMetadataOverlap(const MetadataLayout& layout,
                                                         MetadataClasses checks, uint64_t offset,
                                                         uint64_t size,
                                                         const InactiveL1Reader& read_inactive_l1) {
  using Hit = std::optional<MetadataClass>;
  const uint64_t cs = layout.cluster_size;
  auto wanted = [&](MetadataClass c) { return (checks & ClassBit(c)) != 0; };
  if (wanted(MetadataClass::kMainHeader) && offset < cs) return Hit(MetadataClass::kMainHeader);
  // Structures are compared by cluster: a write into any part of a structure's cluster is one
  // the structure's owner could not have intended.
  const uint64_t begin = AlignDown(offset, cs);
  const uint64_t end = AlignUp(offset + size, cs);
  // Offset 0 in a table entry means "none" (an unallocated L2 table or refcount block).
  auto overlaps = [&](uint64_t at, uint64_t bytes) {
    return at != 0 && bytes > 0 && at < end && begin < at + bytes;
  };
  if (wanted(MetadataClass::kActiveL1) && overlaps(layout.l1_offset, layout.l1_entries * 8)) {
    return Hit(MetadataClass::kActiveL1);
  }
  if (wanted(MetadataClass::kRefcountTable) &&
      overlaps(layout.reftable_offset, layout.reftable_bytes)) {
    return Hit(MetadataClass::kRefcountTable);
  }
  if (wanted(MetadataClass::kSnapshotTable) &&
      overlaps(layout.snapshot_table_offset, layout.snapshot_table_bytes)) {
    return Hit(MetadataClass::kSnapshotTable);
  }
  if (wanted(MetadataClass::kInactiveL1)) {
    for (const SnapshotL1Location& sn : layout.snapshot_l1s) {
      if (overlaps(sn.offset, sn.entries * 8)) return Hit(MetadataClass::kInactiveL1);
    }
  }
  if (wanted(MetadataClass::kActiveL2)) {
    for (uint64_t e : layout.l1) {
      if (overlaps(e & kL1OffsetMask, cs)) return Hit(MetadataClass::kActiveL2);
    }
  }
  if (wanted(MetadataClass::kRefcountBlock)) {
    for (uint64_t e : layout.reftable) {
      if (overlaps(e & kReftableOffsetMask, cs)) return Hit(MetadataClass::kRefcountBlock);
    }
  }
  if (wanted(MetadataClass::kInactiveL2)) {
    // The snapshots' L1 tables are not kept in memory: this class costs reads (QEMU's too).
    for (const SnapshotL1Location& sn : layout.snapshot_l1s) {
      ASSIGN_OR_RETURN(std::vector<uint64_t> table, read_inactive_l1(sn));
      for (uint64_t e : table) {
        if (overlaps(e & kL1OffsetMask, cs)) return Hit(MetadataClass::kInactiveL2);
      }
    }
  }
  if (wanted(MetadataClass::kBitmapDirectory) &&
      overlaps(layout.bitmap_directory_offset, layout.bitmap_directory_bytes)) {
    return Hit(MetadataClass::kBitmapDirectory);
  }
  return Hit();
}

Result<bool> ApplyOverlapCheckOption(std::string_view key, std::string_view value,
                                     MetadataClasses& checks) {
  constexpr std::string_view kPrefix = "overlap-check";
  if (!key.starts_with(kPrefix)) return false;
  std::string_view rest = key.substr(kPrefix.size());
  if (rest.empty()) {
    if (value == "none") {
      checks = 0;
    } else if (value == "constant") {
      checks = kOverlapCheckConstant;
    } else if (value == "cached") {
      checks = kOverlapCheckCached;
    } else if (value == "all") {
      checks = kOverlapCheckAll;
    } else {
      return Status::InvalidArgument(
          fmt::format("overlap-check={}: expected none, constant, cached or all", value));
    }
    return true;
  }
  if (!rest.starts_with(".")) return false;
  rest.remove_prefix(1);
  for (int i = 0; i < kMetadataClassCount; ++i) {
    const auto c = static_cast<MetadataClass>(i);
    if (rest != MetadataClassOptionName(c)) continue;
    if (value == "on") {
      checks |= ClassBit(c);
    } else if (value == "off") {
      checks &= static_cast<MetadataClasses>(~ClassBit(c));
    } else {
      return Status::InvalidArgument(fmt::format("{}={}: expected on or off", key, value));
    }
    return true;
  }
  return Status::InvalidArgument(
      fmt::format("{}: unknown overlap-check class (expected main-header, active-l1, active-l2, "
                  "refcount-table, refcount-block, snapshot-table, inactive-l1, inactive-l2 or "
                  "bitmap-directory)",
                  key));
}

}  // namespace crashsim
