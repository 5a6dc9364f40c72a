// Check and Repair: one pass of QEMU's qcow2_co_check_locked (open, snapshot table, refcounts,
// mark clean), and qemu-img's double check after a repair that fixed something.
#include "engine/check/check.h"

#include <fmt/format.h>

#include <algorithm>
#include <span>
#include <vector>

#include "engine/check/check_context.h"
#include "engine/check/device_io.h"
#include "engine/check/refcount_check.h"
#include "engine/check/snapshot_table.h"
#include "engine/coding.h"
#include "engine/image.h"

namespace crashsim {
namespace {

using check::Context;

struct PassOutcome {
  Status status;
  bool open_failed = false;
  bool not_qcow2 = false;
  uint64_t image_end_offset = 0;
  bool rebuild = false;
  bool rebuilt = false;
  bool marked_clean = false;
};

Status OpenHeader(Context& ctx, PassOutcome& out) {
  RETURN_IF_ERROR(check::RefreshFileSize(ctx));
  ASSIGN_OR_RETURN(std::vector<uint8_t> cluster0,
                   ReadHeaderArea(ctx.file_size, [&](uint64_t offset, std::span<uint8_t> bytes) {
                     return ctx.device.Read(offset, bytes);
                   }));
  if (cluster0.size() < 4 || LoadBE32(cluster0.data()) != kQcowMagic) out.not_qcow2 = true;
  // Where the tables lie is for the walkers to report (QEMU reads zeros past EOF and reports
  // references there), not for the decoder to refuse.
  ASSIGN_OR_RETURN(ctx.header, DecodeHeader(cluster0, ctx.file_size,
                                            {.for_check = true, .tables_checked_by_walk = true}));
  ctx.geo = Geometry{ctx.header.cluster_bits, ctx.header.refcount_order, ctx.header.extended_l2()};
  return Status::Ok();
}

// qemu-img opens the backing chain with the image: a chain that does not open fails the check
// before anything is read or repaired. The chain is closed again at once; the walk never reads
// through it.
Status OpenBackingChain(const Context& ctx, const BackingOpener& open_backing) {
  if (!open_backing || !ctx.header.has_backing_file()) return Status::Ok();
  OpenOptions options;
  options.read_only = true;
  options.open_backing = open_backing;
  return OpenBacking(ctx.header, options).status();
}

// Why an entry the repair would have to trust cannot be: the first such entry and everything
// after it are dropped, because entries are variable-length and nothing after a bad one can be
// located reliably.
std::string UntrustedSnapshotReason(const Context& ctx, const SnapshotTable& table, size_t i) {
  const SnapshotEntry& sn = table.entries[i];
  if (std::find(table.extra_data_truncated.begin(), table.extra_data_truncated.end(), i) !=
      table.extra_data_truncated.end()) {
    return "too much extra metadata";
  }
  if (ctx.header.version >= 3 && sn.extra_data_size < kSnapshotExtraDataMinV3) {
    return "entry is incomplete";
  }
  Status st = ValidateSnapshotL1(sn, static_cast<uint32_t>(i), ctx.cluster_size(), ctx.file_size);
  return st.ok() ? "" : st.message();
}

// QEMU's qcow2_check_read_snapshot_table, with -r all dropping untrustworthy snapshots by
// lowering nb_snapshots (a 4-byte write + flush: the dropped entries and their clusters become
// leaks, which the refcount pass frees).
Status CheckSnapshotTable(Context& ctx) {
  const QcowHeader& h = ctx.header;
  SnapshotTableOptions options{h.version, ctx.cluster_size(), h.size / 512 * 512, ctx.fix_errors()};
  Result<SnapshotTable> table =
      ReadSnapshotTable(ctx.device, ctx.file_size, h.snapshots_offset, h.nb_snapshots, options);
  if (!table.ok()) {
    ctx.CheckError(h.snapshots_offset, "snapshot table",
                   "ERROR failed to read the snapshot table: " + table.status().message());
    return table.status();
  }
  size_t keep = table->entries.size();
  std::string why = table->overhanging_dropped ? "snapshot table is too big" : "";
  if (ctx.fix_errors()) {
    for (size_t i = 0; i < table->entries.size(); ++i) {
      std::string reason = UntrustedSnapshotReason(ctx, *table, i);
      if (!reason.empty()) {
        keep = i;
        why = reason;
        break;
      }
    }
  } else if (h.version >= 3) {
    for (size_t i = 0; i < table->entries.size(); ++i) {
      if (table->entries[i].extra_data_size < kSnapshotExtraDataMinV3) {
        ctx.Corruption(FindingKind::kSnapshotTable, table->entries[i].entry_offset,
                       "snapshot table",
                       fmt::format("ERROR snapshot table entry {} is incomplete", i));
      }
    }
  }
  if (keep < h.nb_snapshots) {
    RETURN_IF_ERROR(ctx.PrepareToWrite());
    uint8_t count[4];
    StoreBE32(count, static_cast<uint32_t>(keep));
    RETURN_IF_ERROR(check::RepairWriteSync(ctx.device, 60, count, IoTag::kHeader));
    const uint64_t dropped_offset =
        keep < table->entries.size() ? table->entries[keep].entry_offset : h.snapshots_offset;
    ctx.Fixed(FindingKind::kSnapshotTable, dropped_offset, "snapshot table",
              fmt::format("Repairing snapshot table: dropped snapshots {}..{} of {} ({})", keep,
                          h.nb_snapshots - 1, h.nb_snapshots, why));
    ctx.header.nb_snapshots = static_cast<uint32_t>(keep);
    table->entries.resize(keep);
  }
  ctx.snapshots = std::move(table->entries);
  ctx.snapshots_size = ctx.snapshots.empty()   ? 0
                       : keep < h.nb_snapshots ? ctx.snapshots.back().entry_end - h.snapshots_offset
                                               : table->table_size;
  return Status::Ok();
}

// An active L1 table at offset 0 is the header read as L1 entries: QEMU's check walks it so, and
// its repair leaves it there, since the header cannot be rewritten as a table. -r all moves the
// table, entry for entry, to fresh clusters at the end of the file (where a rebuild puts its
// structures), so the walk that follows checks and repairs the same entries, and the guest reads
// what QEMU reads, without a write into the header. The moved table has refcount 0, so that
// walk rebuilds the refcount structure. Crash safety: the image is marked dirty first, and the
// copy is written and flushed before the 12-byte header switch (write + flush).
Status MoveActiveL1OffHeader(Context& ctx) {
  const QcowHeader& h = ctx.header;
  if (!ctx.fix_errors() || h.l1_size == 0 || h.l1_table_offset != 0) return Status::Ok();
  const uint64_t cs = ctx.cluster_size();
  const uint64_t l1_bytes = uint64_t{h.l1_size} * 8;  // at most 32 MiB (kMaxL1Entries)
  std::vector<uint8_t> table(AlignUp(l1_bytes, cs), 0);
  // Read before the dirty bit is set: it lands inside the table, and the copy is of what QEMU
  // walks.
  RETURN_IF_ERROR(
      check::ReadZeroFilled(ctx.device, ctx.file_size, 0, std::span(table).first(l1_bytes)));
  const uint64_t new_offset = AlignUp(ctx.file_size, cs);
  RETURN_IF_ERROR(ctx.PrepareToWrite());
  RETURN_IF_ERROR(check::RepairWrite(ctx.device, new_offset, table, IoTag::kL1Table));
  RETURN_IF_ERROR(ctx.device.Flush());
  uint8_t pointer[12];
  StoreBE32(pointer, h.l1_size);
  StoreBE64(pointer + 4, new_offset);
  RETURN_IF_ERROR(check::RepairWriteSync(ctx.device, kL1SizeOffset, pointer, IoTag::kHeader));
  ctx.header.l1_table_offset = new_offset;
  ctx.Fixed(FindingKind::kMisplacedTable, 0, "active L1 table",
            fmt::format("Repairing active L1 table: moved from offset 0 (the qcow2 header) to "
                        "{:#x}",
                        new_offset));
  return check::RefreshFileSize(ctx);
}

// qcow2_mark_clean + qcow2_mark_consistent: the last write of a successful repair.
Status MarkClean(Context& ctx, PassOutcome& out) {
  const uint64_t bits = kIncompatDirty | kIncompatCorrupt;
  if (ctx.header.version < 3 || !(ctx.header.incompatible_features & bits)) return Status::Ok();
  // What this check found consistent may still sit in the disk's volatile cache, written by a
  // process that died or failed before its own flush: make it durable before the header says
  // the image is clean, or a power loss can keep the clean header and lose the rest (as QEMU's
  // qcow2_mark_clean flushes first). Found by the I/O-error sweep.
  RETURN_IF_ERROR(ctx.device.Flush());
  uint8_t bytes[8];
  StoreBE64(bytes, ctx.header.incompatible_features & ~bits);
  RETURN_IF_ERROR(
      check::RepairWriteSync(ctx.device, kIncompatibleFeaturesOffset, bytes, IoTag::kHeader));
  ctx.header.incompatible_features &= ~bits;
  out.marked_clean = true;
  return Status::Ok();
}

// One pass; `open_backing` is unset for the double check (the chain opened for the first).
Status RunPassSteps(Context& ctx, PassOutcome& out, const BackingOpener& open_backing) {
  Status opened = OpenHeader(ctx, out);
  if (opened.ok()) opened = OpenBackingChain(ctx, open_backing);
  if (!opened.ok()) {
    out.open_failed = true;
    return opened;
  }
  const uint64_t cs = ctx.cluster_size();
  ctx.bfi.total_clusters = DivRoundUp(ctx.header.size / 512 * 512, cs);
  RETURN_IF_ERROR(CheckSnapshotTable(ctx));
  RETURN_IF_ERROR(MoveActiveL1OffHeader(ctx));
  check::RefcountOutcome refcounts;
  Status st = check::CheckRefcounts(ctx, refcounts);
  out.rebuild = refcounts.rebuild;
  out.rebuilt = refcounts.rebuilt;
  out.image_end_offset = refcounts.image_end_offset;
  RETURN_IF_ERROR(st);
  if (ctx.fix_leaks() && ctx.res.check_errors == 0 && ctx.res.corruptions == 0) {
    RETURN_IF_ERROR(MarkClean(ctx, out));
  }
  return Status::Ok();
}

void CopyCounters(const Context& ctx, CheckReport& report) {
  report.corruptions = ctx.res.corruptions;
  report.leaks = ctx.res.leaks;
  report.check_errors = ctx.res.check_errors;
  report.total_clusters = ctx.bfi.total_clusters;
  report.allocated_clusters = ctx.bfi.allocated_clusters;
  report.fragmented_clusters = ctx.bfi.fragmented_clusters;
  report.compressed_clusters = ctx.bfi.compressed_clusters;
}

}  // namespace

const char* FindingKindName(FindingKind kind) {
  switch (kind) {
    case FindingKind::kLeak:
      return "leak";
    case FindingKind::kRefcountTooLow:
      return "refcount-too-low";
    case FindingKind::kRefcountZero:
      return "refcount-zero";
    case FindingKind::kCopiedFlagMismatch:
      return "oflag-copied";
    case FindingKind::kPastEndOfFile:
      return "past-end-of-file";
    case FindingKind::kUnaligned:
      return "unaligned";
    case FindingKind::kReservedBits:
      return "reserved-bits";
    case FindingKind::kInvalidEntry:
      return "invalid-entry";
    case FindingKind::kRefcountOverflow:
      return "refcount-overflow";
    case FindingKind::kRefcountBlock:
      return "refcount-block";
    case FindingKind::kOverlap:
      return "overlap";
    case FindingKind::kMisplacedTable:
      return "misplaced-table";
    case FindingKind::kSnapshotTable:
      return "snapshot-table";
    case FindingKind::kBitmap:
      return "bitmap";
    case FindingKind::kDroppedMapping:
      return "dropped-mapping";
    case FindingKind::kRebuild:
      return "rebuild";
    case FindingKind::kCheckError:
      return "check-error";
  }
  return "?";
}

CheckReport Check(BlockDevice& device, CheckOptions options) {
  CheckReport report;
  Context ctx(device, options.repair, report.findings);
  ctx.memo = options.memo;
  PassOutcome out;
  out.status = RunPassSteps(ctx, out, options.open_backing);
  report.status = out.status;
  report.open_failed = out.open_failed;
  report.not_qcow2 = out.not_qcow2;
  report.rebuild = out.rebuild;
  report.rebuilt = out.rebuilt;
  report.marked_clean = out.marked_clean;
  CopyCounters(ctx, report);
  report.corruptions_fixed = ctx.res.corruptions_fixed;
  report.leaks_fixed = ctx.res.leaks_fixed;
  report.image_end_offset = out.image_end_offset;
  if (!out.status.ok() || options.repair == RepairMode::kNone ||
      (report.corruptions_fixed == 0 && report.leaks_fixed == 0)) {
    return report;
  }
  // "Double checking the fixed image now...": a read-only pass whose counts are the result.
  std::vector<Finding> second_findings;
  Context second(device, RepairMode::kNone, second_findings);
  second.memo = options.memo;
  PassOutcome second_out;
  second_out.status = RunPassSteps(second, second_out, /*open_backing=*/{});
  for (Finding& f : second_findings) {
    f.pass = CheckPass::kDoubleCheck;
    report.findings.push_back(std::move(f));
  }
  report.double_checked = true;
  report.status = second_out.status;
  CopyCounters(second, report);
  report.image_end_offset = second_out.image_end_offset;
  return report;
}

CheckReport Repair(BlockDevice& device, RepairMode mode, check::CheckMemo* memo) {
  return Check(device, CheckOptions{.repair = mode, .memo = memo});
}

}  // namespace crashsim
