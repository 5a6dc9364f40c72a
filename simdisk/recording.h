// Recording: every operation the simulated disk was given, in order, with what a crash needs to
// rebuild any state: the medium the run started from, each write's bytes (shared, never copied),
// FUA and flush flags, whether the cache mode honoured them, the qcow2 structure each write
// serves (IoTag) and the guest operation it was issued for. Guest operations' begin and
// acknowledgement are events in the same sequence, so a crash point "after op N" also says which
// guest operations had been acknowledged.
//
// Durability is read off the recording: an honoured, successful flush is a barrier that makes
// every earlier write durable; an honoured FUA write is durable on completion; everything else
// since the last barrier is pending (write_cache.h). A failed operation (fault plan) changed
// nothing on the device.
//
// MediumAt fills a cache shared by copies of a recording; it is guarded by a mutex, so copies may
// be used from several threads. Fork() makes a copy with a fresh cache.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "engine/block_device.h"
#include "engine/cache_mode.h"
#include "simdisk/medium.h"

namespace crashsim::simdisk {

enum class OpKind : uint8_t { kRead, kWrite, kFlush, kResize, kGuestBegin, kGuestAck };
const char* OpKindName(OpKind kind);

inline constexpr uint64_t kNoGuestOp = UINT64_MAX;

using Bytes = std::vector<uint8_t>;

struct OpRecord {
  uint64_t seq = 0;  // index in the recording; a crash point N means ops [0, N) completed
  OpKind kind = OpKind::kRead;
  uint64_t offset = 0;  // read/write: byte offset; resize: the new size; guest events: 0
  uint64_t length = 0;  // read/write: bytes
  bool fua = false;
  bool honoured = true;  // flush / FUA reached the medium (false when the cache mode drops it)
  IoTag tag = IoTag::kUnknown;
  uint8_t step = 0;                // the engine's DurableStep (engine/protocol.h), 0 if unknown
  uint64_t data_hash = 0;          // HashBytes of the written bytes
  uint64_t guest_op = kNoGuestOp;  // the guest operation this op serves
  StatusCode status = StatusCode::kOk;
  std::shared_ptr<const Bytes> data;  // writes only

  bool ok() const { return status == StatusCode::kOk; }
  // A write or resize that reached the device (durable or pending).
  bool ChangesMedium() const { return ok() && (kind == OpKind::kWrite || kind == OpKind::kResize); }
  bool IsBarrier() const { return ok() && kind == OpKind::kFlush && honoured; }
  bool IsDurableWrite() const { return ok() && kind == OpKind::kWrite && fua && honoured; }
};

// One line per op, for logs and traces: "17 write 0x10000+4096 fua tag=L2 hash=... guest=3".
std::string OpRecordToText(const OpRecord& op);

struct GuestOp {
  uint64_t id = 0;
  std::string label;
  uint64_t begin_seq = 0;
  uint64_t ack_seq = UINT64_MAX;  // UINT64_MAX: never acknowledged
};

class Recording {
 public:
  Recording(CacheConfig cache, uint64_t atomic_unit, std::shared_ptr<const Medium> initial);

  const CacheConfig& cache() const { return cache_; }
  uint64_t atomic_unit() const { return atomic_unit_; }
  const std::shared_ptr<const Medium>& initial() const { return initial_; }
  const std::vector<OpRecord>& ops() const { return ops_; }
  const std::vector<GuestOp>& guest_ops() const { return guest_ops_; }
  uint64_t op_count() const { return ops_.size(); }

  // The first op index that is not yet durable at crash point `point`: one past the last
  // honoured flush among ops [0, point), or 0.
  uint64_t BarrierBefore(uint64_t point) const;
  // The medium with every medium-changing op in [0, point) applied whole: the durable state at
  // a barrier, the process-kill state at any point, and the power-loss state that kept every
  // pending write. Cached for every point asked; the cost is the ops since the nearest cached
  // earlier point, and the result shares pages and chunks with the cache.
  std::shared_ptr<const Medium> MediumAt(uint64_t point) const;
  // Ids of guest operations acknowledged among ops [0, point).
  std::vector<uint64_t> AckedBefore(uint64_t point) const;

  // A copy with its own MediumAt cache, for use on another thread.
  Recording Fork() const;

  // A digest of every op (kinds, offsets, flags, tags, data hashes, guest ops).
  uint64_t Digest() const;

  // Appending, for SimDisk.
  uint64_t Append(OpRecord op);  // sets op.seq, returns it
  void BeginGuestOp(uint64_t id, std::string label, uint64_t seq);
  void AckGuestOp(uint64_t id, uint64_t seq);

 private:
  CacheConfig cache_;
  uint64_t atomic_unit_;
  std::shared_ptr<const Medium> initial_;
  std::vector<OpRecord> ops_;
  std::vector<uint64_t> barriers_;  // seq + 1 of every barrier, increasing
  std::vector<GuestOp> guest_ops_;
  // Cache of MediumAt(point); shared by copies of the recording, valid for all of them since
  // ops are only ever appended. Media share pages, so each entry costs the pages its ops changed.
  struct MediumCache;
  std::shared_ptr<MediumCache> medium_cache_;
};

// Applies a successful write or resize whole to a medium.
void ApplyWhole(Medium& medium, const OpRecord& op);

}  // namespace crashsim::simdisk
