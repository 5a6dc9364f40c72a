// How the crash property runs qcow2 check and repair (engine/check/check.h): plainly, with a
// CheckMemo (the incremental checker: tables whose bytes were met before are not walked again),
// or both ways on copies of the image, recording the first difference in their reports or in the
// repaired bytes (for tests; the explorer fails the state). One Checker per thread.
#pragma once

#include <string>

#include "engine/block_device.h"
#include "engine/check/check.h"
#include "engine/check/check_memo.h"

namespace crashsim {

enum class CheckerMode : uint8_t { kMemo, kPlain, kBoth };

class Checker {
 public:
  explicit Checker(CheckerMode mode = CheckerMode::kMemo) : mode_(mode) {}

  // Check(device, {.repair = repair}).
  CheckReport Run(BlockDevice& device, RepairMode repair = RepairMode::kNone);
  // kBoth: the first difference seen since the last Take, or "".
  std::string TakeDisagreement();
  const check::CheckMemo& memo() const { return memo_; }
  // Checks and repairs run so far (what a crash state's verdict costs is mostly these).
  uint64_t runs() const { return runs_; }

 private:
  CheckerMode mode_;
  check::CheckMemo memo_;
  std::string disagreement_;
  uint64_t runs_ = 0;
};

// Everything a report says, as text: the findings qemu-img prints, its JSON and the flags.
std::string ReportText(const CheckReport& report);

}  // namespace crashsim
