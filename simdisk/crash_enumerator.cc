#include "simdisk/crash_enumerator.h"

#include <algorithm>

#include "simdisk/materialise.h"
#include "simdisk/write_cache.h"

namespace crashsim::simdisk {

namespace {
constexpr uint64_t kGarbageSalt = 0x6a72ba6e;
constexpr uint64_t kAttemptsPerSample = 8;
}  // namespace

CrashEnumerator::CrashEnumerator(std::shared_ptr<const Recording> recording,
                                 EnumerationOptions options)
    : recording_(std::move(recording)),
      options_(std::move(options)),
      garbage_seed_(DeriveSeed(options_.seed, kGarbageSalt)) {
  INVARIANT(recording_ != nullptr);
  points_ = options_.points.empty() ? CrashPoints(*recording_) : options_.points;
}

std::optional<CrashState> CrashEnumerator::Next() {
  while (queue_.empty() && next_point_ < points_.size()) FillPoint(points_[next_point_++]);
  if (queue_.empty()) return std::nullopt;
  CrashState state = std::move(queue_.front());
  queue_.pop_front();
  return state;
}

CrashState CrashEnumerator::MakeState(uint64_t point, std::vector<WriteFate> fates) const {
  CrashState state{options_.kind, point, std::move(fates), 0};
  if (state.HasGarbage()) state.garbage_seed = garbage_seed_;
  return state;
}

bool CrashEnumerator::Offer(CrashState state, bool sampled) {
  const uint64_t key = options_.dedupe ? ContentKey(*recording_, state) : state.Hash();
  if (!seen_.insert(key).second) {
    ++stats_.duplicates;
    return false;
  }
  ++(sampled ? stats_.sampled : stats_.exhaustive);
  ++stats_.per_point.back().explored;
  queue_.push_back(std::move(state));
  return true;
}

void CrashEnumerator::FillPoint(uint64_t point) {
  INVARIANT(point <= recording_->op_count());
  ++stats_.crash_points;
  if (options_.kind == CrashKind::kProcessKill) {
    stats_.per_point.push_back({point, 0, 1, 1, 0});
    stats_.possible = SatAdd(stats_.possible, 1);
    stats_.within_bound = SatAdd(stats_.within_bound, 1);
    Offer(MakeState(point, {}), false);
    return;
  }
  const PendingSet pending = PendingAt(*recording_, point, options_.model.order);
  auto is_eligible = [&](const PendingItem& item) {
    return item.resize || (options_.exhaustive_tags & TagBit(item.tag)) != 0;
  };
  std::vector<size_t> eligible;
  for (size_t i = 0; i < pending.items.size(); ++i) {
    if (is_eligible(pending.items[i])) eligible.push_back(i);
  }
  PointStats ps{point, pending.items.size(), CountStates(pending.items, options_.model),
                CountBounded(pending.items, options_.model, options_.k, is_eligible), 0};
  stats_.per_point.push_back(ps);
  stats_.possible = SatAdd(stats_.possible, ps.possible);
  stats_.within_bound = SatAdd(stats_.within_bound, ps.within_bound);

  Xoshiro256 rng(DeriveSeed(options_.seed, point));
  if (ps.within_bound <= options_.exhaustive_budget) {
    EnumerateExhaustive(pending, eligible);
  } else {
    Sample(pending, eligible, /*bounded=*/true, options_.exhaustive_budget, rng);
  }
  // Saturated counts compare equal but certainly leave states beyond the bound.
  if (ps.possible == kSaturated || ps.possible != ps.within_bound) Sample(pending, eligible, /*bounded=*/false, options_.samples, rng);
}

void CrashEnumerator::EnumerateExhaustive(const PendingSet& pending,
                                          const std::vector<size_t>& eligible) {
  const auto& items = pending.items;
  const CrashModel& model = options_.model;
  Offer(MakeState(pending.point, {}), false);  // no deviation: everything persisted
  if (model.order == OrderModel::kPrefix) {
    const size_t m = items.size();
    for (size_t d = 1; d <= std::min<uint64_t>(options_.k, m); ++d) {
      const size_t cut = m - d;
      if (!std::binary_search(eligible.begin(), eligible.end(), cut)) continue;
      for (uint64_t index = 1; index < FateCount(items[cut], model); ++index) {
        std::vector<WriteFate> fates{FateAt(items[cut], model, index)};
        for (size_t j = cut + 1; j < m; ++j) fates.push_back({items[j].op, {}, {}});
        Offer(MakeState(pending.point, std::move(fates)), false);
      }
    }
    return;
  }
  const size_t max_d = std::min<uint64_t>(options_.k, eligible.size());
  for (size_t d = 1; d <= max_d; ++d) {
    std::vector<size_t> combo(d);
    for (size_t i = 0; i < d; ++i) combo[i] = i;
    for (;;) {
      std::vector<uint64_t> index(d, 1);  // mixed radix over each item's deviating fates
      for (;;) {
        std::vector<WriteFate> fates;
        for (size_t i = 0; i < d; ++i) fates.push_back(FateAt(items[eligible[combo[i]]], model, index[i]));
        Offer(MakeState(pending.point, std::move(fates)), false);
        size_t pos = d;
        while (pos > 0 && ++index[pos - 1] == FateCount(items[eligible[combo[pos - 1]]], model)) {
          index[--pos] = 1;
        }
        if (pos == 0) break;
      }
      // Next combination of d out of eligible.size(), lexicographic.
      size_t pos = d;
      while (pos > 0 && combo[pos - 1] == eligible.size() - d + pos - 1) --pos;
      if (pos == 0) break;
      ++combo[pos - 1];
      for (size_t i = pos; i < d; ++i) combo[i] = combo[i - 1] + 1;
    }
  }
}

std::optional<std::vector<WriteFate>> CrashEnumerator::Draw(const PendingSet& pending,
                                                            const std::vector<size_t>& eligible,
                                                            bool bounded, Xoshiro256& rng) const {
  const auto& items = pending.items;
  const CrashModel& model = options_.model;
  const size_t m = items.size();
  auto is_eligible = [&](size_t i) { return std::binary_search(eligible.begin(), eligible.end(), i); };
  std::vector<WriteFate> fates;
  if (model.order == OrderModel::kPrefix) {
    if (m == 0) return std::nullopt;
    // Bounded: a cut among the last k items; beyond: any cut outside the exhaustive region.
    const size_t cut = bounded ? m - 1 - rng.Below(std::min<uint64_t>(options_.k, m)) : rng.Below(m);
    const bool in_bound = m - cut <= options_.k && is_eligible(cut);
    if (in_bound != bounded) return std::nullopt;
    fates.push_back(RandomDeviation(items[cut], model, rng));
    for (size_t j = cut + 1; j < m; ++j) fates.push_back({items[j].op, {}, {}});
    return fates;
  }
  if (bounded) {
    if (eligible.empty() || options_.k == 0) return std::nullopt;
    const size_t d = 1 + rng.Below(std::min<uint64_t>(options_.k, eligible.size()));
    std::vector<size_t> pool = eligible;
    for (size_t i = 0; i < d; ++i) std::swap(pool[i], pool[i + rng.Below(pool.size() - i)]);
    pool.resize(d);
    std::sort(pool.begin(), pool.end());
    for (size_t i : pool) fates.push_back(RandomDeviation(items[i], model, rng));
    return fates;
  }
  bool all_eligible = true;
  for (size_t i = 0; i < m; ++i) {
    if (!rng.Chance(1, 2)) continue;
    fates.push_back(RandomDeviation(items[i], model, rng));
    all_eligible = all_eligible && is_eligible(i);
  }
  if (fates.size() <= options_.k && all_eligible) return std::nullopt;  // exhaustive region
  return fates;
}

void CrashEnumerator::Sample(const PendingSet& pending, const std::vector<size_t>& eligible,
                             bool bounded, uint64_t count, Xoshiro256& rng) {
  uint64_t yielded = 0;
  for (uint64_t attempt = 0; attempt < count * kAttemptsPerSample && yielded < count; ++attempt) {
    auto fates = Draw(pending, eligible, bounded, rng);
    if (fates && Offer(MakeState(pending.point, std::move(*fates)), true)) ++yielded;
  }
}

}  // namespace crashsim::simdisk
