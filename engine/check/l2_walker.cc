#include "engine/check/l2_walker.h"

#include <fmt/format.h>

#include <algorithm>
#include <vector>

#include "engine/check/check_memo.h"
#include "engine/check/device_io.h"
#include "engine/coding.h"
#include "engine/read_buffer.h"

namespace crashsim::check {
namespace {

constexpr uint64_t kBitmapAllAlloc = 0xffffffffull;
constexpr uint64_t kBitmapAllZero = 0xffffffffull << 32;

class L2Walker {
 public:
  L2Walker(Context& ctx, ReferenceCounter& counter, const L1Walk& walk)
      : ctx_(ctx), counter_(counter), walk_(walk), geo_(ctx.geo) {}

  // Checks and counts one L2 table; writes it back (and flushes) if the repair changed it.
  Status Walk(uint64_t l2_offset, uint64_t l1_index);

 private:
  uint64_t GuestOffset(uint64_t l1_index, uint64_t l2_index) const {
    return (l1_index * geo_.l2_entries() + l2_index) << geo_.cluster_bits;
  }
  bool PastEof(uint64_t offset, uint64_t size) const {
    return offset + size >= ctx_.file_size + ctx_.cluster_size();
  }
  // The value a dropped entry takes: zeros where the guest could read data.
  void Zeroify(uint64_t& entry, uint64_t& bitmap, bool compressed) const;
  void Drop(uint64_t l2_offset, uint64_t l1_index, uint64_t i, uint64_t& entry, uint64_t& bitmap,
            bool compressed, const std::string& why);
  // Allocation and fragmentation in one table (QEMU restarts the contiguity at each table),
  // kept in a local struct so the entry loop holds them in registers; added to ctx_.bfi after
  // the table when it is active.
  struct Tally {
    uint64_t allocated = 0;
    uint64_t fragmented = 0;
    uint64_t compressed = 0;
    uint64_t next_contiguous_offset = 0;
  };
  void CheckEntry(uint64_t l2_offset, uint64_t l1_index, uint64_t i, uint64_t& entry,
                  uint64_t& bitmap, Tally& tally);
  // Whether CheckEntry would find nothing to report or repair in an entry and only count it:
  // an unallocated entry (skipped), or a plain allocated cluster inside the file (counted by
  // CountAllocated). These are nearly all the entries of any image, so they skip the checks.
  bool IsUnallocated(uint64_t entry, uint64_t bitmap) const {
    return entry == 0 && (bitmap & kBitmapAllAlloc) == 0;
  }
  bool IsPlainAllocated(uint64_t entry, uint64_t bitmap) const {
    const uint64_t offset = entry & kL2OffsetMask;
    return (entry & (kOflagCompressed | kL2ReservedMask)) == 0 && offset != 0 &&
           (offset & (ctx_.cluster_size() - 1)) == 0 && offset < ctx_.file_size &&
           ((bitmap >> 32) & bitmap) == 0;
  }
  // A normal or preallocated (zero) cluster at `offset`: the tally, and the reference.
  void CountAllocated(uint64_t offset, Tally& tally) {
    tally.allocated++;
    if (tally.next_contiguous_offset && offset != tally.next_contiguous_offset) {
      tally.fragmented++;
    }
    tally.next_contiguous_offset = offset + ctx_.cluster_size();
    counter_.AddDataCluster(ctx_, offset);
    if (recording_) recorded_.push_back({offset, 0});
  }
  // A compressed span: the reference (the walk's only other kind).
  void CountCompressed(uint64_t offset, uint64_t size) {
    counter_.Add(ctx_, offset, size, Owner::kData);
    if (recording_) recorded_.push_back({offset, size});
  }
  void AddTally(const Tally& tally) {
    if (!walk_.active) return;
    ctx_.bfi.allocated_clusters += tally.allocated;
    ctx_.bfi.fragmented_clusters += tally.fragmented;
    ctx_.bfi.compressed_clusters += tally.compressed;
  }
  // The memo's key for the table at l2_offset, if there is a memo and the device names it.
  std::optional<CheckMemo::Key> MemoKey(uint64_t l2_offset) const;

  Context& ctx_;
  ReferenceCounter& counter_;
  const L1Walk& walk_;
  const Geometry& geo_;
  bool dirty_ = false;
  std::string table_name_;
  ReadBuffer table_;        // the table being walked, reused for every table
  bool recording_ = false;  // keeping the references counted, for the memo
  std::vector<MemoL2Walk::Reference> recorded_;
};

std::optional<CheckMemo::Key> L2Walker::MemoKey(uint64_t l2_offset) const {
  const uint64_t cs = ctx_.cluster_size();
  if (ctx_.memo == nullptr || l2_offset > ctx_.file_size || cs > ctx_.file_size - l2_offset) {
    return std::nullopt;
  }
  std::optional<ContentName> name = ctx_.device.NameContent(l2_offset, cs);
  if (!name) return std::nullopt;
  return CheckMemo::Key{*name, uint64_t{geo_.cluster_bits} | uint64_t{geo_.extended_l2} << 8,
                        CheckMemo::Kind::kL2Walk};
}

void L2Walker::Zeroify(uint64_t& entry, uint64_t& bitmap, bool compressed) const {
  if (geo_.extended_l2) {
    bitmap = compressed ? kBitmapAllZero : ((bitmap | bitmap << 32) & kBitmapAllZero);
    entry = 0;
  } else {
    entry = ctx_.header.version >= 3 ? kOflagZero : 0;
  }
}

void L2Walker::Drop(uint64_t l2_offset, uint64_t l1_index, uint64_t i, uint64_t& entry,
                    uint64_t& bitmap, bool compressed, const std::string& why) {
  Zeroify(entry, bitmap, compressed);
  dirty_ = true;
  ctx_.res.corruptions_fixed++;
  ctx_.Dropped(l2_offset + i * geo_.l2_entry_size(), table_name_, GuestOffset(l1_index, i),
               ctx_.cluster_size(), why);
}

void L2Walker::CheckEntry(uint64_t l2_offset, uint64_t l1_index, uint64_t i, uint64_t& entry,
                          uint64_t& bitmap, Tally& tally) {
  const uint64_t entry_offset = l2_offset + i * geo_.l2_entry_size();
  const bool fix = ctx_.fix_errors();
  const ClusterType type = ClassifyL2Entry(entry, geo_.extended_l2);
  if (type != ClusterType::kCompressed && (entry & kL2ReservedMask)) {
    if (fix) {
      ctx_.Fixed(FindingKind::kReservedBits, entry_offset, table_name_,
                 fmt::format("Repairing l2 entry with reserved bits set: {:x}", entry));
      entry &= ~kL2ReservedMask;
      dirty_ = true;
    } else {
      ctx_.Corruption(FindingKind::kReservedBits, entry_offset, table_name_,
                      fmt::format("ERROR found l2 entry with reserved bits set: {:x}", entry));
    }
  }
  switch (type) {
    case ClusterType::kCompressed: {
      if (entry & kOflagCopied) {
        std::string msg =
            fmt::format("coffset={:#x}: copied flag must never be set for compressed clusters",
                        entry & ((uint64_t{1} << CompressedOffsetBits(geo_.cluster_bits)) - 1));
        entry &= ~kOflagCopied;
        if (fix) {
          ctx_.Fixed(FindingKind::kInvalidEntry, entry_offset, table_name_, "Repairing: " + msg);
          dirty_ = true;
        } else {
          ctx_.Corruption(FindingKind::kInvalidEntry, entry_offset, table_name_, "ERROR: " + msg);
        }
      }
      if (bitmap) {
        if (fix)
          return Drop(l2_offset, l1_index, i, entry, bitmap, true,
                      "compressed cluster with a subcluster bitmap");
        ctx_.Corruption(FindingKind::kInvalidEntry, entry_offset, table_name_,
                        fmt::format("ERROR compressed cluster {} with non-zero subcluster "
                                    "allocation bitmap, entry={:#x}",
                                    i, entry));
        return;
      }
      CompressedDescriptor d = DecodeCompressed(entry, geo_.cluster_bits);
      if (fix && PastEof(d.host_offset, d.compressed_size())) {
        return Drop(
            l2_offset, l1_index, i, entry, bitmap, true,
            fmt::format("compressed data at {:#x} is past the end of the file", d.host_offset));
      }
      CountCompressed(d.host_offset, d.compressed_size());
      tally.allocated++;
      tally.compressed++;
      tally.fragmented++;  // QEMU counts every compressed cluster as fragmented
      return;
    }
    case ClusterType::kZeroAlloc:
    case ClusterType::kNormal: {
      const uint64_t offset = entry & kL2OffsetMask;
      if ((bitmap >> 32) & bitmap) {
        if (fix) {
          // Subclusters marked both allocated and zero become zero; the others keep their data.
          uint64_t both = (bitmap >> 32) & bitmap;
          bitmap &= ~both;
          dirty_ = true;
          ctx_.res.corruptions_fixed++;
          ctx_.Dropped(entry_offset, table_name_, GuestOffset(l1_index, i), ctx_.cluster_size(),
                       fmt::format("subclusters {:#x} were both allocated and zero", both));
        } else {
          ctx_.Corruption(FindingKind::kInvalidEntry, entry_offset, table_name_,
                          fmt::format("ERROR offset={:x}: Allocated cluster has corrupted "
                                      "subcluster allocation bitmap",
                                      offset));
        }
      }
      if (!IsAligned(offset, ctx_.cluster_size())) {
        bool contains_data =
            geo_.extended_l2 ? (bitmap & kBitmapAllAlloc) != 0 : !(entry & kOflagZero);
        if (fix) {
          return Drop(l2_offset, l1_index, i, entry, bitmap, false,
                      fmt::format("{} cluster offset {:#x} is not cluster aligned",
                                  contains_data ? "data" : "preallocated", offset));
        }
        ctx_.Corruption(FindingKind::kUnaligned, entry_offset, table_name_,
                        contains_data
                            ? fmt::format("ERROR offset={:x}: Data cluster is not properly "
                                          "aligned; L2 entry corrupted.",
                                          offset)
                            : fmt::format("ERROR offset={:x}: Preallocated cluster is not "
                                          "properly aligned; L2 entry corrupted.",
                                          offset));
      }
      if (fix && PastEof(offset, ctx_.cluster_size())) {
        return Drop(l2_offset, l1_index, i, entry, bitmap, false,
                    fmt::format("cluster {:#x} is past the end of the file", offset));
      }
      CountAllocated(offset, tally);
      return;
    }
    case ClusterType::kZeroPlain:
      return;
    case ClusterType::kUnallocated:
      if (bitmap & kBitmapAllAlloc) {
        if (fix)
          return Drop(l2_offset, l1_index, i, entry, bitmap, false,
                      "unallocated cluster with allocated subclusters");
        ctx_.Corruption(FindingKind::kInvalidEntry, entry_offset, table_name_,
                        "ERROR: Unallocated cluster has non-zero subcluster allocation map");
      }
      return;
  }
}

Status L2Walker::Walk(uint64_t l2_offset, uint64_t l1_index) {
  const std::optional<CheckMemo::Key> key = MemoKey(l2_offset);
  if (key) {
    std::shared_ptr<const MemoL2Walk> kept = ctx_.memo->FindWalk(*key);
    if (kept && ctx_.file_size >= kept->min_file_size) {
      for (const MemoL2Walk::Reference& r : kept->references) {
        if (r.size == 0) {
          counter_.AddDataCluster(ctx_, r.offset);
        } else {
          counter_.Add(ctx_, r.offset, r.size, Owner::kData);
        }
      }
      AddTally({kept->allocated, kept->fragmented, kept->compressed, 0});
      return Status::Ok();
    }
  }
  recording_ = key.has_value();
  recorded_.clear();
  // Whether the walk reports or repairs anything; if not, it is its references alone.
  const size_t findings_before = ctx_.finding_count();
  const Counters counters_before = ctx_.res;
  table_name_ = fmt::format("{} L2 table at {:#x}", walk_.name, l2_offset);
  table_.resize(ctx_.cluster_size());
  Status st = ReadZeroFilled(ctx_.device, ctx_.file_size, l2_offset, table_);
  if (!st.ok()) {
    ctx_.CheckError(l2_offset, table_name_, "ERROR: I/O error in check_refcounts_l2");
    return st;
  }
  dirty_ = false;
  Tally tally;
  const uint64_t entry_size = geo_.l2_entry_size();
  const uint64_t entries = geo_.l2_entries();  // a division: not once per entry
  // An all-zero entry is unallocated: only the others are looked at.
  ForEachNonZeroEntry(std::span(table_).first(entries * entry_size), entry_size, [&](size_t i) {
    uint8_t* p = &table_[i * entry_size];
    uint64_t entry = LoadBE64(p);
    uint64_t bitmap = geo_.extended_l2 ? LoadBE64(p + 8) : 0;
    if (IsPlainAllocated(entry, bitmap)) {
      CountAllocated(entry & kL2OffsetMask, tally);
      return;
    }
    CheckEntry(l2_offset, l1_index, i, entry, bitmap, tally);
    if (dirty_) {
      StoreBE64(p, entry);
      if (geo_.extended_l2) StoreBE64(p + 8, bitmap);
    }
  });
  AddTally(tally);
  const bool silent = ctx_.finding_count() == findings_before && !dirty_ &&
                      ctx_.res.corruptions == counters_before.corruptions &&
                      ctx_.res.corruptions_fixed == counters_before.corruptions_fixed &&
                      ctx_.res.check_errors == counters_before.check_errors;
  if (key && silent) {
    // Valid for any file the last reference fits in: no past-EOF verdict can differ there.
    uint64_t min_file_size = 0;
    for (const MemoL2Walk::Reference& r : recorded_) {
      min_file_size =
          std::max(min_file_size, r.offset + (r.size == 0 ? ctx_.cluster_size() : r.size));
    }
    ctx_.memo->PutWalk(*key, {min_file_size, std::move(recorded_), tally.allocated,
                              tally.fragmented, tally.compressed});
    recorded_ = {};
  }
  recording_ = false;
  if (dirty_) {
    RETURN_IF_ERROR(ctx_.PrepareToWrite());
    st = RepairWriteSync(ctx_.device, l2_offset, table_, IoTag::kL2Table);
    if (!st.ok()) {
      ctx_.CheckError(l2_offset, table_name_,
                      "ERROR: Failed to overwrite L2 table: " + st.message());
      return st;
    }
  }
  return Status::Ok();
}

// Whether the repair must drop the L1 entry rather than trust the L2 table it names.
std::string UntrustedL2Reason(const Context& ctx, const MetadataMap& metadata, uint64_t raw,
                              uint64_t l2_offset) {
  if (l2_offset == 0) return fmt::format("L1 entry {:#x} names the header as an L2 table", raw);
  if (!IsAligned(l2_offset, ctx.cluster_size())) {
    return fmt::format("L2 table offset {:#x} is not cluster aligned", l2_offset);
  }
  if (l2_offset >= ctx.file_size) {
    return fmt::format("L2 table {:#x} is past the end of the file", l2_offset);
  }
  if (const std::string* other = metadata.Find(l2_offset, ctx.cluster_size())) {
    return fmt::format("L2 table {:#x} overlaps the {}", l2_offset, *other);
  }
  return "";
}

Status WriteL1Entry(Context& ctx, uint64_t entry_offset, uint64_t value) {
  RETURN_IF_ERROR(ctx.PrepareToWrite());
  uint8_t bytes[8];
  StoreBE64(bytes, value);
  return RepairWriteSync(ctx.device, entry_offset, bytes, IoTag::kL1Table);
}

}  // namespace

Status WalkL1(Context& ctx, ReferenceCounter& counter, const MetadataMap& metadata,
              const L1Walk& walk) {
  if (walk.l1_size == 0) return Status::Ok();
  const std::string l1_name = fmt::format("{} L1 table", walk.name);
  counter.Add(ctx, walk.l1_table_offset, uint64_t{walk.l1_size} * 8,
              walk.active ? Owner::kActiveL1 : Owner::kSnapshotL1);
  const Geometry& geo = ctx.geo;
  L2Walker l2_walker(ctx, counter, walk);
  std::vector<uint8_t> chunk;
  const uint64_t l1_bytes = uint64_t{walk.l1_size} * 8;
  for (uint64_t done = 0; done < l1_bytes; done += chunk.size()) {
    const uint64_t chunk_offset = walk.l1_table_offset + done;
    // Past EOF the table reads as zeros, which name nothing: stop instead of reading them.
    if (chunk_offset >= ctx.file_size) break;
    chunk.resize(std::min(kL1ChunkBytes, l1_bytes - done));
    Status st = ReadZeroFilled(ctx.device, ctx.file_size, chunk_offset, chunk);
    if (!st.ok()) {
      ctx.CheckError(walk.l1_table_offset, l1_name, "ERROR: I/O error in check_refcounts_l1");
      return st;
    }
    for (uint64_t j = 0; j < chunk.size() / 8; ++j) {
      const uint64_t l1_index = done / 8 + j;
      const uint64_t entry_offset = chunk_offset + j * 8;
      uint64_t raw = LoadBE64(&chunk[j * 8]);
      if (raw == 0) continue;
      if (raw & kL1ReservedMask) {
        if (ctx.fix_errors()) {
          raw &= ~kL1ReservedMask;
          RETURN_IF_ERROR(WriteL1Entry(ctx, entry_offset, raw));
          ctx.Fixed(FindingKind::kReservedBits, entry_offset, l1_name,
                    fmt::format("Repairing L1 entry with reserved bits set: {:x}",
                                LoadBE64(&chunk[j * 8])));
          if (raw == 0) continue;
        } else {
          ctx.Corruption(FindingKind::kReservedBits, entry_offset, l1_name,
                         fmt::format("ERROR found L1 entry with reserved bits set: {:x}", raw));
        }
      }
      const uint64_t l2_offset = raw & kL1OffsetMask;
      if (ctx.fix_errors()) {
        std::string why = UntrustedL2Reason(ctx, metadata, raw, l2_offset);
        if (!why.empty()) {
          RETURN_IF_ERROR(WriteL1Entry(ctx, entry_offset, 0));
          ctx.res.corruptions_fixed++;
          ctx.Dropped(entry_offset, l1_name, l1_index * geo.l2_coverage(), geo.l2_coverage(), why);
          continue;
        }
      }
      counter.Add(ctx, l2_offset, ctx.cluster_size(), Owner::kL2);
      if (!IsAligned(l2_offset, ctx.cluster_size())) {
        ctx.Corruption(FindingKind::kUnaligned, entry_offset, l1_name,
                       fmt::format("ERROR l2_offset={:x}: Table is not cluster aligned; L1 entry "
                                   "corrupted",
                                   l2_offset));
      }
      RETURN_IF_ERROR(l2_walker.Walk(l2_offset, l1_index));
    }
  }
  return Status::Ok();
}

}  // namespace crashsim::check
