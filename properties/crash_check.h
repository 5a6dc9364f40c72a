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
#include "properties/oracle.h"

namespace crashsim {

enum class Outcome : uint8_t { kClean, kLeaksOnly, kDirtyRepaired, kFailure };
inline constexpr int kOutcomeCount = 4;
const char* OutcomeName(Outcome outcome);

// The first few findings of a report, "; "-separated, for failure messages.
std::string FirstFindings(const CheckReport& report, size_t max_lines = 4);

// Reads the guest disk through a read-only open (`read_only` carries the backing opener) and
// holds it to the oracle at `crash_point`. Returns the failure, or "".
std::string CheckGuestData(BlockDevice& device, const GuestOracle& oracle,
                           const OpenOptions& read_only, uint64_t crash_point, const char* when);

struct CrashCheckResult {
  Outcome outcome = Outcome::kClean;
  bool dirty = false;
  std::string failure;  // empty: the property holds
};

// Checks (and for a dirty image repairs, in place) the crashed image on `device`.
// `before_repair`, if set, runs on a dirty image before the repair and may return a failure.
CrashCheckResult CheckCrashedImage(BlockDevice& device, const GuestOracle& oracle,
                                   const OpenOptions& read_only, uint64_t crash_point,
                                   const std::function<std::string()>& before_repair = {});

}  // namespace crashsim
