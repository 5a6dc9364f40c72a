// CrashState: the compact description of one crash state, the unit the trace format embeds.
// It is (kind, crash point N, the fate of every pending write that did not persist whole):
//   power loss   - ops [0, N) completed; the medium at the last honoured flush before N, then
//                  every write and resize issued since, in issue order, except that a write
//                  listed here persisted only in the atomic units of `kept` (and `garbage`
//                  units hold garbage); a listed write with neither is dropped. Writes not
//                  listed persisted whole. Honoured FUA writes are durable and never listed.
//   process kill - everything the device accepted before N persisted; no fates.
// Text form, one line (hex masks, bit i = atomic unit i of the write):
//   "power-loss@42 drop=7 tear=9:3f0 tear=11:1/2 gseed=5eed"   (11: unit 0 new, unit 1 garbage)
//   "process-kill@42"
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "engine/status.h"
#include "simdisk/unit_mask.h"

namespace crashsim::simdisk {

enum class CrashKind : uint8_t { kPowerLoss, kProcessKill };
// "power-loss", "process-kill".
const char* CrashKindName(CrashKind kind);
// The inverse of CrashKindName.
std::optional<CrashKind> ParseCrashKind(std::string_view name);

struct WriteFate {
  uint64_t op = 0;   // seq of a pending write or resize
  UnitMask kept;     // atomic units that reached the medium (unit 0: the first the write touches)
  UnitMask garbage;  // atomic units filled with garbage; disjoint from kept

  bool dropped() const { return kept.empty() && garbage.empty(); }
  bool operator==(const WriteFate&) const = default;
};

struct CrashState {
  CrashKind kind = CrashKind::kPowerLoss;
  uint64_t point = 0;            // the crash happened after ops [0, point)
  std::vector<WriteFate> fates;  // strictly increasing op
  uint64_t garbage_seed = 0;     // seeds the garbage bytes; meaningful only if a fate has garbage

  bool HasGarbage() const;
  std::string ToText() const;
  static Result<CrashState> Parse(std::string_view text);
  // A digest of the description (used for determinism checks).
  uint64_t Hash() const;
  bool operator==(const CrashState&) const = default;
};

}  // namespace crashsim::simdisk
