// FaultPlan: I/O errors injected on chosen operations, to drive the engine's error paths. A rule
// matches operations of one kind (read, write, flush, resize), optionally only writes with a
// given IoTag, lets `skip` matching operations through, then fails the next `count` of them
// (0: every one after) with EIO or ENOSPC.
//
// Durability of a failed operation: it did not happen. A failed write changed no byte, a failed
// flush made nothing durable (the writes before it stay pending), a failed resize left the size.
// The recording keeps the failed operation with its status so a trace can replay the fault.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "engine/block_device.h"
#include "engine/status.h"
#include "simdisk/recording.h"

namespace crashsim::simdisk {

struct FaultRule {
  OpKind kind = OpKind::kWrite;
  std::optional<IoTag> tag;  // writes only: match only this structure
  uint64_t skip = 0;         // matching operations let through before the first failure
  uint64_t count = 1;        // failures, then the rule is spent; 0 = fail forever
  StatusCode code = StatusCode::kIoError;  // kIoError (EIO) or kNoSpace (ENOSPC)
};

// "write#3:EIO": the rule that fails the 4th write (skip 3) once with EIO; reads, writes,
// flushes and resizes, EIO or ENOSPC. Only such one-shot, untagged rules have a text form.
std::string FaultText(const FaultRule& rule);
Result<FaultRule> ParseFault(std::string_view text);

// The I/O-error sweep over a recorded run (issue 13): one one-shot rule per successful device op
// (read, write, flush, resize) and error (EIO, then ENOSPC), in kind and then op order.
std::vector<FaultRule> EveryFaultOf(const Recording& recording);

class FaultPlan {
 public:
  FaultPlan() = default;
  explicit FaultPlan(std::vector<FaultRule> rules);

  // Fails the nth (0-based) operation of `kind` from now on.
  static FaultPlan FailNth(OpKind kind, uint64_t n, StatusCode code = StatusCode::kIoError);

  void Add(FaultRule rule);
  // Whether any read can fail under this plan.
  bool FailsReads() const;
  // Called for every device operation in order; a non-ok Status means "fail it".
  Status Check(OpKind kind, IoTag tag, uint64_t offset, uint64_t length);

 private:
  struct Armed {
    FaultRule rule;
    uint64_t seen = 0;
    uint64_t failed = 0;
  };
  std::vector<Armed> rules_;
};

}  // namespace crashsim::simdisk
