// The guest-data oracle: given when each guest operation began, was acknowledged and became
// durable (in device-op sequence numbers), it decides whether guest content read from a crashed
// (or repaired) image is legal at crash point N:
//   every byte reads as its last durable value, or as the value of an operation issued after
//   it; never garbage, never bytes from another offset (data is position-dependent).
// Durability is the cache mode's promise to the guest, not what the engine did: writethrough and
// directsync promise each write at its acknowledgement; writeback and none at the
// acknowledgement of the next flush (or reopen); unsafe promises nothing across a power loss.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "engine/options.h"
#include "engine/status.h"
#include "properties/workload.h"

namespace crashsim {

inline constexpr uint64_t kNever = UINT64_MAX;

struct OpTiming {
  uint64_t begin = kNever;    // device-op seq of the guest op's begin event
  uint64_t ack = kNever;      // seq of its acknowledgement
  uint64_t durable = kNever;  // seq from which the guest is promised it survives
};

enum class CrashKindForOracle { kPowerLoss, kProcessKill };

// Fills in `durable` for each op from `begin`/`ack` and the cache mode's contract.
void AssignDurability(const Workload& workload, CacheMode mode, CrashKindForOracle crash,
                      std::vector<OpTiming>& timings);

struct DataViolation {
  uint64_t guest_offset = 0;
  std::string message;
};

class GuestOracle {
 public:
  // `initial`: the guest content before the workload (zeros, or the backing file's content).
  GuestOracle(const Workload& workload, std::vector<OpTiming> timings,
              std::vector<uint8_t> initial);

  using Reader = std::function<Status(uint64_t offset, std::span<uint8_t> data)>;
  // Reads the whole guest disk through `read` and returns the first illegal byte, if any.
  Result<std::optional<DataViolation>> Check(uint64_t crash_point, const Reader& read) const;
  // Ranges that no operation touched must read as the initial content; these are the ranges
  // touched by at least one op, so callers can restrict expensive reads.
  const std::vector<std::pair<uint64_t, uint64_t>>& segments() const { return segments_; }

 private:
  // A source of bytes: the initial content, zeros, or a write's pattern.
  static constexpr int64_t kInitial = -1;
  static constexpr int64_t kZero = -2;
  void Candidates(size_t segment, uint64_t crash_point, std::vector<int64_t>& out) const;
  bool PieceMatches(int64_t source, uint64_t offset, std::span<const uint8_t> got) const;
  std::string DescribeSource(int64_t source) const;

  Workload workload_;
  std::vector<OpTiming> timings_;
  std::vector<uint8_t> initial_;
  std::vector<std::pair<uint64_t, uint64_t>> segments_;  // [start, end), covering the disk
  std::vector<std::vector<uint32_t>> segment_ops_;       // data ops touching each, in order
};

}  // namespace crashsim
