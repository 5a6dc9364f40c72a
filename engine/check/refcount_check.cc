#include "engine/check/refcount_check.h"

#include <fmt/format.h>

#include <algorithm>
#include <optional>
#include <span>
#include <vector>

#include "engine/check/bitmap_walker.h"
#include "engine/check/check_memo.h"
#include "engine/check/device_io.h"
#include "engine/check/l2_walker.h"
#include "engine/check/metadata_map.h"
#include "engine/check/rebuild.h"
#include "engine/check/refcount_reader.h"
#include "engine/check/reference_counter.h"
#include "engine/coding.h"
#include "engine/read_buffer.h"

namespace crashsim::check {
namespace {

MetadataMap BuildMetadataMap(const Context& ctx, const RefcountReader& reader) {
  const uint64_t cs = ctx.cluster_size();
  const QcowHeader& h = ctx.header;
  MetadataMap map;
  map.Add(0, cs, "qcow2 header");
  map.Add(h.l1_table_offset, uint64_t{h.l1_size} * 8, "active L1 table");
  map.Add(h.refcount_table_offset, uint64_t{h.refcount_table_clusters} * cs, "refcount table");
  for (uint32_t i : reader.nonzero_entries()) {
    uint64_t offset = reader.table_entry(i) & kReftableOffsetMask;
    if (offset) map.Add(offset, cs, "refcount block");
  }
  map.Add(h.snapshots_offset, ctx.snapshots_size, "snapshot table");
  for (const SnapshotEntry& sn : ctx.snapshots) {
    map.Add(sn.l1_table_offset, uint64_t{sn.l1_size} * 8, "snapshot L1 table");
  }
  return map;
}

// QEMU's check_refblocks: every refcount block must be aligned, inside the image and referenced
// exactly once; anything else means the structure must be rebuilt.
void CheckRefblocks(Context& ctx, ReferenceCounter& counter, const RefcountReader& reader,
                    bool& rebuild) {
  const uint64_t cs = ctx.cluster_size();
  // An entry of 0 has nothing to check (no reserved bits, no block): only the others are seen.
  for (const uint64_t i : reader.nonzero_entries()) {
    const uint64_t raw = reader.table_entry(i);
    const uint64_t offset = raw & kReftableOffsetMask;
    const uint64_t entry_offset = ctx.header.refcount_table_offset + i * 8;
    if (raw & kReftableReservedMask) {
      ctx.Corruption(FindingKind::kReservedBits, entry_offset, "refcount table",
                     fmt::format("ERROR refcount table entry {} has reserved bits set", i));
      rebuild = true;
      continue;
    }
    if (!IsAligned(offset, cs)) {
      ctx.Corruption(FindingKind::kRefcountBlock, entry_offset, "refcount table",
                     fmt::format("ERROR refcount block {} is not cluster aligned; refcount table "
                                 "entry corrupted",
                                 i));
      rebuild = true;
      continue;
    }
    if (offset / cs >= counter.nb_clusters()) {
      // QEMU grows the file under -r all; rebuilding covers the same ground without writing a
      // block of zeros that nothing needs.
      ctx.Corruption(FindingKind::kRefcountBlock, offset, fmt::format("refcount block {}", i),
                     fmt::format("ERROR refcount block {} is outside image", i));
      if (ctx.fix_errors()) rebuild = true;
      continue;
    }
    if (offset == 0) continue;
    counter.Add(ctx, offset, cs, Owner::kRefblock);
    if (uint64_t refs = counter.Get(offset / cs); refs != 1) {
      ctx.Corruption(FindingKind::kRefcountBlock, offset, fmt::format("refcount block {}", i),
                     fmt::format("ERROR refcount block {} refcount={}", i, refs));
      rebuild = true;
    }
  }
}

// Where the active L1 table ends, if it starts inside the file and ends a cluster or more past
// its end: the reference ReferenceCounter::Add refuses (QEMU's rule), though the table is in use.
std::optional<uint64_t> ActiveL1EndPastEof(const Context& ctx) {
  const QcowHeader& h = ctx.header;
  const uint64_t end = h.l1_table_offset + uint64_t{h.l1_size} * 8;  // l1_size <= kMaxL1Entries
  if (h.l1_size == 0 || h.l1_table_offset >= ctx.file_size ||
      end < ctx.file_size + ctx.cluster_size()) {
    return std::nullopt;
  }
  return end;
}

// QEMU's calculate_refcounts.
Status CalculateRefcounts(Context& ctx, ReferenceCounter& counter, const RefcountReader& reader,
                          bool& rebuild) {
  const uint64_t cs = ctx.cluster_size();
  counter.Reset(DivRoundUp(ctx.file_size, cs), ctx.geo.refcount_max());
  MetadataMap metadata = BuildMetadataMap(ctx, reader);
  counter.Add(ctx, 0, cs, Owner::kHeader);
  RETURN_IF_ERROR(WalkL1(ctx, counter, metadata,
                         {ctx.header.l1_table_offset, ctx.header.l1_size, true, "active"}));
  // An active L1 table reaching past the end of the file from inside it is not counted, so its
  // clusters in the file look leaked: QEMU's -r all frees them (and discards them, losing the
  // entries there), or, when it rebuilds, puts a refcount block on them and stops at its own
  // overlap check. -r all rebuilds instead, whatever else it finds: the rebuild places the new
  // structure after the table (RebuildRefcountStructure), so the file then covers it, reading
  // zeros past the old end as QEMU reads them there, and the table is counted. The file grows by
  // at most the table's 32 MiB (QEMU's L1 limit) and the new refcount structure.
  if (ctx.fix_errors()) {
    if (std::optional<uint64_t> end = ActiveL1EndPastEof(ctx)) {
      ctx.Note(FindingKind::kPastEndOfFile, FindingSeverity::kInfo, ctx.header.l1_table_offset,
               "active L1 table",
               fmt::format("Repairing active L1 table: it ends at {:#x}, past the end of the file "
                           "({:#x}); the refcount structure is rebuilt after it",
                           *end, ctx.file_size),
               /*repaired=*/true);
      rebuild = true;
    }
  }
  for (size_t i = 0; i < ctx.snapshots.size(); ++i) {
    const SnapshotEntry& sn = ctx.snapshots[i];
    const std::string name = fmt::format("snapshot {}", sn.id);
    if (!IsAligned(sn.l1_table_offset, cs)) {
      ctx.Corruption(FindingKind::kSnapshotTable, sn.entry_offset, name,
                     fmt::format("ERROR snapshot {} ({}) l1_offset={:#x}: L1 table is not cluster "
                                 "aligned; snapshot table entry corrupted",
                                 sn.id, sn.name, sn.l1_table_offset));
      continue;
    }
    if (sn.l1_size > kMaxL1Entries) {
      ctx.Corruption(FindingKind::kSnapshotTable, sn.entry_offset, name,
                     fmt::format("ERROR snapshot {} ({}) l1_size={:#x}: L1 table is too large; "
                                 "snapshot table entry corrupted",
                                 sn.id, sn.name, sn.l1_size));
      continue;
    }
    RETURN_IF_ERROR(WalkL1(ctx, counter, metadata, {sn.l1_table_offset, sn.l1_size, false, name}));
  }
  counter.Add(ctx, ctx.header.snapshots_offset, ctx.snapshots_size, Owner::kSnapshotTable);
  counter.Add(ctx, ctx.header.refcount_table_offset,
              uint64_t{ctx.header.refcount_table_clusters} * cs, Owner::kReftable);
  RETURN_IF_ERROR(CountBitmapReferences(ctx, counter));
  CheckRefblocks(ctx, counter, reader, rebuild);
  return Status::Ok();
}

// Whether cluster i holds part of an active L1 table reaching past the end of the file: not
// counted, but in use, so not a leak to free (QEMU's -r leaks frees and discards it).
bool InUncountedActiveL1(const Context& ctx, uint64_t i) {
  const uint64_t cs = ctx.cluster_size();
  return ActiveL1EndPastEof(ctx) && i >= ctx.header.l1_table_offset / cs &&
         i < DivRoundUp(ctx.file_size, cs);
}

// QEMU's compare_refcounts for cluster i, given its on-disk refcount and its reference count.
// With `fix`, mismatches it may fix are written through `reader`.
void CompareCluster(Context& ctx, RefcountReader& reader, RepairMode fix, uint64_t i,
                    uint64_t refcount, uint64_t reference, bool& rebuild,
                    uint64_t& highest_cluster) {
  if (refcount > 0 || reference > 0) highest_cluster = i;
  if (refcount == reference) return;
  int64_t* num_fixed = nullptr;
  if (refcount == 0) {
    rebuild = true;
  } else if (refcount > reference && fix != RepairMode::kNone && !InUncountedActiveL1(ctx, i)) {
    num_fixed = &ctx.res.leaks_fixed;
  } else if (refcount < reference && fix == RepairMode::kAll) {
    num_fixed = &ctx.res.corruptions_fixed;
  }
  const bool low = refcount < reference;
  const char* prefix = num_fixed ? "Repairing" : low ? "ERROR" : "Leaked";
  std::string message =
      fmt::format("{} cluster {} refcount={} reference={}", prefix, i, refcount, reference);
  if (num_fixed && reader.Set(ctx, i, reference).ok()) {
    (*num_fixed)++;
    ctx.Note(low ? FindingKind::kRefcountTooLow : FindingKind::kLeak,
             low ? FindingSeverity::kCorruption : FindingSeverity::kLeak, i * ctx.cluster_size(),
             "refcount", std::move(message), /*repaired=*/true);
    return;
  }
  const FindingKind kind = refcount == 0 ? FindingKind::kRefcountZero
                           : low         ? FindingKind::kRefcountTooLow
                                         : FindingKind::kLeak;
  if (low) {
    ctx.Corruption(kind, i * ctx.cluster_size(), "refcount", std::move(message));
  } else {
    ctx.res.leaks++;
    ctx.Note(kind, FindingSeverity::kLeak, i * ctx.cluster_size(), "refcount", std::move(message));
  }
}

// The comparison of clusters [start, end), which share one refcount block: refcount_at(k) is the
// on-disk refcount of cluster start + k. Equal counts, nearly all of them, cost a few
// instructions; a template so that each block format gets its own tight loop.
template <typename RefcountAt>
void CompareBlock(Context& ctx, const ReferenceCounter& counter, RefcountReader& reader,
                  RepairMode fix, uint64_t start, uint64_t end, RefcountAt refcount_at,
                  bool& rebuild, uint64_t& highest_cluster) {
  uint64_t highest = highest_cluster;  // a local: stores through the reference would stay
  for (uint64_t i = start; i < end; ++i) {
    const uint64_t refcount = refcount_at(i - start);
    const uint64_t reference = counter.Get(i);
    if (refcount == reference) {
      if (refcount > 0) highest = i;
      continue;
    }
    CompareCluster(ctx, reader, fix, i, refcount, reference, rebuild, highest);
  }
  highest_cluster = highest;
}

// QEMU's compare_refcounts, one refcount block at a time: the block is looked up once and its
// entries compared in a tight loop; only clusters whose counts differ take CompareCluster.
void CompareRefcounts(Context& ctx, const ReferenceCounter& counter, RefcountReader& reader,
                      RepairMode fix, bool& rebuild, uint64_t& highest_cluster) {
  highest_cluster = 0;
  const uint64_t nb_clusters = counter.nb_clusters();
  const uint64_t per_block = ctx.geo.refcount_block_entries();
  for (uint64_t start = 0; start < nb_clusters; start += per_block) {
    const uint64_t end = std::min(nb_clusters, start + per_block);
    Result<const uint8_t*> block = reader.BlockData(ctx, start);
    if (!block.ok()) {
      // QEMU asks again for each cluster and reports each one it cannot get.
      for (uint64_t i = start; i < end; ++i) {
        Result<uint64_t> on_disk = reader.Get(ctx, i);
        if (!on_disk.ok()) {
          ctx.CheckError(i * ctx.cluster_size(), "refcount block",
                         fmt::format("Can't get refcount for cluster {}: Input/output error", i));
          continue;
        }
        CompareCluster(ctx, reader, fix, i, *on_disk, counter.Get(i), rebuild, highest_cluster);
      }
      continue;
    }
    const uint8_t* bytes = *block;
    if (!bytes) {
      if (counter.AllZero(start, end)) continue;  // no refcounts and no references
      CompareBlock(
          ctx, counter, reader, fix, start, end, [](uint64_t) { return uint64_t{0}; }, rebuild,
          highest_cluster);
    } else if (ctx.geo.refcount_order == 4) {  // 16-bit refcounts, the default
      CompareBlock(
          ctx, counter, reader, fix, start, end,
          [bytes](uint64_t k) -> uint64_t { return LoadBE16(bytes + k * 2); }, rebuild,
          highest_cluster);
    } else {
      const std::span<const uint8_t> entries(bytes, ctx.cluster_size());
      const uint32_t order = ctx.geo.refcount_order;
      CompareBlock(
          ctx, counter, reader, fix, start, end,
          [entries, order](uint64_t k) { return GetRefcountEntry(entries, k, order); }, rebuild,
          highest_cluster);
    }
  }
}

// The refcount of a data cluster, as the COPIED check reads it; nullopt if it cannot be read.
std::optional<uint64_t> DataRefcount(Context& ctx, RefcountReader& reader, uint64_t cluster) {
  if (std::optional<uint64_t> cached = reader.GetCached(ctx, cluster)) return cached;
  Result<uint64_t> looked_up = reader.Get(ctx, cluster);
  if (!looked_up.ok()) return std::nullopt;
  return *looked_up;
}

// The normal and preallocated entries of an L2 table's bytes, in order: the entries the COPIED
// check looks at.
MemoCopiedEntries ListAllocated(const Geometry& geo, std::span<const uint8_t> table) {
  MemoCopiedEntries allocated;
  const uint64_t entry_size = geo.l2_entry_size();
  ForEachNonZeroEntry(table.first(geo.l2_entries() * entry_size), entry_size, [&](size_t j) {
    const uint64_t entry = LoadBE64(&table[j * entry_size]);
    const ClusterType type = ClassifyL2Entry(entry, geo.extended_l2);
    if (type == ClusterType::kNormal || type == ClusterType::kZeroAlloc) {
      allocated.entries.push_back({static_cast<uint32_t>(j), entry});
    }
  });
  return allocated;
}

// The normal and preallocated entries of the active L2 table at l2_offset, from the memo (or
// read and kept there); null without a memo or a name for the table.
std::shared_ptr<const MemoCopiedEntries> AllocatedEntries(Context& ctx, uint64_t l2_offset) {
  const uint64_t cs = ctx.cluster_size();
  if (ctx.memo == nullptr || l2_offset > ctx.file_size || cs > ctx.file_size - l2_offset)
    return nullptr;
  std::optional<ContentName> name = ctx.device.NameContent(l2_offset, cs);
  if (!name) return nullptr;
  const CheckMemo::Key key{*name,
                           uint64_t{ctx.geo.cluster_bits} | uint64_t{ctx.geo.extended_l2} << 8,
                           CheckMemo::Kind::kCopiedEntries};
  if (auto kept = ctx.memo->FindCopied(key)) return kept;
  std::vector<uint8_t> table(cs);
  if (!ReadZeroFilled(ctx.device, ctx.file_size, l2_offset, table).ok()) return nullptr;
  return ctx.memo->PutCopied(key, ListAllocated(ctx.geo, table));
}

// QEMU's check_oflag_copied over the active tables.
Status CheckOflagCopied(Context& ctx, RefcountReader& reader, const MetadataMap& metadata) {
  bool repair = ctx.fix_errors() || (ctx.fix_leaks() && !ctx.res.check_errors &&
                                     !ctx.res.corruptions && !ctx.res.leaks);
  const uint64_t cs = ctx.cluster_size();
  const Geometry& geo = ctx.geo;
  ReadBuffer l2;  // sized when a table must be read
  // The L1 table is read a chunk at a time; entries [chunk_first, chunk_end) are in `chunk`.
  // Any repair write empties it, so every entry is read after the writes before it, as QEMU
  // reads it.
  std::vector<uint8_t> chunk;
  uint64_t chunk_first = 0;
  uint64_t chunk_end = 0;
  bool wrote = false;
  for (uint64_t i = 0; i < ctx.header.l1_size; ++i) {
    const uint64_t l1_entry_offset = ctx.header.l1_table_offset + i * 8;
    if (l1_entry_offset >= ctx.file_size) break;  // zeros from here on
    if (i >= chunk_end) {
      chunk_first = i;
      chunk_end = std::min<uint64_t>(ctx.header.l1_size, i + kL1ChunkBytes / 8);
      chunk.resize((chunk_end - chunk_first) * 8);
      RETURN_IF_ERROR(ReadZeroFilled(ctx.device, ctx.file_size, l1_entry_offset, chunk));
    }
    const uint64_t l1_entry = LoadBE64(&chunk[(i - chunk_first) * 8]);
    const uint64_t l2_offset = l1_entry & kL1OffsetMask;
    if (!l2_offset) continue;
    Result<uint64_t> refcount = reader.Get(ctx, l2_offset / cs);
    if (!refcount.ok()) continue;  // already reported by the comparison
    if ((*refcount == 1) != ((l1_entry & kOflagCopied) != 0)) {
      std::string msg = fmt::format(
          "{} OFLAG_COPIED L2 cluster: l1_index={} l1_entry={:x} "
          "refcount={}",
          repair ? "Repairing" : "ERROR", i, l1_entry, *refcount);
      if (repair) {
        RETURN_IF_ERROR(ctx.PrepareToWrite());
        uint8_t raw[8];
        StoreBE64(raw, *refcount == 1 ? l1_entry | kOflagCopied : l1_entry & ~kOflagCopied);
        RETURN_IF_ERROR(RepairWriteSync(ctx.device, l1_entry_offset, raw, IoTag::kL1Table));
        chunk_end = 0;
        ctx.Fixed(FindingKind::kCopiedFlagMismatch, l1_entry_offset, "active L1 table",
                  std::move(msg));
      } else {
        ctx.Corruption(FindingKind::kCopiedFlagMismatch, l1_entry_offset, "active L1 table",
                       std::move(msg));
      }
    }
    // The table's normal and preallocated entries: known from a memo (the table's bytes are
    // read only if one must be rewritten), or read here.
    std::shared_ptr<const MemoCopiedEntries> allocated = AllocatedEntries(ctx, l2_offset);
    bool have_table = allocated == nullptr;
    if (have_table) {
      l2.resize(cs);
      RETURN_IF_ERROR(ReadZeroFilled(ctx.device, ctx.file_size, l2_offset, l2));
      allocated = std::make_shared<const MemoCopiedEntries>(ListAllocated(geo, l2));
    }
    int64_t l2_dirty = 0;
    std::string l2_name;
    for (const auto& [j, entry] : allocated->entries) {
      const uint64_t data_cluster = (entry & kL2OffsetMask) >> geo.cluster_bits;
      std::optional<uint64_t> data_refcount = DataRefcount(ctx, reader, data_cluster);
      if (!data_refcount) continue;  // already reported by the comparison
      if ((*data_refcount == 1) == ((entry & kOflagCopied) != 0)) continue;
      if (l2_name.empty()) l2_name = fmt::format("active L2 table at {:#x}", l2_offset);
      std::string msg = fmt::format("{} OFLAG_COPIED data cluster: l2_entry={:x} refcount={}",
                                    repair ? "Repairing" : "ERROR", entry, *data_refcount);
      ctx.Corruption(FindingKind::kCopiedFlagMismatch, l2_offset + j * geo.l2_entry_size(), l2_name,
                     std::move(msg));
      if (repair) {
        if (!have_table) {
          l2.resize(cs);
          RETURN_IF_ERROR(ReadZeroFilled(ctx.device, ctx.file_size, l2_offset, l2));
          have_table = true;
        }
        StoreBE64(&l2[j * geo.l2_entry_size()],
                  *data_refcount == 1 ? entry | kOflagCopied : entry & ~kOflagCopied);
        l2_dirty++;
      }
    }
    if (l2_dirty == 0) continue;
    // QEMU's overlap check before the write: never write an "L2 table" over other metadata.
    if (!IsAligned(l2_offset, cs) || metadata.Find(l2_offset, cs)) {
      ctx.CheckError(l2_offset, l2_name,
                     "ERROR: Could not write L2 table; metadata overlap "
                     "check failed: Input/output error");
      return Status::IoError("metadata overlap check failed for L2 table");
    }
    RETURN_IF_ERROR(ctx.PrepareToWrite());
    RETURN_IF_ERROR(RepairWrite(ctx.device, l2_offset, l2, IoTag::kL2Table));
    wrote = true;
    chunk_end = 0;
    // These were counted as corruptions above; the write fixed them.
    ctx.res.corruptions -= l2_dirty;
    ctx.res.corruptions_fixed += l2_dirty;
    for (size_t k = ctx.finding_count() - static_cast<size_t>(l2_dirty); k < ctx.finding_count();
         ++k) {
      ctx.finding(k).repaired = true;
    }
  }
  if (wrote) RETURN_IF_ERROR(ctx.device.Flush());
  return Status::Ok();
}

}  // namespace

Status CheckRefcounts(Context& ctx, RefcountOutcome& outcome) {
  const uint64_t cs = ctx.cluster_size();
  if (DivRoundUp(ctx.file_size, cs) > static_cast<uint64_t>(INT32_MAX)) {
    ctx.CheckError(0, "image", "ERROR: the image has too many clusters to check");
    return Status::NotSupported("File too large");
  }
  RefcountReader reader;
  RETURN_IF_ERROR(reader.Load(ctx));
  ReferenceCounter counter;
  bool rebuild = false;
  RETURN_IF_ERROR(CalculateRefcounts(ctx, counter, reader, rebuild));
  const Counters pre_compare = ctx.res;
  const size_t pre_compare_findings = ctx.finding_count();
  uint64_t highest = 0;
  CompareRefcounts(ctx, counter, reader, RepairMode::kNone, rebuild, highest);
  outcome.rebuild = rebuild;
  ctx.annotate_overlaps = false;

  if (rebuild && ctx.fix_errors()) {
    const Counters old = ctx.res;
    ctx.Note(FindingKind::kRebuild, FindingSeverity::kInfo, ctx.header.refcount_table_offset,
             "refcount table", "Rebuilding refcount structure", /*repaired=*/true);
    for (size_t k = pre_compare_findings; k < ctx.finding_count(); ++k)
      ctx.finding(k).repaired = true;
    Status st = RebuildRefcountStructure(ctx, counter);
    if (!st.ok()) {
      ctx.CheckError(ctx.header.refcount_table_offset, "refcount table",
                     "ERROR rebuilding the refcount structure: " + st.message());
      return st;
    }
    outcome.rebuilt = true;
    ctx.res.corruptions = 0;
    ctx.res.leaks = 0;
    rebuild = false;
    RETURN_IF_ERROR(reader.Load(ctx));
    RETURN_IF_ERROR(CalculateRefcounts(ctx, counter, reader, rebuild));
    // The old table and blocks are leaks now; free them. Leaks that survive were introduced by
    // the rebuild itself and are reported as such.
    const Counters saved = ctx.res;
    ctx.res = Counters{};
    CompareRefcounts(ctx, counter, reader, RepairMode::kLeaks, rebuild, highest);
    RETURN_IF_ERROR(reader.Flush(ctx));
    if (rebuild) {
      ctx.Note(FindingKind::kRebuild, FindingSeverity::kInfo, ctx.header.refcount_table_offset,
               "refcount table", "ERROR rebuilt refcount structure is still broken");
    }
    const int64_t fresh_leaks = ctx.res.leaks;
    ctx.res = saved;
    if (ctx.res.corruptions < old.corruptions) {
      ctx.res.corruptions_fixed += old.corruptions - ctx.res.corruptions;
    }
    if (ctx.res.leaks < old.leaks) ctx.res.leaks_fixed += old.leaks - ctx.res.leaks;
    ctx.res.leaks += fresh_leaks;
  } else if (ctx.fix_leaks()) {
    if (rebuild) {
      ctx.CheckError(ctx.header.refcount_table_offset, "refcount table",
                     "ERROR need to rebuild refcount structures");
      return Status::IoError("need to rebuild refcount structures");
    }
    if (ctx.res.leaks || ctx.res.corruptions) {
      // Compare again, fixing; the first comparison's lines are superseded by "Repairing" ones.
      ctx.res = pre_compare;
      ctx.DropFindingsFrom(pre_compare_findings);
      CompareRefcounts(ctx, counter, reader, ctx.mode, rebuild, highest);
      Status st = reader.Flush(ctx);
      if (!st.ok()) {
        ctx.CheckError(0, "refcount block", "ERROR writing refcount blocks: " + st.message());
        return st;
      }
    }
  }
  MetadataMap metadata = BuildMetadataMap(ctx, reader);
  RETURN_IF_ERROR(CheckOflagCopied(ctx, reader, metadata));
  outcome.image_end_offset = (highest + 1) * cs;
  return Status::Ok();
}

}  // namespace crashsim::check
