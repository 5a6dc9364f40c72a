// A crash trace: everything needed to rebuild one crash state of one run and to say what the
// crash property found there, in a self-contained, versioned, line-oriented text form (.cstrace,
// traces/FORMAT.md). A trace carries the guest workload (whose write data is a pattern recipe,
// so it stays small), the device-op log of the reference run (with a hash of each write's bytes
// instead of the bytes: replay regenerates the data by re-running the workload and verifies it),
// the exact crash state, an engine-independent description of the crash point, and the verdict.
//
// The reader trusts nothing: every field is validated and bounded before use, and an error names
// the line and byte offset and what was expected there. A checksum on the last line catches
// truncation and flipped bytes that still parse; a newer format version is refused up front.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "engine/block_device.h"
#include "engine/options.h"
#include "engine/status.h"
#include "properties/crash_check.h"
#include "properties/workload.h"
#include "simdisk/crash_state.h"
#include "simdisk/fates.h"
#include "simdisk/fault_plan.h"
#include "simdisk/recording.h"
#include "traces/trace_settings.h"

namespace crashsim::traces {

// The newest version this build reads. Traces without embedded data are still written as
// version 1 (readable by older builds); traces of third-party runs (EmbeddedRun) are version 2.
inline constexpr uint32_t kTraceFormatVersion = 2;
inline constexpr uint32_t kTraceFormatVersionEmbedded = 2;
// Bounds the reader enforces before allocating anything from a trace's numbers.
inline constexpr uint64_t kMaxTraceDiskSize = uint64_t{1} << 30;  // guest disk: 1 GiB
inline constexpr uint64_t kMaxTraceOps = uint64_t{1} << 22;       // guest ops, device ops
inline constexpr size_t kMaxTraceLineLength = size_t{1} << 16;    // bytes per line

// One device operation of the reference run, as the trace records it (no data bytes).
struct TraceOp {
  simdisk::OpKind kind = simdisk::OpKind::kRead;
  uint64_t offset = 0;  // read/write: byte offset; resize: new size
  uint64_t length = 0;  // read/write: bytes
  bool fua = false;
  bool honoured = true;  // flush / FUA reached the medium
  IoTag tag = IoTag::kUnknown;
  uint8_t step = 0;        // DurableStep when the recorder knew it; 0 otherwise
  uint64_t data_hash = 0;  // writes: simdisk HashBytes of the data
  uint64_t guest_op = simdisk::kNoGuestOp;
  StatusCode status = StatusCode::kOk;

  bool ChangesOrOrders() const {  // a write, flush or resize: what crash points count
    return kind == simdisk::OpKind::kWrite || kind == simdisk::OpKind::kFlush ||
           kind == simdisk::OpKind::kResize;
  }
  bool operator==(const TraceOp&) const = default;
};

TraceOp TraceOpFrom(const simdisk::OpRecord& op);
// A change op's class for PortablePoint::last: the write's IoTag name, "flush" or "resize".
std::string ChangeClass(const TraceOp& op);
// "write 0x10000+4096 fua tag=L2 hash=00ff00ff00ff00ff guest=3" (without the sequence number).
std::string TraceOpToText(const TraceOp& op);

// Where the crash happened, without naming device ops: after guest event `anchor` (the begin or
// the acknowledgement of guest op `guest`, or the start of the run) and `changes` more device
// writes, flushes and resizes, the last of which was the `last_index`-th op of class `last`
// since the anchor (a write's qcow2 structure, "flush" or "resize"). Another engine build maps
// it onto its own recording by `last` first (an engine that adds a dirty-bit write still crashes
// "right after the first L1 write of guest op 0"), and by the count when `last` is not found.
struct PortablePoint {
  enum class Anchor : uint8_t { kStart, kBegin, kAck };
  Anchor anchor = Anchor::kStart;
  uint64_t guest = 0;       // meaningless for kStart
  uint64_t changes = 0;     // device writes/flushes/resizes completed since the anchor
  std::string last;         // class of the last of them; empty when changes == 0
  uint64_t last_index = 0;  // 1-based occurrence of that class since the anchor

  // "after=ack guest=3 changes=2 last=L2#1", "after=start changes=0"
  std::string ToText() const;
  bool operator==(const PortablePoint&) const = default;
};

// The properties' outcomes, as trace words: clean, leaks-only, dirty-repaired, failure.
const char* VerdictName(Outcome outcome);
std::optional<Outcome> ParseVerdict(std::string_view word);

// A third-party writer's run (format version 2): the target, the medium the run started from
// (the image the target's create command made) and every successful device write's bytes, so
// that replay rebuilds the crash state from the trace alone, without re-running anything.
struct EmbeddedRun {
  std::string target;          // "qemu"
  std::string target_version;  // "7.2.22" (free text, one line)
  uint64_t medium_size = 0;    // the initial medium's size in bytes
  // Its nonzero contents, as (offset, bytes) extents in increasing offset order.
  std::vector<std::pair<uint64_t, std::vector<uint8_t>>> medium;
  // Indexed by device op seq: the bytes of each successful write; empty for every other op.
  std::vector<std::vector<uint8_t>> write_data;
  bool operator==(const EmbeddedRun&) const = default;
};

// Bounds on embedded data: the initial medium, and the raw bytes per data line (FORMAT.md).
inline constexpr uint64_t kMaxTraceMediumSize = uint64_t{1} << 32;
inline constexpr uint64_t kTraceDataPiece = 32768;

struct Trace {
  uint32_t format_version = 1;  // 1, or kTraceFormatVersionEmbedded with `embedded`
  std::string crashsim_version;
  std::vector<std::string> comments;  // "# ..." lines of the header, without "# "
  ExploreSettings settings;
  Workload workload;
  std::vector<TraceOp> device_ops;  // the reference run's log, seq = index
  simdisk::CrashState state;
  PortablePoint portable_point;
  Outcome verdict = Outcome::kClean;
  bool dirty = false;                   // the dirty bit as the check found it at the crash
  std::string detail;                   // failures: what the property found
  std::optional<EmbeddedRun> embedded;  // set: a third-party run whose data the trace carries

  // The text form (FORMAT.md), ending with the checksum line.
  std::string ToText() const;
  // Reads the text form. `name` prefixes error messages ("t.cstrace:12 (byte 340): ...").
  static Result<Trace> Parse(std::string_view text, std::string_view name = "trace");
  bool operator==(const Trace&) const = default;
};

// FNV-1a 64 of `text`: the trace checksum (FORMAT.md, "end").
uint64_t TraceChecksum(std::string_view text);

// Reads and parses a trace file; errors name the file.
Result<Trace> ReadTraceFile(const std::string& path);
// Writes `trace` to `path`, replacing it only once whole (WriteFileAtomically); errors name it.
Status WriteTraceFile(const std::string& path, const Trace& trace);

}  // namespace crashsim::traces
