#include "simdisk/fates.h"

#include <algorithm>

namespace crashsim::simdisk {

namespace {

uint64_t SatPow(uint64_t base, uint64_t exponent) {
  uint64_t result = 1;
  for (uint64_t i = 0; i < exponent && result != kSaturated; ++i) result = SatMul(result, base);
  return result;
}

bool CanTear(const PendingItem& item, const CrashModel& model) {
  return !item.resize && item.units > 0 && model.tears != TearShape::kNone;
}

// Base-3 digits, unit i = digit i: 0 old, 1 new, 2 garbage.
WriteFate FromTernary(uint64_t op, uint64_t units, uint64_t value) {
  WriteFate fate{op, {}, {}};
  for (uint64_t u = 0; u < units; ++u, value /= 3) {
    if (value % 3 == 1) fate.kept.Set(u);
    if (value % 3 == 2) fate.garbage.Set(u);
  }
  return fate;
}

}  // namespace

uint64_t SatAdd(uint64_t a, uint64_t b) { return a > kSaturated - b ? kSaturated : a + b; }
uint64_t SatMul(uint64_t a, uint64_t b) {
  if (a == 0 || b == 0) return 0;
  return a > kSaturated / b ? kSaturated : a * b;
}

uint64_t FateCount(const PendingItem& item, const CrashModel& model) {
  if (!CanTear(item, model)) return 2;
  const bool garbage = model.content == TearContent::kGarbage;
  const uint64_t u = item.units;
  if (model.tears == TearShape::kPrefix) return garbage ? SatAdd(SatMul(2, u), 1) : SatAdd(u, 1);
  return SatPow(garbage ? 3 : 2, u);
}

WriteFate FateAt(const PendingItem& item, const CrashModel& model, uint64_t index) {
  const uint64_t count = FateCount(item, model);
  INVARIANT(count != kSaturated && index >= 1 && index < count);
  if (index == 1 || !CanTear(item, model)) return {item.op, {}, {}};
  const uint64_t u = item.units;
  if (model.tears == TearShape::kPrefix) {
    if (model.content == TearContent::kOldOrNew)
      return {item.op, UnitMask::Range(0, index - 1), {}};
    const uint64_t j = (index - 1) / 2;
    WriteFate fate{item.op, UnitMask::Range(0, j), {}};
    if ((index - 1) % 2 == 1) fate.garbage.Set(j);
    return fate;
  }
  if (model.content == TearContent::kOldOrNew) {
    return {item.op, UnitMask::FromWord(index - 1), {}};  // 2^u < 2^64 here, so u < 64
  }
  // Skip the all-new value (3^u - 1) / 2, which is "whole".
  const uint64_t whole = (count - 1) / 2;
  const uint64_t value = index - 1 < whole ? index - 1 : index;
  return FromTernary(item.op, u, value);
}

WriteFate RandomDeviation(const PendingItem& item, const CrashModel& model, Xoshiro256& rng) {
  if (!CanTear(item, model) || rng.Chance(1, 4)) return {item.op, {}, {}};
  const uint64_t u = item.units;
  const bool garbage = model.content == TearContent::kGarbage;
  if (model.tears == TearShape::kPrefix) {
    const uint64_t j = rng.Below(u);
    WriteFate fate{item.op, UnitMask::Range(0, j), {}};
    if (garbage && rng.Chance(1, 2)) fate.garbage.Set(j);
    return fate;
  }
  for (;;) {  // any subset: a uniform per-unit draw, rejecting "whole"
    WriteFate fate{item.op, {}, {}};
    for (uint64_t unit = 0; unit < u; ++unit) {
      const uint64_t digit = rng.Below(garbage ? 3 : 2);
      if (digit == 1) fate.kept.Set(unit);
      if (digit == 2) fate.garbage.Set(unit);
    }
    if (fate.kept.Count() != u) return fate;
  }
}

uint64_t CountStates(const std::vector<PendingItem>& items, const CrashModel& model) {
  uint64_t total = 1;
  for (const PendingItem& item : items) {
    const uint64_t f = FateCount(item, model);
    total = model.order == OrderModel::kPrefix ? SatAdd(total, f - 1) : SatMul(total, f);
  }
  return total;
}

uint64_t CountBounded(const std::vector<PendingItem>& items, const CrashModel& model, uint64_t k,
                      const std::function<bool(const PendingItem&)>& eligible) {
  const uint64_t m = items.size();
  if (model.order == OrderModel::kPrefix) {
    uint64_t total = 1;
    for (uint64_t cut = m - std::min(k, m); cut < m; ++cut) {
      if (eligible(items[cut])) total = SatAdd(total, FateCount(items[cut], model) - 1);
    }
    return total;
  }
  // Elementary symmetric polynomials e_0..e_k of (F_i - 1), by the usual one-pass recurrence.
  std::vector<uint64_t> e(static_cast<size_t>(std::min(k, m)) + 1, 0);
  e[0] = 1;
  for (const PendingItem& item : items) {
    if (!eligible(item)) continue;
    const uint64_t g = FateCount(item, model) - 1;
    for (size_t d = e.size() - 1; d >= 1; --d) e[d] = SatAdd(e[d], SatMul(e[d - 1], g));
  }
  uint64_t total = 0;
  for (uint64_t v : e) total = SatAdd(total, v);
  return total;
}

}  // namespace crashsim::simdisk
