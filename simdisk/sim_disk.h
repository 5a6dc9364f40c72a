// SimDisk: the simulated block device the engine runs on. It is the top of simdisk's stack:
// a fault injector (FaultPlan), a recorder (Recording), a cost model (CostModel) and the live
// medium the engine reads, which always holds the newest accepted data.
//
// Durability assumptions: SimDisk itself never loses anything while it runs; what a crash can
// lose is decided afterwards, from the recording, by the cache mode's volatile layers
// (write_cache.h) and the crash model (fates.h). A write is pending until an honoured flush
// completes, or durable on completion with FUA; under the unsafe mode flushes and FUA are
// recorded but not honoured. A process kill keeps everything the device accepted.
//
// Guest operations: the caller stamps the guest operation it is serving with BeginGuestOp and
// reports its acknowledgement with AckGuestOp; every device op in between carries its id, and
// counters are kept per guest op.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>

#include "engine/block_device.h"
#include "engine/cache_mode.h"
#include "simdisk/cost_model.h"
#include "simdisk/fault_plan.h"
#include "simdisk/medium.h"
#include "simdisk/recording.h"

namespace crashsim::simdisk {

struct SimDiskOptions {
  CacheMode cache_mode = CacheMode::kWriteback;
  uint64_t atomic_unit = 512;  // bytes a power loss can never split (512 or 4096)
  CostModel cost;
  std::string name = "simdisk";
  uint64_t initial_size = 0;  // size of the empty medium made when none is given
  // Record each write's data_hash (digests and trace device logs use it). Off for recordings
  // that are only enumerated and materialised, such as a repair's own crash study.
  bool hash_writes = true;
};

class SimDisk final : public BlockDevice {
 public:
  // Starts from `initial` (e.g. a materialised crash state, to crash again during repair), or
  // from an empty medium of options.initial_size bytes.
  explicit SimDisk(SimDiskOptions options = {}, std::shared_ptr<const Medium> initial = nullptr);

  Status Read(uint64_t offset, std::span<uint8_t> data) override;
  Status Write(uint64_t offset, std::span<const uint8_t> data, WriteOptions options) override;
  Status Flush() override;
  Result<uint64_t> Size() override { return live_.size(); }
  Status Resize(uint64_t size) override;
  std::string Name() const override { return options_.name; }
  // Names only where a read cannot fail: a name lets a reader skip the read.
  std::optional<ContentName> NameContent(uint64_t offset, uint64_t length) override {
    if (faults_.FailsReads()) return std::nullopt;
    return live_.NameContent(offset, length);
  }

  // Stamps every following device op with guest operation `id` until AckGuestOp.
  void BeginGuestOp(uint64_t id, std::string label);
  // Records the acknowledgement of the current guest operation to the guest.
  void AckGuestOp();
  // Ends the current guest operation without an acknowledgement: the guest was told it failed,
  // so nothing it wrote is promised (its GuestOp keeps ack_seq UINT64_MAX).
  void FailGuestOp();
  uint64_t current_guest_op() const { return guest_op_; }

  void SetFaultPlan(FaultPlan plan) { faults_ = std::move(plan); }
  const FaultPlan& fault_plan() const { return faults_; }

  const SimDiskOptions& options() const { return options_; }
  const Recording& recording() const { return recording_; }
  // A copy of the recording so far (cheap: write data is shared), for enumeration.
  std::shared_ptr<const Recording> SnapshotRecording() const;
  // The newest data: what a process kill leaves right now.
  const Medium& live() const { return live_; }

  const IoCounters& totals() const { return totals_; }
  // Counters per guest op id; ops outside any guest op are under kNoGuestOp.
  const std::map<uint64_t, IoCounters>& counters_by_guest_op() const { return by_guest_op_; }

 private:
  // Records op, charges its cost and counts it; returns status unchanged.
  Status Finish(OpRecord op, uint64_t cost_ns, Status status);

  SimDiskOptions options_;
  CacheConfig cache_;
  Medium live_;
  Recording recording_;
  FaultPlan faults_;
  uint64_t guest_op_ = kNoGuestOp;
  IoCounters totals_;
  std::map<uint64_t, IoCounters> by_guest_op_;
};

}  // namespace crashsim::simdisk
