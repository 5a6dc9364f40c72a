#include "engine/check/bitmap_walker.h"

#include <fmt/format.h>

#include <algorithm>
#include <vector>

#include "engine/check/device_io.h"
#include "engine/coding.h"

namespace crashsim::check {
namespace {

constexpr uint32_t kMaxBitmapTableEntries = 0x8000000;  // BME_MAX_TABLE_SIZE
constexpr uint32_t kBitmapReservedFlags = 0xfffffffc;
constexpr uint64_t kBitmapEntryReserved = 0xff000000000001feull;
constexpr uint64_t kBitmapEntryOffsetMask = 0x00fffffffffffe00ull;
constexpr uint64_t kBitmapEntryAllOnes = 1;
constexpr uint64_t kTableChunkEntries = 8192;

struct BitmapEntry {
  uint64_t table_offset = 0;
  uint32_t table_size = 0;
};

bool ValidTableEntry(uint64_t entry, uint64_t cluster_size) {
  if (entry & kBitmapEntryReserved) return false;
  uint64_t offset = entry & kBitmapEntryOffsetMask;
  return offset == 0 || (!(entry & kBitmapEntryAllOnes) && IsAligned(offset, cluster_size));
}

Result<std::vector<BitmapEntry>> LoadDirectory(Context& ctx, const BitmapsExtension& ext) {
  const uint64_t cs = ctx.cluster_size();
  if (ext.bitmap_directory_size == 0 || ext.bitmap_directory_offset >= ctx.file_size) {
    return Status::Corruption("bitmap directory is empty or past the end of the file");
  }
  std::vector<uint8_t> dir(ext.bitmap_directory_size);
  RETURN_IF_ERROR(ReadZeroFilled(ctx.device, ctx.file_size, ext.bitmap_directory_offset, dir));
  std::vector<BitmapEntry> entries;
  size_t pos = 0;
  while (pos < dir.size()) {
    if (dir.size() - pos < 24) return Status::Corruption("bitmap directory entry truncated");
    const uint8_t* p = &dir[pos];
    BitmapEntry e{LoadBE64(p), LoadBE32(p + 8)};
    uint32_t flags = LoadBE32(p + 12);
    uint8_t type = p[16];
    uint8_t granularity_bits = p[17];
    uint16_t name_size = LoadBE16(p + 18);
    uint32_t extra_size = LoadBE32(p + 20);
    uint64_t entry_size = AlignUp(24 + uint64_t{extra_size} + name_size, 8);
    if (entry_size > dir.size() - pos)
      return Status::Corruption("bitmap directory entry too large");
    if (e.table_size == 0 || e.table_size > kMaxBitmapTableEntries || e.table_offset == 0 ||
        !IsAligned(e.table_offset, cs) || granularity_bits < 9 || granularity_bits > 31 ||
        (flags & kBitmapReservedFlags) || name_size > 1023 || type != 1) {
      return Status::Corruption(
          fmt::format("bitmap directory entry {} is invalid", entries.size()));
    }
    entries.push_back(e);
    pos += entry_size;
  }
  if (entries.size() != ext.nb_bitmaps) {
    return Status::Corruption(fmt::format("bitmap directory has {} entries, the header says {}",
                                          entries.size(), ext.nb_bitmaps));
  }
  return entries;
}

// Calls fn(entry) for each entry of the bitmap table, a chunk at a time.
template <typename Fn>
Status ForEachTableEntry(Context& ctx, const BitmapEntry& bm, Fn fn) {
  std::vector<uint8_t> chunk;
  for (uint64_t done = 0; done < bm.table_size; done += chunk.size() / 8) {
    chunk.resize(std::min<uint64_t>(kTableChunkEntries, bm.table_size - done) * 8);
    RETURN_IF_ERROR(ReadZeroFilled(ctx.device, ctx.file_size, bm.table_offset + done * 8, chunk));
    for (size_t i = 0; i < chunk.size() / 8; ++i) {
      if (!fn(LoadBE64(&chunk[i * 8]))) return Status::Ok();
    }
  }
  return Status::Ok();
}

}  // namespace

Status CountBitmapReferences(Context& ctx, ReferenceCounter& counter) {
  if (!ctx.header.bitmaps || !(ctx.header.autoclear_features & kAutoclearBitmaps)) {
    return Status::Ok();
  }
  const BitmapsExtension& ext = *ctx.header.bitmaps;
  counter.Add(ctx, ext.bitmap_directory_offset, ext.bitmap_directory_size, Owner::kBitmapDirectory);
  Result<std::vector<BitmapEntry>> dir = LoadDirectory(ctx, ext);
  if (!dir.ok()) {
    ctx.Corruption(FindingKind::kBitmap, ext.bitmap_directory_offset, "bitmap directory",
                   "ERROR " + dir.status().message());
    return dir.status();
  }
  const uint64_t cs = ctx.cluster_size();
  for (size_t b = 0; b < dir->size(); ++b) {
    const BitmapEntry& bm = (*dir)[b];
    counter.Add(ctx, bm.table_offset, uint64_t{bm.table_size} * 8, Owner::kBitmapTable);
    // QEMU loads and validates the whole table before counting any of its clusters.
    bool valid = true;
    RETURN_IF_ERROR(ForEachTableEntry(ctx, bm, [&](uint64_t e) {
      valid = ValidTableEntry(e, cs);
      return valid;
    }));
    if (!valid) {
      ctx.Corruption(FindingKind::kBitmap, bm.table_offset, fmt::format("bitmap {} table", b),
                     fmt::format("ERROR bitmap table of bitmap {} at {:#x} has an invalid entry", b,
                                 bm.table_offset));
      break;
    }
    RETURN_IF_ERROR(ForEachTableEntry(ctx, bm, [&](uint64_t e) {
      if (uint64_t offset = e & kBitmapEntryOffsetMask) {
        counter.Add(ctx, offset, cs, Owner::kBitmapData);
      }
      return true;
    }));
  }
  return Status::Ok();
}

}  // namespace crashsim::check
