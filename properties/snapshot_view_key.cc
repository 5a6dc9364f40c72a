#include "properties/snapshot_view_key.h"

#include <algorithm>

#include "engine/coding.h"
#include "engine/format/entries.h"
#include "engine/read_buffer.h"
#include "simdisk/hash.h"

namespace crashsim {
namespace {

using simdisk::HashCombine;
using simdisk::Mix64;

// Two independent 64-bit hashes, as Medium::ContentToken keeps them: 128 bits of name.
struct KeyBuilder {
  uint64_t lo = 0x5a17;
  uint64_t hi = 0xc0de;
  void Add(uint64_t v) {
    lo = HashCombine(lo, v);
    hi = Mix64(hi ^ (v * 0x9e3779b97f4a7c15ULL + 0x632be59bd9b4e019ULL));
  }
  void Add(const ContentName& n) {
    Add(n.lo);
    Add(n.hi);
  }
};

}  // namespace

std::shared_ptr<const SnapshotViewKeys::L2Reads> SnapshotViewKeys::ReadsOf(
    BlockDevice& device, const QcowHeader& header, uint64_t l2_offset, const ContentName& name) {
  // The name covers the table's offset and bytes; the geometry is the header's, in the key.
  const std::pair<uint64_t, uint64_t> id{
      name.lo ^ (header.cluster_bits | uint64_t{header.extended_l2()} << 8), name.hi};
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (auto it = l2_reads_.find(id); it != l2_reads_.end()) return it->second;
  }
  const uint64_t cs = header.cluster_size();
  const Geometry geo{.cluster_bits = header.cluster_bits,
                     .refcount_order = header.refcount_order,
                     .extended_l2 = header.extended_l2()};
  ReadBuffer table(cs);  // filled by the read
  if (!device.Read(l2_offset, table).ok()) return nullptr;
  auto reads = std::make_shared<L2Reads>();
  const size_t entry_size = geo.l2_entry_size();
  uint64_t digest = 0x12d1;
  ForEachNonZeroEntry(table, entry_size, [&](size_t j) {
    const uint64_t entry = LoadBE64(&table[j * entry_size]);
    digest = HashCombine(HashCombine(digest, j), entry & ~kOflagCopied);
    if (geo.extended_l2) digest = HashCombine(digest, LoadBE64(&table[j * entry_size + 8]));
    if (ClassifyL2Entry(entry, geo.extended_l2) == ClusterType::kCompressed) {
      const CompressedDescriptor d = DecodeCompressed(entry, header.cluster_bits);
      reads->ranges.push_back({d.host_offset, d.compressed_size()});
    } else if (const uint64_t host = entry & kL2OffsetMask; host != 0) {
      reads->ranges.push_back({host, cs});
    }
  });
  reads->digest = digest;
  std::lock_guard<std::mutex> lock(mutex_);
  return l2_reads_.emplace(id, std::move(reads)).first->second;
}

std::optional<SnapshotViewKeys::Key> SnapshotViewKeys::KeyOf(BlockDevice& device,
                                                             const QcowHeader& header,
                                                             const SnapshotEntry& entry,
                                                             uint64_t snapshot_op,
                                                             ByteRanges* reads) {
  KeyBuilder key;
  // What shapes every read (not the dirty or corrupt bits, which only a writer heeds).
  key.Add(snapshot_op);
  key.Add(header.version);
  key.Add(header.cluster_bits);
  key.Add(header.refcount_order);
  key.Add(header.incompatible_features & ~(kIncompatDirty | kIncompatCorrupt));
  key.Add(static_cast<uint64_t>(header.compression_type));
  key.Add(header.crypt_method);
  // A backing file is the run's initial content: the same in every state, so its name will do.
  if (header.data_file || header.crypto) return std::nullopt;
  key.Add(simdisk::HashString(header.backing_file));
  key.Add(simdisk::HashString(header.backing_format.value_or("")));
  key.Add(entry.l1_table_offset);
  key.Add(entry.l1_size);
  key.Add(entry.disk_size);
  Result<uint64_t> file_size = device.Size();
  if (!file_size.ok()) return std::nullopt;
  const uint64_t cs = header.cluster_size();
  const uint64_t l1_bytes = uint64_t{entry.l1_size} * 8;
  std::optional<ContentName> l1_name = device.NameContent(entry.l1_table_offset, l1_bytes);
  if (!l1_name) return std::nullopt;
  key.Add(*l1_name);
  if (reads) reads->push_back({entry.l1_table_offset, entry.l1_table_offset + l1_bytes});
  std::vector<uint8_t> l1(l1_bytes);
  if (!device.Read(entry.l1_table_offset, l1).ok()) return std::nullopt;
  for (uint64_t i = 0; i < entry.l1_size; ++i) {
    const uint64_t l2_offset = LoadBE64(&l1[i * 8]) & kL1OffsetMask;
    if (l2_offset == 0) continue;
    std::optional<ContentName> l2_name = device.NameContent(l2_offset, cs);
    if (!l2_name) return std::nullopt;
    if (reads) reads->push_back({l2_offset, l2_offset + cs});
    std::shared_ptr<const L2Reads> l2 = ReadsOf(device, header, l2_offset, *l2_name);
    if (l2 == nullptr) return std::nullopt;
    key.Add(i);
    key.Add(l2->digest);
    for (const auto& [offset, length] : l2->ranges) {
      // Past the end of the file the load reads zeros: the part inside is named, and its length.
      const uint64_t inside = offset >= *file_size ? 0 : std::min(length, *file_size - offset);
      key.Add(inside);
      if (inside == 0) continue;
      std::optional<ContentName> data = device.NameContent(offset, inside);
      if (!data) return std::nullopt;
      key.Add(*data);
      if (reads) reads->push_back({offset, offset + inside});
    }
  }
  return Key{key.lo, key.hi};
}

bool SnapshotViewKeys::Passed(const Key& key) {
  std::lock_guard<std::mutex> lock(mutex_);
  return passed_.contains(key);
}

void SnapshotViewKeys::AddPassed(const Key& key) {
  std::lock_guard<std::mutex> lock(mutex_);
  passed_.insert(key);
}

}  // namespace crashsim
