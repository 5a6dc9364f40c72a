// The qcow2 checker and repairer: the library behind `crashsim check`, the properties, and the
// automatic repair of a dirty image at a read-write open. It works on a BlockDevice with its own
// table walkers, as `qemu-img check` does, and never through the engine's Image:
//
//   Check  recomputes every host cluster's reference count from the structures that point at it
//          (header, active L1/L2, snapshot table and each snapshot's L1/L2, refcount table and
//          blocks, bitmap directory/tables/data, compressed spans) into an in-memory table sized
//          by the file's cluster count (never by the virtual size) and diffs it against the
//          on-disk refcounts, collecting every finding with its offset and structure.
//   Repair is the same walk with fixing enabled (qemu-img check -r leaks|all), followed, when
//          anything was fixed, by a second read-only check whose counts are returned.
//
// Counters, messages and exit codes follow qemu-img 7.2 (qcow2.md §3). Where qemu-img's repair
// leaves a corruption it cannot fix (entries past EOF, unaligned offsets), -r all drops the
// untrustworthy L1/L2 entry instead and reports the guest range it dropped. An active L1 table
// that reaches past the end of the file from inside it makes -r all rebuild the refcount
// structure after the table, so that the file covers it (qemu-img frees its clusters in the file
// as leaks, or stops at its own overlap check; docs/fuzzing.md).
//
// Durability: every repair write carries DurableStep::kRepair and follows the engine's ordering
// rules. A v3 image is marked dirty (write + flush) before the first repair write, so a crash at
// any point leaves an image that the next repair (or read-write open) fixes; a rebuild writes the
// new refcount blocks and table to fresh clusters past the end of the file and flushes them
// before the 12-byte header switch (write + flush), and only then frees the old structures; the
// dirty and corrupt bits are cleared last (write + flush), and only after a repair that left no
// corruptions and no check errors.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "engine/block_device.h"
#include "engine/options.h"

namespace crashsim {

enum class RepairMode : uint8_t {
  kNone,   // check only: the device is never written
  kLeaks,  // -r leaks: free leaked clusters (refcount > references)
  kAll,    // -r all: also fix corruptions, rebuilding the refcount structure if needed
};

enum class FindingKind : uint8_t {
  kLeak,                // refcount > references ("Leaked cluster N refcount=R reference=F")
  kRefcountTooLow,      // 0 < refcount < references ("ERROR cluster N refcount=R reference=F")
  kRefcountZero,        // refcount 0 on a used cluster; forces a rebuild
  kCopiedFlagMismatch,  // COPIED disagrees with refcount == 1
  kPastEndOfFile,       // a reference to a region one cluster or more past the end of the file
  kUnaligned,           // an L2 table or data cluster offset that is not cluster aligned
  kReservedBits,        // reserved bits set in an L1, L2 or refcount table entry
  kInvalidEntry,        // compressed with COPIED, bad subcluster bitmap, bad bitmap table entry
  kRefcountOverflow,    // more references than refcount_bits can count
  kRefcountBlock,       // a refcount table entry or block that cannot be trusted; forces a rebuild
  kOverlap,             // two structures share a cluster (annotation; the refcount finding counts)
  kMisplacedTable,      // a table where another structure lives: the active L1 table at offset 0
  kSnapshotTable,       // the snapshot table or a snapshot entry is damaged
  kBitmap,              // the bitmap directory or a bitmap table is damaged
  kDroppedMapping,      // repair dropped an untrustworthy entry: guest_offset/guest_length lost
  kRebuild,             // "Rebuilding refcount structure"
  kCheckError,          // the check could not read, write or compute something
};
const char* FindingKindName(FindingKind kind);

// How a finding is counted, as in qemu-img's summary.
enum class FindingSeverity : uint8_t { kCorruption, kLeak, kCheckError, kInfo };

// Where a finding was seen.
enum class CheckPass : uint8_t {
  kFirst,        // the check, or the fixing pass of a repair
  kDoubleCheck,  // the read-only check after a repair that fixed something
};

struct Finding {
  FindingKind kind = FindingKind::kCheckError;
  FindingSeverity severity = FindingSeverity::kInfo;
  uint64_t host_offset = 0;   // the cluster or entry the finding is about
  std::string structure;      // "active L2 table at 0x40000", "refcount block 0", ...
  std::string message;        // the line qemu-img prints: "ERROR cluster 5 refcount=0 reference=1"
  bool repaired = false;      // fixed by this repair ("Repairing ..." lines)
  uint64_t guest_offset = 0;  // kDroppedMapping: the guest range the repair dropped
  uint64_t guest_length = 0;
  CheckPass pass = CheckPass::kFirst;
};

struct CheckReport {
  // Not ok when the check could not complete: the image could not be opened (bad header, QEMU
  // limit exceeded, unknown incompatible feature), an I/O error, or -r leaks on an image that
  // needs a rebuild. qemu-img then prints no summary and exits 1.
  Status status;
  // The status says why the image could not be opened (header, QEMU limits, backing chain):
  // qemu-img then reports "Could not open '<image>': <reason>" and checks nothing.
  bool open_failed = false;
  bool not_qcow2 = false;  // no qcow2 magic: "This image format does not support checks" (63)

  std::vector<Finding> findings;

  // qemu-img's counters. After a repair that fixed something these describe the double check,
  // and the *_fixed counters the repair.
  int64_t corruptions = 0;
  int64_t leaks = 0;
  int64_t check_errors = 0;
  int64_t corruptions_fixed = 0;
  int64_t leaks_fixed = 0;
  uint64_t image_end_offset = 0;  // (highest cluster with a refcount or a reference + 1) * cluster
  uint64_t total_clusters = 0;    // virtual size in clusters
  uint64_t allocated_clusters = 0;
  uint64_t fragmented_clusters = 0;
  uint64_t compressed_clusters = 0;

  bool rebuild = false;         // QEMU's rebuild flag: the refcount structure must be rebuilt
  bool rebuilt = false;         // the repair rebuilt it
  bool double_checked = false;  // a repair fixed something and re-checked the image
  bool marked_clean = false;    // the repair cleared the dirty and corrupt bits
};

namespace check {
class CheckMemo;
}

struct CheckOptions {
  RepairMode repair = RepairMode::kNone;
  // Reuse what earlier checks derived from tables with the same bytes (check/check_memo.h):
  // same report, less work, on devices that name their bytes. Used by one thread at a time.
  check::CheckMemo* memo = nullptr;
  // Opens the image's backing file by name. When set, an image with a backing file is checked
  // only if its backing chain opens, as qemu-img opens the whole chain before it checks (and
  // fails with "Could not open backing file" otherwise). Unset: the chain is not looked at.
  BackingOpener open_backing = nullptr;
};

// qemu-img check [-r leaks|all]: checks, repairs if asked, and double-checks after a repair that
// fixed something. Never fails as a call: problems are in the report.
CheckReport Check(BlockDevice& device, CheckOptions options = {});

// Check(device, {.repair = mode, .memo = memo}).
CheckReport Repair(BlockDevice& device, RepairMode mode, check::CheckMemo* memo = nullptr);

// --- Output (qemu-img 7.2 text) ---

// The per-finding lines qemu-img writes to stderr, in order, each ending in '\n'; a repair's
// double check is included. Why a check failed is not among them: see CheckFailure.
std::string FormatCheckFindings(const CheckReport& report);

// The one error qemu-img reports (after its program name) when a check gives no verdict, empty
// when it gave one: "Check failed: <reason>" when it did not complete, "Check failed" when it
// had check errors. Not for open failures (report.open_failed), which qemu-img reports as
// "Could not open '<image>': <reason>", nor for a file that is not qcow2.
std::string CheckFailure(const CheckReport& report);

// What `qemu-img check` writes to stdout in human mode: the "The following inconsistencies were
// found and repaired" block after a repair, then the summary ("No errors were found on the
// image." or the error/leak/internal-error paragraphs), the allocation line and the image end
// offset. Empty when the check did not complete (7.2 prints no summary then).
std::string FormatCheckHuman(const CheckReport& report);

// What `qemu-img check --output=json` writes: qemu-img's keys in qemu-img's order, zero-valued
// optional keys left out, "format" always "qcow2". Empty when the check did not complete.
std::string FormatCheckJson(const CheckReport& report, const std::string& filename);

// qemu-img check's exit code: 0 clean or repaired, 1 the check did not complete (or check
// errors), 2 corruptions, 3 only leaks, 63 not a qcow2 image.
int CheckExitCode(const CheckReport& report);

}  // namespace crashsim
