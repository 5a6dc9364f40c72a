// Guest I/O: mapping guest offsets through L1/L2, reads (backing files, zero and compressed
// clusters, subclusters), and writes with copy-on-write, zeroing and discard. Metadata changes
// go to the L2 cache; when they reach the disk is image_flush.cc's business.
#include <fmt/format.h>

#include <algorithm>

#include "engine/coding.h"
#include "engine/compression.h"
#include "engine/image_state.h"
#include "engine/invariant.h"

namespace crashsim {
namespace {

constexpr uint64_t kAllSubclustersAllocated = 0x00000000ffffffffull;
constexpr uint64_t kAllSubclustersZero = 0xffffffff00000000ull;

Status CheckRange(uint64_t offset, uint64_t length, uint64_t size, const char* what) {
  if (offset > size || length > size - offset) {
    return Status::InvalidArgument(
        fmt::format("{} of {} bytes at offset {} is past the end of "
                    "the disk ({} bytes)",
                    what, length, offset, size));
  }
  return Status::Ok();
}

}  // namespace

L2Entry Image::State::GetL2Entry(std::span<const uint8_t> table, uint64_t l2_index) const {
  L2Entry e;
  uint64_t at = l2_index * geometry.l2_entry_size();
  e.word = LoadBE64(&table[at]);
  if (geometry.extended_l2) e.bitmap = LoadBE64(&table[at + 8]);
  return e;
}

void Image::State::SetL2Entry(std::span<uint8_t> table, uint64_t l2_index, const L2Entry& e) const {
  uint64_t at = l2_index * geometry.l2_entry_size();
  StoreBE64(&table[at], e.word);
  if (geometry.extended_l2) StoreBE64(&table[at + 8], e.bitmap);
}

Result<std::span<uint8_t>> Image::State::L2TableForRead(uint64_t l1_index) {
  uint64_t l1_entry = l1[l1_index];
  uint64_t offset = l1_entry & kL1OffsetMask;
  if (!IsAligned(offset, header.cluster_size())) {
    return Status::Corruption(
        fmt::format("L1 entry {} ({:#x}): L2 table offset not "
                    "cluster-aligned",
                    l1_index, l1_entry));
  }
  ASSIGN_OR_RETURN(uint64_t file_size, device.Size());
  if (offset + header.cluster_size() > file_size) {
    return Status::Corruption(
        fmt::format("L1 entry {} ({:#x}): L2 table lies past the end of "
                    "the file ({} bytes)",
                    l1_index, l1_entry, file_size));
  }
  return l2_cache.Get(offset);
}

Result<L2Entry> Image::State::LookupEntry(uint64_t guest_offset) {
  uint64_t l1_index = geometry.l1_index(guest_offset);
  INVARIANT(l1_index < l1.size());
  if ((l1[l1_index] & kL1OffsetMask) == 0) return L2Entry{};
  ASSIGN_OR_RETURN(std::span<uint8_t> table, L2TableForRead(l1_index));
  L2Entry e = GetL2Entry(table, geometry.l2_index(guest_offset));
  ClusterType type = ClassifyL2Entry(e.word, geometry.extended_l2);
  if ((type == ClusterType::kNormal || type == ClusterType::kZeroAlloc) &&
      !IsAligned(e.host_offset(), header.cluster_size())) {
    return Status::Corruption(
        fmt::format("L2 entry for guest offset {:#x} ({:#x}): cluster "
                    "offset not aligned",
                    guest_offset, e.word));
  }
  if (type == ClusterType::kZeroPlain || type == ClusterType::kZeroAlloc) {
    if (header.version < 3) {
      return Status::Corruption(
          fmt::format("Zero cluster entry found in pre-v3 image (guest "
                      "offset {:#x})",
                      guest_offset));
    }
  }
  return e;
}

Status Image::State::ReadBacking(uint64_t guest_offset, std::span<uint8_t> data) {
  // Past the end of the backing file (or with none) the disk reads as zeros.
  std::fill(data.begin(), data.end(), 0);
  if (!backing || guest_offset >= backing->virtual_size()) return Status::Ok();
  uint64_t n = std::min<uint64_t>(data.size(), backing->virtual_size() - guest_offset);
  return backing->Read(guest_offset, data.first(n));
}

Status Image::State::ReadCompressed(const L2Entry& entry, std::vector<uint8_t>& cluster) {
  CompressedDescriptor d = DecodeCompressed(entry.word, header.cluster_bits);
  std::vector<uint8_t> input(d.compressed_size());
  RETURN_IF_ERROR(ReadHostData(d.host_offset, input));
  cluster.resize(header.cluster_size());
  Status st = DecompressCluster(header.compression_type, input, cluster);
  return st.WithContext(fmt::format("compressed cluster at {:#x}", d.host_offset));
}

// Reads `data` at `guest_offset` (within one cluster) as `entry` maps it.
Status Image::State::ReadFromEntry(const L2Entry& entry, uint64_t guest_offset,
                                   std::span<uint8_t> data) {
  const uint64_t in_cluster = geometry.offset_in_cluster(guest_offset);
  ClusterType type = ClassifyL2Entry(entry.word, geometry.extended_l2);
  if (type == ClusterType::kCompressed) {
    std::vector<uint8_t> cluster;
    RETURN_IF_ERROR(ReadCompressed(entry, cluster));
    std::copy_n(cluster.begin() + static_cast<std::ptrdiff_t>(in_cluster), data.size(),
                data.begin());
    return Status::Ok();
  }
  if (!geometry.extended_l2) {
    switch (type) {
      case ClusterType::kUnallocated:
        return ReadBacking(guest_offset, data);
      case ClusterType::kZeroPlain:
      case ClusterType::kZeroAlloc:
        std::fill(data.begin(), data.end(), 0);
        return Status::Ok();
      default:
        return ReadHostData(entry.host_offset() + in_cluster, data);
    }
  }
  // Extended L2: each subcluster is allocated, zero, or falls through to the backing file.
  const uint64_t sc_size = geometry.subcluster_size();
  uint64_t done = 0;
  while (done < data.size()) {
    uint64_t pos = in_cluster + done;
    uint32_t sc = static_cast<uint32_t>(pos / sc_size);
    uint64_t n = std::min<uint64_t>(data.size() - done, (sc + 1) * sc_size - pos);
    std::span<uint8_t> part = data.subspan(done, n);
    bool alloc = SubclusterAllocated(entry.bitmap, sc);
    bool zero = SubclusterZero(entry.bitmap, sc);
    if (alloc && zero) {
      return Status::Corruption(
          fmt::format("L2 entry for guest offset {:#x}: subcluster {} is "
                      "both allocated and zero",
                      guest_offset, sc));
    }
    if (alloc && entry.host_offset() == 0) {
      return Status::Corruption(
          fmt::format("L2 entry for guest offset {:#x}: subcluster {} "
                      "allocated in an unallocated cluster",
                      guest_offset, sc));
    }
    if (alloc) {
      RETURN_IF_ERROR(ReadHostData(entry.host_offset() + pos, part));
    } else if (zero) {
      std::fill(part.begin(), part.end(), 0);
    } else {
      RETURN_IF_ERROR(ReadBacking(guest_offset + done, part));
    }
    done += n;
  }
  return Status::Ok();
}

Status Image::State::ReadCluster(uint64_t guest_offset, std::span<uint8_t> data) {
  ASSIGN_OR_RETURN(L2Entry entry, LookupEntry(guest_offset));
  return ReadFromEntry(entry, guest_offset, data);
}

Result<uint64_t> Image::State::L2TableForWrite(uint64_t l1_index) {
  INVARIANT(l1_index < l1.size());
  const uint64_t cs = header.cluster_size();
  uint64_t l1_entry = l1[l1_index];
  uint64_t old_offset = l1_entry & kL1OffsetMask;
  std::vector<uint8_t> contents(cs, 0);
  if (old_offset != 0) {
    ASSIGN_OR_RETURN(std::span<uint8_t> old, L2TableForRead(l1_index));
    if (l1_entry & kOflagCopied) return old_offset;
    // Shared with a snapshot: copy the table; the data it maps keeps its refcounts.
    std::copy(old.begin(), old.end(), contents.begin());
  }
  ASSIGN_OR_RETURN(uint64_t offset, AllocateClusters(1));
  if (accurate_refcounts()) {  // R1 for the table's own refcount
    RETURN_IF_ERROR(WriteRefcountBlocks());
    RETURN_IF_ERROR(DevFlush());
  }
  RETURN_IF_ERROR(DevWrite(offset, contents, IoTag::kL2Table, DurableStep::kL2Alloc));
  RETURN_IF_ERROR(DevFlush());  // the table is durable before the L1 names it
  uint8_t entry[8];
  StoreBE64(entry, offset | kOflagCopied);
  RETURN_IF_ERROR(DevWrite(header.l1_table_offset + l1_index * 8, entry, IoTag::kL1Table,
                           DurableStep::kL1Entry));
  l1[l1_index] = offset | kOflagCopied;
  l2_cache.Insert(offset, std::move(contents), /*dirty=*/false);
  if (old_offset != 0) QueueDecrement(old_offset);  // R3
  return offset;
}

// Writes `data` at `guest_offset`, all within one cluster.
Status Image::State::WriteCluster(uint64_t guest_offset, std::span<const uint8_t> data) {
  const uint64_t cs = header.cluster_size();
  const uint64_t cluster_start = AlignDown(guest_offset, cs);
  const uint64_t in_cluster = guest_offset - cluster_start;
  const uint64_t l2_index = geometry.l2_index(guest_offset);
  ASSIGN_OR_RETURN(uint64_t table_offset, L2TableForWrite(geometry.l1_index(guest_offset)));
  ASSIGN_OR_RETURN(std::span<uint8_t> table, l2_cache.Get(table_offset));
  const L2Entry old = GetL2Entry(table, l2_index);
  const ClusterType type = ClassifyL2Entry(old.word, geometry.extended_l2);
  if ((type == ClusterType::kNormal || type == ClusterType::kZeroAlloc) &&
      !IsAligned(old.host_offset(), cs)) {
    return Status::Corruption(
        fmt::format("L2 entry for guest offset {:#x} ({:#x}): cluster "
                    "offset not aligned",
                    guest_offset, old.word));
  }
  const bool owned = old.copied() && old.host_offset() != 0 && type != ClusterType::kCompressed;

  // The byte range of the cluster that must hold valid data once the entry points at it.
  uint64_t fill_start = in_cluster, fill_end = in_cluster + data.size();
  L2Entry updated = old;
  if (!geometry.extended_l2) {
    if (!(owned && type == ClusterType::kNormal)) {
      fill_start = 0;
      fill_end = cs;
    }
    updated.word = kOflagCopied;  // host offset filled in below
  } else {
    const uint64_t sc = geometry.subcluster_size();
    uint32_t first_sc = static_cast<uint32_t>(in_cluster / sc);
    uint32_t end_sc = static_cast<uint32_t>(DivRoundUp(in_cluster + data.size(), sc));
    uint64_t range = SubclusterRangeMask(first_sc, end_sc - first_sc);
    uint64_t keep_alloc = owned ? (old.bitmap & kAllSubclustersAllocated) : 0;
    if (!owned && type == ClusterType::kCompressed) keep_alloc = kAllSubclustersAllocated;
    if (!owned && type == ClusterType::kNormal) keep_alloc = old.bitmap & kAllSubclustersAllocated;
    uint64_t alloc = keep_alloc | range;
    // Partially written subclusters not yet allocated here get their old contents around the
    // guest data; a fresh cluster also gets every subcluster the old one had.
    uint64_t copy = owned ? (range & ~keep_alloc) : alloc;
    if (copy) {
      uint32_t lo = static_cast<uint32_t>(std::countr_zero(copy));
      uint32_t hi = 64 - static_cast<uint32_t>(std::countl_zero(copy));
      fill_start = std::min<uint64_t>(fill_start, lo * sc);
      fill_end = std::max<uint64_t>(fill_end, hi * sc);
    }
    updated.word = kOflagCopied;
    updated.bitmap = alloc | ((old.bitmap & ~(range << 32)) & kAllSubclustersZero);
    // A subcluster cannot be allocated and zero at once.
    updated.bitmap &= ~((alloc & kAllSubclustersAllocated) << 32);
  }

  uint64_t host = 0;
  bool fresh = false;  // a new cluster past the end of the file: it reads as zeros already
  if (owned) {
    host = old.host_offset();
  } else {
    ASSIGN_OR_RETURN(uint64_t file_size, device.Size());
    ASSIGN_OR_RETURN(host, AllocateClusters(1));
    fresh = host >= file_size;
  }
  updated.word |= host;

  // Copy on write: old contents before and after the guest data, then the data itself.
  // If the old contents are zeros and the cluster is fresh, the copies are already there (the
  // file reads zeros past its end) and an L2 entry that reaches the disk before the data shows
  // only those zeros, the old contents: no copies and no barrier (as QEMU skips zero COW).
  const bool old_reads_zero =
      (type == ClusterType::kUnallocated && !backing) || type == ClusterType::kZeroPlain;
  const bool skip_copies = fresh && old_reads_zero;
  const uint64_t data_end = in_cluster + data.size();
  const bool has_head = fill_start < in_cluster && !skip_copies;
  const bool has_tail = data_end < fill_end && !skip_copies;
  // With the write cache off (writethrough, directsync) a lone data write is FUA, as QEMU marks
  // guest writes: durable on completion, it needs no flush before the L2 write (R2). Copies
  // around it are ordinary writes followed by that flush.
  const bool fua =
      CacheModeWritesThrough(options.cache_mode) && !has_head && !has_tail && !skip_copies;
  if (has_head) {
    std::vector<uint8_t> head(in_cluster - fill_start);
    RETURN_IF_ERROR(ReadFromEntry(old, cluster_start + fill_start, head));
    RETURN_IF_ERROR(DevWrite(host + fill_start, head, IoTag::kCowData, DurableStep::kCowHead));
  }
  RETURN_IF_ERROR(DevWrite(host + in_cluster, data, IoTag::kData, DurableStep::kGuestData, fua));
  if (has_tail) {
    std::vector<uint8_t> tail(fill_end - data_end);
    RETURN_IF_ERROR(ReadFromEntry(old, cluster_start + data_end, tail));
    RETURN_IF_ERROR(DevWrite(host + data_end, tail, IoTag::kCowData, DurableStep::kCowTail));
  }
  if (updated.word == old.word && updated.bitmap == old.bitmap) return Status::Ok();

  ASSIGN_OR_RETURN(table, l2_cache.Get(table_offset));
  SetL2Entry(table, l2_index, updated);
  l2_cache.MarkDirty(table_offset);
  if (!fua && !skip_copies) l2_needs_data_barrier = true;  // R2
  if (!owned) ReleaseEntry(old);
  return Status::Ok();
}

// Zeroes (or discards) one whole cluster through its L2 entry alone.
Status Image::State::ZeroCluster(uint64_t guest_offset, bool unmap, bool discard) {
  ASSIGN_OR_RETURN(L2Entry old, LookupEntry(guest_offset));
  const ClusterType type = ClassifyL2Entry(old.word, geometry.extended_l2);
  const bool owned = old.copied() && old.host_offset() != 0 && type != ClusterType::kCompressed;
  const bool has_backing = backing != nullptr;
  L2Entry updated;
  if (header.version < 3) {
    INVARIANT(discard || !has_backing);
    updated = L2Entry{};  // unallocated: zeros, or the backing file after a discard
  } else if (geometry.extended_l2) {
    bool keep = owned && !unmap && !discard;
    updated.word = keep ? old.word : 0;
    updated.bitmap = (discard && !has_backing) ? 0 : kAllSubclustersZero;
  } else if (discard) {
    updated.word = has_backing ? kOflagZero : 0;
  } else {
    bool keep = owned && !unmap;
    updated.word = keep ? (old.host_offset() | kOflagCopied | kOflagZero) : kOflagZero;
  }
  if (updated.word == old.word && updated.bitmap == old.bitmap) return Status::Ok();
  const uint64_t l2_index = geometry.l2_index(guest_offset);
  ASSIGN_OR_RETURN(uint64_t table_offset, L2TableForWrite(geometry.l1_index(guest_offset)));
  ASSIGN_OR_RETURN(std::span<uint8_t> table, l2_cache.Get(table_offset));
  SetL2Entry(table, l2_index, updated);
  l2_cache.MarkDirty(table_offset);
  if (updated.host_offset() != old.host_offset() || !owned) ReleaseEntry(old);
  return Status::Ok();
}

// ---------------------------------------------------------------------------------------------

Status Image::Read(uint64_t offset, std::span<uint8_t> data) {
  if (s_->closed) return Status::InvalidArgument("image is closed");
  RETURN_IF_ERROR(CheckRange(offset, data.size(), s_->header.size, "read"));
  const uint64_t cs = s_->header.cluster_size();
  uint64_t done = 0;
  while (done < data.size()) {
    uint64_t pos = offset + done;
    uint64_t n = std::min<uint64_t>(data.size() - done, AlignDown(pos, cs) + cs - pos);
    RETURN_IF_ERROR(s_->ReadCluster(pos, data.subspan(done, n)));
    done += n;
  }
  return Status::Ok();
}

Status Image::Write(uint64_t offset, std::span<const uint8_t> data) {
  RETURN_IF_ERROR(s_->PrepareForWrite());
  RETURN_IF_ERROR(CheckRange(offset, data.size(), s_->header.size, "write"));
  const uint64_t cs = s_->header.cluster_size();
  uint64_t done = 0;
  while (done < data.size()) {
    uint64_t pos = offset + done;
    uint64_t n = std::min<uint64_t>(data.size() - done, AlignDown(pos, cs) + cs - pos);
    RETURN_IF_ERROR(s_->Guard(s_->WriteCluster(pos, data.subspan(done, n))));
    done += n;
  }
  // writethrough/directsync: the write is durable when it completes (QEMU: FUA emulated by a
  // flush of the qcow2 node after the write).
  if (CacheModeWritesThrough(s_->options.cache_mode)) return s_->GuestFlush();
  return Status::Ok();
}

Status Image::WriteZeroes(uint64_t offset, uint64_t length, bool unmap) {
  RETURN_IF_ERROR(s_->PrepareForWrite());
  RETURN_IF_ERROR(CheckRange(offset, length, s_->header.size, "write-zeroes"));
  const uint64_t cs = s_->header.cluster_size();
  const bool by_metadata = s_->header.version >= 3 || !s_->backing;
  uint64_t done = 0;
  while (done < length) {
    uint64_t pos = offset + done;
    uint64_t n = std::min<uint64_t>(length - done, AlignDown(pos, cs) + cs - pos);
    bool whole = n == cs || pos + n == s_->header.size;
    if (whole && IsAligned(pos, cs) && by_metadata) {
      RETURN_IF_ERROR(s_->Guard(s_->ZeroCluster(pos, unmap, /*discard=*/false)));
    } else {
      std::vector<uint8_t> zeros(n, 0);
      RETURN_IF_ERROR(s_->Guard(s_->WriteCluster(pos, zeros)));
    }
    done += n;
  }
  if (CacheModeWritesThrough(s_->options.cache_mode)) return s_->GuestFlush();
  return Status::Ok();
}

Status Image::Discard(uint64_t offset, uint64_t length) {
  RETURN_IF_ERROR(s_->PrepareForWrite());
  RETURN_IF_ERROR(CheckRange(offset, length, s_->header.size, "discard"));
  // A v2 image has no zero flag: deallocating would expose the backing file's old data, so the
  // discard is ignored, as QEMU does.
  if (s_->header.version < 3 && s_->backing) return Status::Ok();
  const uint64_t cs = s_->header.cluster_size();
  uint64_t pos = AlignUp(offset, cs);
  uint64_t end = offset + length == s_->header.size ? AlignUp(offset + length, cs)
                                                    : AlignDown(offset + length, cs);
  for (; pos < end; pos += cs) {
    RETURN_IF_ERROR(s_->Guard(s_->ZeroCluster(pos, true, /*discard=*/true)));
  }
  if (CacheModeWritesThrough(s_->options.cache_mode)) return s_->GuestFlush();
  return Status::Ok();
}

Result<Mapping> Image::Map(uint64_t guest_offset) {
  RETURN_IF_ERROR(CheckRange(guest_offset, 1, s_->header.size, "map"));
  ASSIGN_OR_RETURN(L2Entry e, s_->LookupEntry(guest_offset));
  Mapping m;
  m.type = ClassifyL2Entry(e.word, s_->geometry.extended_l2);
  if (m.type == ClusterType::kCompressed) {
    m.host_offset = DecodeCompressed(e.word, s_->header.cluster_bits).host_offset;
  } else {
    m.host_offset = e.host_offset();
  }
  m.from_backing = m.type == ClusterType::kUnallocated && s_->backing != nullptr;
  return m;
}

Status Image::ForEachMappedCluster(
    const std::function<Status(uint64_t guest_offset, ClusterType type)>& fn) {
  if (s_->closed) return Status::InvalidArgument("image is closed");
  const Geometry& g = s_->geometry;
  std::vector<std::pair<uint64_t, ClusterType>> mapped;
  for (uint64_t l1_index = 0; l1_index < s_->l1.size(); ++l1_index) {
    if ((s_->l1[l1_index] & kL1OffsetMask) == 0) continue;
    ASSIGN_OR_RETURN(std::span<uint8_t> table, s_->L2TableForRead(l1_index));
    // Collected first: fn may read, and a read may evict the table from the cache.
    mapped.clear();
    for (uint64_t i = 0; i < g.l2_entries(); ++i) {
      const L2Entry e = s_->GetL2Entry(table, i);
      if (e.word == 0 && e.bitmap == 0) continue;
      const uint64_t guest = (l1_index * g.l2_entries() + i) << g.cluster_bits;
      if (guest < s_->header.size)
        mapped.push_back({guest, ClassifyL2Entry(e.word, g.extended_l2)});
    }
    for (const auto& [guest, type] : mapped) RETURN_IF_ERROR(fn(guest, type));
  }
  return Status::Ok();
}

}  // namespace crashsim
