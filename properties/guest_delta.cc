#include "properties/guest_delta.h"

#include <algorithm>
#include <cstring>

#include "engine/check/snapshot_table.h"
#include "engine/coding.h"
#include "engine/read_buffer.h"

namespace crashsim {
namespace {

// The header the engine's read-only open decodes (engine/image_open.cc reads the same bytes).
Result<QcowHeader> DecodeImageHeader(const simdisk::Medium& image) {
  ASSIGN_OR_RETURN(std::vector<uint8_t> bytes,
                   ReadHeaderArea(image.size(), [&](uint64_t offset, std::span<uint8_t> out) {
                     image.ReadAt(offset, out);
                     return Status::Ok();
                   }));
  return DecodeHeader(bytes, image.size());
}

// Header fields guest reads depend on (the dirty and corrupt bits, snapshots and refcount
// structures do not change what a read returns).
bool SameReadShape(const QcowHeader& a, const QcowHeader& b) {
  const uint64_t ignored = kIncompatDirty | kIncompatCorrupt;
  return a.version == b.version && a.cluster_bits == b.cluster_bits && a.size == b.size &&
         a.crypt_method == b.crypt_method && a.l1_size == b.l1_size &&
         a.l1_table_offset == b.l1_table_offset &&
         (a.incompatible_features & ~ignored) == (b.incompatible_features & ~ignored) &&
         a.compression_type == b.compression_type && a.backing_file == b.backing_file &&
         a.backing_format == b.backing_format && a.data_file == b.data_file &&
         a.crypto.has_value() == b.crypto.has_value();
}

// Whether two blocks (a multiple of 32 bytes) are equal: inline, as table comparisons call it
// for every 64 or 128 bytes of a table.
bool SameBlock(const uint8_t* a, const uint8_t* b, size_t size) {
  uint64_t diff = 0;
  for (size_t i = 0; i < size; i += 32) {
    uint64_t x[4], y[4];
    std::memcpy(x, a + i, sizeof x);
    std::memcpy(y, b + i, sizeof y);
    diff |= (x[0] ^ y[0]) | (x[1] ^ y[1]) | (x[2] ^ y[2]) | (x[3] ^ y[3]);
  }
  return diff == 0;
}

std::vector<uint64_t> ReadEntries(const simdisk::Medium& image, uint64_t offset, uint64_t count) {
  std::vector<uint8_t> raw(count * 8);
  image.ReadAt(offset, raw);
  std::vector<uint64_t> entries(count);
  for (uint64_t i = 0; i < count; ++i) entries[i] = LoadBE64(&raw[i * 8]);
  return entries;
}

}  // namespace

bool Intersects(const ByteRanges& ranges, uint64_t begin, uint64_t end) {
  auto it = std::upper_bound(ranges.begin(), ranges.end(), std::make_pair(begin, UINT64_MAX));
  if (it != ranges.begin() && std::prev(it)->second > begin) return true;
  return it != ranges.end() && it->first < end;
}

void ClipRanges(ByteRanges& ranges, uint64_t end) {
  while (!ranges.empty() && ranges.back().first >= end) ranges.pop_back();
  if (!ranges.empty()) ranges.back().second = std::min(ranges.back().second, end);
}

void NormaliseRanges(ByteRanges& ranges) {
  std::sort(ranges.begin(), ranges.end());
  size_t out = 0;
  for (const auto& r : ranges) {
    if (r.first >= r.second) continue;
    if (out > 0 && r.first <= ranges[out - 1].second) {
      ranges[out - 1].second = std::max(ranges[out - 1].second, r.second);
    } else {
      ranges[out++] = r;
    }
  }
  ranges.resize(out);
}

Result<std::shared_ptr<const MappingSnapshot>> MappingSnapshot::Of(
    std::shared_ptr<const simdisk::Medium> image) {
  auto snapshot = std::shared_ptr<MappingSnapshot>(new MappingSnapshot());
  MappingSnapshot& s = *snapshot;
  s.image_ = std::move(image);
  ASSIGN_OR_RETURN(s.header_, DecodeImageHeader(*s.image_));
  s.geometry_ = {.cluster_bits = s.header_.cluster_bits,
                 .refcount_order = s.header_.refcount_order,
                 .extended_l2 = s.header_.extended_l2()};
  const uint64_t size = s.image_->size();
  const uint64_t cs = s.geometry_.cluster_size();
  const uint64_t l1_bytes = uint64_t{s.header_.l1_size} * 8;
  if (s.header_.l1_table_offset > size || l1_bytes > size - s.header_.l1_table_offset) {
    return Status::Corruption("the active L1 table lies past the end of the file");
  }
  s.l1_ = ReadEntries(*s.image_, s.header_.l1_table_offset, s.header_.l1_size);
  const uint64_t entry_size = s.geometry_.l2_entry_size();
  std::vector<uint8_t> table(cs);
  for (uint64_t i = 0; i < s.l1_.size(); ++i) {
    const uint64_t l2 = s.l1_[i] & kL1OffsetMask;
    if (l2 == 0) continue;
    if (!IsAligned(l2, cs) || l2 + cs > size) {
      return Status::Corruption("an L2 table is unaligned or past the end of the file");
    }
    s.image_->ReadAt(l2, table);
    ForEachNonZeroEntry(table, entry_size, [&](size_t j) {
      const uint64_t entry = LoadBE64(&table[j * entry_size]);
      if (entry == 0) return;
      const uint64_t guest_cluster = i * s.geometry_.l2_entries() + j;
      if (ClassifyL2Entry(entry, s.geometry_.extended_l2) == ClusterType::kCompressed) {
        const CompressedDescriptor d = DecodeCompressed(entry, s.header_.cluster_bits);
        s.data_.push_back({d.host_offset, d.host_offset + d.compressed_size(), guest_cluster});
      } else if (const uint64_t host = entry & kL2OffsetMask; host != 0) {
        s.data_.push_back({host, host + cs, guest_cluster});
      }
    });
  }
  const uint64_t cs_bytes = s.geometry_.cluster_size();
  s.open_ranges_ = {
      {0, cs_bytes},
      {s.header_.l1_table_offset, s.header_.l1_table_offset + l1_bytes},
      {s.header_.refcount_table_offset,
       s.header_.refcount_table_offset + uint64_t{s.header_.refcount_table_clusters} * cs_bytes}};
  if (s.header_.nb_snapshots > 0) {
    simdisk::Medium device = *s.image_;
    SnapshotTableOptions so{
        .version = s.header_.version, .cluster_size = cs_bytes, .virtual_size = s.header_.size};
    ASSIGN_OR_RETURN(
        SnapshotTable snapshots,
        ReadSnapshotTable(device, size, s.header_.snapshots_offset, s.header_.nb_snapshots, so));
    s.open_ranges_.push_back(
        {s.header_.snapshots_offset, s.header_.snapshots_offset + snapshots.table_size});
  }
  NormaliseRanges(s.open_ranges_);
  std::sort(s.data_.begin(), s.data_.end(),
            [](const DataExtent& a, const DataExtent& b) { return a.host_begin < b.host_begin; });
  for (const DataExtent& e : s.data_) {
    s.longest_extent_ = std::max(s.longest_extent_, e.host_end - e.host_begin);
  }
  return std::shared_ptr<const MappingSnapshot>(std::move(snapshot));
}

std::optional<ByteRanges> MappingSnapshot::AffectedGuestRanges(const simdisk::Medium& x,
                                                               ByteRanges host_delta) const {
  const uint64_t y_size = image_->size();
  const uint64_t x_size = x.size();
  // Past the end of a file, data reads as zeros: a size change changes that range.
  if (x_size != y_size) host_delta.push_back({std::min(x_size, y_size), std::max(x_size, y_size)});
  NormaliseRanges(host_delta);
  if (host_delta.empty()) return ByteRanges{};

  Result<QcowHeader> x_header = Intersects(host_delta, 0, header_.cluster_size())
                                    ? DecodeImageHeader(x)
                                    : Result<QcowHeader>(header_);
  if (!x_header.ok() || !SameReadShape(header_, *x_header)) return std::nullopt;

  const uint64_t cs = geometry_.cluster_size();
  const uint64_t l1_bytes = uint64_t{header_.l1_size} * 8;
  std::vector<uint64_t> x_l1 = l1_;
  if (Intersects(host_delta, header_.l1_table_offset, header_.l1_table_offset + l1_bytes)) {
    if (header_.l1_table_offset + l1_bytes > x_size) return std::nullopt;
    x_l1 = ReadEntries(x, header_.l1_table_offset, header_.l1_size);
  }

  std::vector<uint64_t> clusters;  // guest cluster indices that may read differently
  const uint64_t entry_size = geometry_.l2_entry_size();
  const uint64_t entries = geometry_.l2_entries();
  ReadBuffer x_table, y_table;  // sized when a table is compared
  auto read_table = [&](const simdisk::Medium& image, uint64_t offset, ReadBuffer& out) {
    out.resize(cs);
    if (offset == 0) {
      std::fill(out.begin(), out.end(), uint8_t{0});
    } else {
      image.ReadAt(offset, out);
    }
  };
  auto diff_entries = [&](uint64_t l1_index, uint64_t first, uint64_t last) {
    // Runs of identical entries (most of a table) are passed over a block at a time.
    constexpr uint64_t kBlockEntries = 8;
    for (uint64_t j = first; j < last; ++j) {
      if (j % kBlockEntries == 0 && j + kBlockEntries <= last &&
          SameBlock(&x_table[j * entry_size], &y_table[j * entry_size],
                    kBlockEntries * entry_size)) {
        j += kBlockEntries - 1;
        continue;
      }
      const uint8_t* a = &x_table[j * entry_size];
      const uint8_t* b = &y_table[j * entry_size];
      const bool same = (LoadBE64(a) & ~kOflagCopied) == (LoadBE64(b) & ~kOflagCopied) &&
                        (entry_size == 8 || LoadBE64(a + 8) == LoadBE64(b + 8));
      if (!same) clusters.push_back(l1_index * entries + j);
    }
  };
  for (uint64_t i = 0; i < l1_.size(); ++i) {
    const uint64_t yo = l1_[i] & kL1OffsetMask;
    const uint64_t xo = x_l1[i] & kL1OffsetMask;
    if (xo == 0 && yo == 0) continue;
    if (xo != yo) {
      // The L1 entry now names another table: compare the two tables entry by entry.
      if (xo != 0 && (!IsAligned(xo, cs) || xo + cs > x_size)) return std::nullopt;
      read_table(x, xo, x_table);
      read_table(*image_, yo, y_table);
      diff_entries(i, 0, entries);
      continue;
    }
    if (!Intersects(host_delta, yo, yo + cs)) continue;
    if (yo + cs > x_size) return std::nullopt;  // the table itself is cut off in x
    for (const auto& [a, b] : host_delta) {
      if (b <= yo || a >= yo + cs) continue;
      const uint64_t first = (std::max(a, yo) - yo) / entry_size;
      const uint64_t last = DivRoundUp(std::min(b, yo + cs) - yo, entry_size);
      const uint64_t at = first * entry_size;
      const size_t n = static_cast<size_t>((last - first) * entry_size);
      x_table.resize(cs);
      y_table.resize(cs);
      x.ReadAt(yo + at, std::span(x_table).subspan(at, n));
      image_->ReadAt(yo + at, std::span(y_table).subspan(at, n));
      diff_entries(i, first, last);
    }
  }
  // Data: guest clusters whose bytes live in a changed host range.
  for (const auto& [a, b] : host_delta) {
    auto it =
        std::lower_bound(data_.begin(), data_.end(), a > longest_extent_ ? a - longest_extent_ : 0,
                         [](const DataExtent& e, uint64_t v) { return e.host_begin < v; });
    for (; it != data_.end() && it->host_begin < b; ++it) {
      if (it->host_end > a) clusters.push_back(it->guest_cluster);
    }
  }
  ByteRanges guest;
  for (uint64_t c : clusters) {
    const uint64_t begin = c * cs;
    if (begin < header_.size) guest.push_back({begin, std::min(begin + cs, header_.size)});
  }
  NormaliseRanges(guest);
  return guest;
}

bool MappingSnapshot::OpenMayDiffer(const simdisk::Medium& x, const ByteRanges& host_delta) const {
  if (x.size() != image_->size()) return true;
  for (const auto& [a, b] : host_delta) {
    if (Intersects(open_ranges_, a, b)) return true;
  }
  return false;
}

}  // namespace crashsim
