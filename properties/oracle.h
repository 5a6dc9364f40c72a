// The guest-data oracle: given when each guest operation began, was acknowledged and became
// durable (in device-op sequence numbers), it decides whether guest content read from a crashed
// (or repaired) image is legal at crash point N:
//   every byte reads as its last durable value, or as the value of an operation issued after
//   it; never garbage, never bytes from another offset (data is position-dependent).
// Durability is the cache mode's promise to the guest, not what the engine did: writethrough and
// directsync promise each write at its acknowledgement; writeback and none at the
// acknowledgement of the next flush (or reopen); unsafe promises nothing across a power loss.
// An op the guest was told failed (an injected I/O error) is never promised, and a failed reopen
// (the engine dropped without a clean close) voids the promise of what was not yet durable.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "engine/options.h"
#include "engine/status.h"
#include "properties/initial_content.h"
#include "properties/workload.h"
#include "simdisk/crash_state.h"
#include "simdisk/recording.h"

namespace crashsim {

inline constexpr uint64_t kNever = UINT64_MAX;

struct OpTiming {
  uint64_t begin = kNever;    // device-op seq of the guest op's begin event
  uint64_t ack = kNever;      // seq of its acknowledgement
  uint64_t durable = kNever;  // seq from which the guest is promised it survives
};

// Fills in `durable` for each op from `begin`/`ack` and the cache mode's contract.
void AssignDurability(const Workload& workload, CacheMode mode, simdisk::CrashKind crash,
                      std::vector<OpTiming>& timings);

// What the oracle's verdict at a crash point depends on: which ops began before it and which are
// durable before it. Ops begin in order and become durable in order, so two counts say it.
struct DataWindow {
  uint64_t begun = 0;
  uint64_t durable = 0;
  bool operator==(const DataWindow&) const = default;
};

struct DataViolation {
  uint64_t guest_offset = 0;
  std::string message;
};

// How a guest range of an image reads without reading it, from the image's mapping: an
// unmapped cluster as the initial content (zeros, or the backing file, which holds it), a zero
// cluster as zeros; data must be read.
enum class ImpliedContent : uint8_t { kRead, kInitial, kZero };
struct ImpliedRun {
  uint64_t end = 0;  // the run starting at the offset asked for ends here
  ImpliedContent content = ImpliedContent::kRead;
};
// The run starting at a guest offset.
using ImpliedRuns = std::function<ImpliedRun(uint64_t offset)>;

class GuestOracle {
 public:
  // `initial`: the guest content before the workload (zeros, or the backing file's content).
  // `snapshots`: the image can hold internal snapshots, so apply-snapshot ops revert (to the
  // content the snapshot op they name saw) instead of being skipped.
  GuestOracle(const Workload& workload, std::vector<OpTiming> timings, InitialContent initial,
              bool snapshots = false);

  using Reader = std::function<Status(uint64_t offset, std::span<uint8_t> data)>;
  // Holds a disk of `virtual_size` bytes to the sizes legal at the crash point, then reads every
  // range the workload touched, up to that size, through `read` and returns the first illegal
  // byte, if any. Ranges no op touched must read as the initial content: CheckUntouched holds
  // them to it.
  // With `implied`, a run whose implied content is legal is not read, so the cost follows the
  // clusters the image maps, not the length of the ranges (a resize's can be most of the disk);
  // reads go a chunk at a time. The verdict is the same either way.
  Result<std::optional<DataViolation>> Check(uint64_t crash_point, uint64_t virtual_size,
                                             const Reader& read,
                                             const ImpliedRuns* implied = nullptr) const;
  // Whether snapshot ops take effect: the image can hold snapshots.
  bool takes_snapshots() const { return snapshots_; }
  // The snapshot op whose snapshot is named `name` (SnapshotName), if the image holds snapshots
  // and some op took one by that name.
  std::optional<uint64_t> SnapshotOpNamed(const std::string& name) const;
  // Like Check, for the content of the snapshot `snapshot_op` took, read through `read`: each
  // range the workload touched must hold what it held when the snapshot was taken (at any crash
  // point: a snapshot's content never changes), and the snapshot's disk that op's size.
  Result<std::optional<DataViolation>> CheckSnapshot(uint64_t snapshot_op, uint64_t virtual_size,
                                                     const Reader& read,
                                                     const ImpliedRuns* implied = nullptr) const;
  // Whether [begin, end) reading as `content` (kInitial or kZero) is legal at the crash point,
  // touched pieces and untouched ones alike.
  bool ImpliedLegal(uint64_t crash_point, uint64_t begin, uint64_t end,
                    ImpliedContent content) const;
  // The guest disk's legal sizes at the crash point: the one the last durable resize (or the
  // workload's start) left, and that of each resize begun since.
  std::vector<uint64_t> LegalSizes(uint64_t crash_point) const;
  // A violation if `virtual_size` is not one of LegalSizes(crash_point).
  std::optional<DataViolation> CheckSize(uint64_t crash_point, uint64_t virtual_size) const;
  // The guest range op `index` changes (a data op's; a resize's, between the old and new end:
  // zeros where it grows, discarded where it shrinks), if any.
  std::optional<std::pair<uint64_t, uint64_t>> OpRange(size_t index) const {
    return index < ranges_.size() ? ranges_[index] : std::nullopt;
  }
  // [start, end) ranges touched by at least one op, in order and disjoint.
  const std::vector<std::pair<uint64_t, uint64_t>>& segments() const { return segments_; }
  // Calls fn(begin, end) for the parts of [begin, end) no op touched.
  void ForEachUntouched(uint64_t begin, uint64_t end,
                        const std::function<void(uint64_t, uint64_t)>& fn) const;
  // The first byte of `got`, read at untouched guest `offset`, that is not the initial content.
  std::optional<DataViolation> CheckUntouched(uint64_t offset, std::span<const uint8_t> got) const;
  const InitialContent& initial() const { return initial_; }
  // Calls illegal(begin, end) for every piece of `got` (read at guest `offset`) that no legal
  // source explains at crash_point: touched pieces against the sources Check allows them,
  // untouched ones against the initial content. Pieces are Check's: 512-byte aligned, split at
  // the edges of touched ranges.
  void ForEachIllegalPiece(uint64_t crash_point, uint64_t offset, std::span<const uint8_t> got,
                           const std::function<void(uint64_t, uint64_t)>& illegal) const;
  const std::vector<OpTiming>& timings() const { return timings_; }
  // Equal windows give equal verdicts for equal guest content.
  DataWindow WindowAt(uint64_t crash_point) const;
  const Workload& workload() const { return workload_; }

 private:
  // A source of bytes: the initial content, zeros, or a write's pattern.
  static constexpr int64_t kInitial = -1;
  static constexpr int64_t kZero = -2;
  void Candidates(size_t segment, uint64_t crash_point, std::vector<int64_t>& out) const;
  // The sources each segment may read as (Candidates at a crash point, ContentAt a snapshot).
  using SegmentSources = std::function<void(size_t segment, std::vector<int64_t>& out)>;
  // Check's reading and matching, with `where` ("at crash point 7") in its messages.
  Result<std::optional<DataViolation>> CheckSegments(uint64_t virtual_size,
                                                     const SegmentSources& sources,
                                                     const std::string& where, const Reader& read,
                                                     const ImpliedRuns* implied) const;
  // What op `j` leaves in `segment` where it held one of `before`.
  std::vector<int64_t> ValuesOf(uint32_t j, size_t segment,
                                const std::vector<int64_t>& before) const;
  // What `segment` held when snapshot op `snapshot_op` took its snapshot.
  std::vector<int64_t> ContentAt(size_t segment, uint32_t snapshot_op) const;
  // Adds each apply-snapshot op that reverts to every segment, with what it leaves there.
  void AddReverts();
  // Whether reading [begin, end), inside one segment whose sources are `candidates`, as
  // `content` is legal.
  bool ImpliedMatches(const std::vector<int64_t>& candidates, uint64_t begin, uint64_t end,
                      ImpliedContent content) const;
  bool PieceMatches(int64_t source, uint64_t offset, std::span<const uint8_t> got) const;
  std::string DescribeSource(int64_t source) const;

  Workload workload_;
  std::vector<OpTiming> timings_;
  InitialContent initial_;
  bool snapshots_ = false;        // snapshot ops take effect (the image can hold snapshots)
  bool monotone_timings_ = true;  // begin and durable never decrease with the op index
  std::vector<std::pair<uint64_t, uint64_t>> segments_;  // [start, end) touched by some op
  std::vector<std::vector<uint32_t>> segment_ops_;       // data ops touching each, in order
  std::vector<std::optional<std::pair<uint64_t, uint64_t>>> ranges_;  // OpRange, by op
  std::vector<uint64_t> sizes_;  // the disk's size before each op (Workload::Sizes)
  std::map<uint32_t, std::vector<std::vector<int64_t>>> revert_values_;  // apply op -> by segment
  std::map<std::string, uint64_t> snapshot_ops_;  // SnapshotName -> the op that takes it
};

// The guest-data oracle for a recorded run of `workload`: op timings from the recording's guest
// events, durability from the cache mode and crash kind, the final close counted as a flush.
// `initial` is the guest content before the workload (default: zeros).
std::unique_ptr<GuestOracle> OracleForRun(const Workload& workload, CacheMode mode,
                                          simdisk::CrashKind crash,
                                          const simdisk::Recording& recording,
                                          InitialContent initial = {}, bool snapshots = false);

}  // namespace crashsim
