// The crash property for one crashed image, shared by the explorer (reference engine) and
// `crashsim validate` (third-party writers):
//   - dirty bit clear: the image checks with no corruptions as it is (leaks allowed);
//   - dirty bit set: repair (-r all) succeeds, leaves the bit clear, and a second check is clean;
//   - guest data is legal (GuestOracle) before repair where the image opens, and after.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "engine/block_device.h"
#include "engine/check/check.h"
#include "engine/options.h"
#include "properties/data_check.h"
#include "properties/oracle.h"
#include "simdisk/crash_state.h"

namespace crashsim {

enum class Outcome : uint8_t { kClean, kLeaksOnly, kDirtyRepaired, kFailure };
inline constexpr int kOutcomeCount = 4;
const char* OutcomeName(Outcome outcome);

// The first few findings of a report, "; "-separated, for failure messages.
std::string FirstFindings(const CheckReport& report, size_t max_lines = 4);

// One crash state's verdict (the explorer's, a replay's, validate's).
struct StateResult {
  simdisk::CrashState state;
  Outcome outcome = Outcome::kClean;
  bool dirty = false;
  bool torn_metadata = false;  // a metadata write was torn or dropped in this state
  std::string detail;          // for failures: what broke, where
};

struct CrashCheckResult {
  Outcome outcome = Outcome::kClean;
  bool dirty = false;
  std::string failure;  // empty: the property holds
};

// Holds the guest data the device shows now to the oracle; returns the failure or "". With
// must_open false an image that does not open read-only passes (it shows nothing).
using GuestDataFn = std::function<std::string(const char* when, bool must_open)>;

// Checks (and for a dirty image repairs, in place) the crashed image on `device`, with
// `check_data` for the guest data (data_check.h: the full or the incremental check).
// `before_repair`, if set, runs on a dirty image before the repair and may return a failure.
// Runs qemu-img check (RepairMode::kNone) or a repair on a device.
using CheckFn = std::function<CheckReport(BlockDevice& device, RepairMode repair)>;

CrashCheckResult CheckCrashedImage(BlockDevice& device, const GuestDataFn& check_data,
                                   const std::function<std::string()>& before_repair = {},
                                   const CheckFn& run_check = {});
// After a repair reported success, what it must have achieved: the dirty bit clear, a check
// (with `run_check`) that finds nothing, and the guest data legal (`check_data`, told `when`).
// Returns the failure or "".
std::string CheckRepairedImage(BlockDevice& device, const CheckFn& run_check,
                               const GuestDataFn& check_data, const char* when);
// The same with the full data check at `crash_point`.
CrashCheckResult CheckCrashedImage(BlockDevice& device, const GuestOracle& oracle,
                                   const OpenOptions& read_only, uint64_t crash_point,
                                   const std::function<std::string()>& before_repair = {});

}  // namespace crashsim
