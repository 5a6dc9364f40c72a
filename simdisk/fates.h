// Fates: what a power loss may do to one pending write, and how many crash states that makes
// (the formula in README.md, "Counting crash states"). A pending write touching u atomic units
// has F fates, one of which is "persisted whole":
//
//   tear shape \ content   old-or-new    garbage
//   none                   2             2        (whole or dropped)
//   prefix                 u + 1         2u + 1   (units [0, j) new; with garbage unit j may be
//                                                  garbage instead of old)
//   any subset             2^u           3^u      (each unit old or new, or garbage)
//
// A resize, or an empty write, has 2 fates (applied or not). Fate index 0 is "whole", 1 is
// "dropped", the rest are proper tears in a fixed order, so a fate index is a stable name.
// Counts saturate at UINT64_MAX ("at least that many").
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include "simdisk/crash_state.h"
#include "simdisk/prng.h"
#include "simdisk/write_cache.h"

namespace crashsim::simdisk {

enum class TearShape : uint8_t { kNone, kPrefix, kAnySubset };
enum class TearContent : uint8_t { kOldOrNew, kGarbage };

// The persistence model of a power loss: which pending writes can persist, and how they tear.
struct CrashModel {
  OrderModel order = OrderModel::kAnySubset;
  TearShape tears = TearShape::kAnySubset;
  TearContent content = TearContent::kOldOrNew;
};

inline constexpr uint64_t kSaturated = UINT64_MAX;
uint64_t SatAdd(uint64_t a, uint64_t b);
uint64_t SatMul(uint64_t a, uint64_t b);

// F for one pending item (saturating).
uint64_t FateCount(const PendingItem& item, const CrashModel& model);
// The fate with index in [1, F) (F must not be saturated). Index 0 (whole) has no WriteFate.
WriteFate FateAt(const PendingItem& item, const CrashModel& model, uint64_t index);
// A random fate other than "whole": dropped with probability 1/4, else a random proper tear
// (or dropped when the item cannot tear).
WriteFate RandomDeviation(const PendingItem& item, const CrashModel& model, Xoshiro256& rng);

// All power-loss states at a point: prod F_i (any subset) or 1 + sum (F_i - 1) (prefix).
uint64_t CountStates(const std::vector<PendingItem>& items, const CrashModel& model);
// Of those, the states in which at most k items deviate from "whole" and every deviating item
// satisfies `eligible` (any subset: sum_{d<=k} e_d(F_i - 1 over eligible i); prefix: 1 + sum over
// the last k cut positions whose cut item is eligible of (F - 1)).
uint64_t CountBounded(const std::vector<PendingItem>& items, const CrashModel& model, uint64_t k,
                      const std::function<bool(const PendingItem&)>& eligible);

}  // namespace crashsim::simdisk
