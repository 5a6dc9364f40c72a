// A guest workload: the sequence of guest operations a crash test drives the image with, in
// a text form that reads like qemu-io commands and is embedded verbatim in traces:
//   write 0x10000 4096 p=17        (data: PatternByte(17, guest offset))
//   zero 0x0 65536 unmap
//   discard 0x20000 65536
//   flush
//   read 0x10000 4096              (checked against what the workload wrote so far)
//   snapshot                       (an internal snapshot; skipped on v2 and 1-bit refcounts)
//   delete-snapshot                (deletes the oldest internal snapshot; skipped if none)
//   apply-snapshot                 (reverts to the newest snapshot of the disk's current size;
//                                   skipped if none)
//   resize 3145728                 (the guest disk's new size: grown areas read as zeros)
//   reopen
// Data is position-dependent so that bytes that land at the wrong offset are caught.
#pragma once

#include <cstdint>
#include <ostream>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "engine/status.h"

namespace crashsim {

enum class WorkloadOpKind : uint8_t {
  kWrite,
  kZero,
  kDiscard,
  kFlush,
  kReopen,
  kRead,
  kSnapshot,
  kResize,
  kDeleteSnapshot,
  kApplySnapshot,
};
const char* WorkloadOpKindName(WorkloadOpKind kind);

struct WorkloadOp {
  WorkloadOpKind kind = WorkloadOpKind::kWrite;
  uint64_t offset = 0;
  uint64_t length = 0;
  uint32_t pattern = 0;  // writes: which data
  bool unmap = false;    // zero: also free the clusters
  // write: the whole clusters it covers are written compressed where they hold no data yet
  // (Image::WriteCompressed refuses the others, which are written plain, as are partial ones)
  bool compressed = false;
  uint64_t new_size = 0;  // resize: the guest disk's size after it

  bool TouchesData() const {
    return kind == WorkloadOpKind::kWrite || kind == WorkloadOpKind::kZero ||
           kind == WorkloadOpKind::kDiscard;
  }
  std::string ToText() const;
  bool operator==(const WorkloadOp&) const = default;
};

// Whether an op of this kind makes everything acknowledged before it durable when it completes,
// as a flush does: flush and reopen; a resize and every snapshot op, which flush (Image::Resize,
// engine/snapshot.h; guest_run.cc flushes when it skips one).
inline bool IsFlushLike(WorkloadOpKind kind) {
  switch (kind) {
    case WorkloadOpKind::kFlush:
    case WorkloadOpKind::kReopen:
    case WorkloadOpKind::kResize:
    case WorkloadOpKind::kSnapshot:
    case WorkloadOpKind::kDeleteSnapshot:
    case WorkloadOpKind::kApplySnapshot:
      return true;
    default:
      return false;
  }
}

struct Workload {
  uint64_t disk_size = 0;  // the guest disk's size before the first op (resize ops change it)
  std::vector<WorkloadOp> ops;

  std::string ToText() const;  // "disk 1048576\n" then one op per line
  // Parses the text form; errors name the line and what was expected.
  static Result<Workload> Parse(std::string_view text);
  // The disk's size before each op, then after the last: ops.size() + 1 values.
  std::vector<uint64_t> Sizes() const;
  // The smallest size the disk ever has: every crash state's disk holds at least this much.
  uint64_t MinSize() const;
  // Every range lies inside the disk as it is when its op runs, and every size is a positive
  // multiple of 512. Errors name the op.
  Status Validate() const;
  bool operator==(const Workload&) const = default;
};

// rapidcheck's counterexample printer.
void showValue(const Workload& workload, std::ostream& os);

// Patterns with this bit set make data a compressed write can shrink: each 512-byte sector
// begins with eight bytes that depend on the pattern and the sector's offset (so data at the
// wrong offset is still seen, sector by sector), and repeats one word of the pattern's after
// them. Other patterns are position-dependent noise, which does not compress.
inline constexpr uint32_t kCompressiblePattern = 1u << 31;

// The byte a write with `pattern` puts at guest offset `offset`.
uint8_t PatternByte(uint32_t pattern, uint64_t offset);
void FillPattern(uint32_t pattern, uint64_t offset, std::span<uint8_t> out);
// The index of the first byte of `got` that differs from the pattern written at `offset`, or
// got.size(): FillPattern and a compare without the buffer, stopping at the first difference.
size_t PatternMismatch(uint32_t pattern, uint64_t offset, std::span<const uint8_t> got);

}  // namespace crashsim
