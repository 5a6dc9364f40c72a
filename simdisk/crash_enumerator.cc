#include "simdisk/crash_enumerator.h"

#include <algorithm>

#include "simdisk/materialise.h"
#include "simdisk/write_cache.h"

namespace crashsim::simdisk {

namespace {
constexpr uint64_t kGarbageSalt = 0x6a72ba6e;
constexpr uint64_t kAttemptsPerSample = 8;
}  // namespace

// The states of one crash point, made one at a time in the documented order. Candidates may be
// refused by the caller (dedupe); sampling counts only accepted ones, as its budget is in states.
class CrashEnumerator::PointStates {
 public:
  PointStates(const Recording& recording, const EnumerationOptions& options, uint64_t point)
      : options_(options), point_(point), rng_(DeriveSeed(options.selection.seed, point)) {
    stats_.point = point;
    if (options_.selection.kind == CrashKind::kProcessKill) {
      stats_.possible = stats_.within_bound = stats_.planned = 1;
      phase_ = Phase::kStart;
      return;
    }
    pending_ = PendingAt(recording, point, options_.selection.model.order);
    for (size_t i = 0; i < pending_.items.size(); ++i) {
      if (Eligible(pending_.items[i])) eligible_.push_back(i);
    }
    stats_.pending = pending_.items.size();
    stats_.possible = CountStates(pending_.items, options_.selection.model);
    stats_.within_bound =
        CountBounded(pending_.items, options_.selection.model, options_.selection.k,
                     [&](const PendingItem& item) { return Eligible(item); });
    // The no-deviation state, then the bounded states (all of them, or a budget's worth
    // sampled), then samples beyond the bound if there are states beyond it.
    const bool beyond = stats_.possible == kSaturated || stats_.possible != stats_.within_bound;
    stats_.planned =
        SatAdd(1 + std::min(stats_.within_bound - 1, options_.selection.exhaustive_budget),
               beyond ? options_.selection.samples : 0);
  }

  const PointStats& stats() const { return stats_; }
  uint64_t point() const { return point_; }

  // The next candidate's fates, whether it comes from sampling, or nullopt when done.
  std::optional<std::vector<WriteFate>> NextCandidate(bool* sampled) {
    for (;;) {
      switch (phase_) {
        case Phase::kStart:
          phase_ = options_.selection.kind == CrashKind::kProcessKill ? Phase::kDone
                   : stats_.within_bound <= options_.selection.exhaustive_budget
                       ? Phase::kExhaustive
                       : Phase::kBoundedSamples;
          StartSampling(options_.selection.exhaustive_budget);
          *sampled = false;
          return std::vector<WriteFate>{};  // no deviation: everything persisted
        case Phase::kExhaustive:
          if (auto fates = NextExhaustive()) {
            *sampled = false;
            return fates;
          }
          EnterBeyondBound();
          break;
        case Phase::kBoundedSamples:
        case Phase::kBeyondSamples:
          if (auto fates = NextSample()) {
            *sampled = true;
            return fates;
          }
          if (phase_ == Phase::kBoundedSamples) {
            EnterBeyondBound();
          } else {
            phase_ = Phase::kDone;
          }
          break;
        case Phase::kDone:
          return std::nullopt;
      }
    }
  }

  // Tells the generator whether the last sampled candidate was taken.
  void Accepted(bool taken) {
    if (taken) ++sample_yielded_;
  }

 private:
  enum class Phase : uint8_t { kStart, kExhaustive, kBoundedSamples, kBeyondSamples, kDone };

  bool Eligible(const PendingItem& item) const {
    return item.resize || (options_.exhaustive_tags & TagBit(item.tag)) != 0;
  }
  bool IsEligibleIndex(size_t i) const {
    return std::binary_search(eligible_.begin(), eligible_.end(), i);
  }

  void StartSampling(uint64_t count) {
    sample_target_ = count;
    sample_yielded_ = 0;
    sample_attempts_ = 0;
  }

  void EnterBeyondBound() {
    // Saturated counts compare equal but certainly leave states beyond the bound.
    if (stats_.possible == kSaturated || stats_.possible != stats_.within_bound) {
      phase_ = Phase::kBeyondSamples;
      StartSampling(options_.selection.samples);
    } else {
      phase_ = Phase::kDone;
    }
  }

  // Exhaustive, after the no-deviation state: prefix cuts, or d-subsets of eligible items with a
  // mixed radix over each item's deviating fates.
  std::optional<std::vector<WriteFate>> NextExhaustive() {
    const auto& items = pending_.items;
    const CrashModel& model = options_.selection.model;
    if (model.order == OrderModel::kPrefix) {
      const size_t m = items.size();
      for (;;) {
        if (d_ == 0) {
          d_ = 1;
          fate_index_ = 1;
        }
        if (d_ > std::min<uint64_t>(options_.selection.k, m)) return std::nullopt;
        const size_t cut = m - d_;
        if (!IsEligibleIndex(cut) || fate_index_ >= FateCount(items[cut], model)) {
          ++d_;
          fate_index_ = 1;
          continue;
        }
        std::vector<WriteFate> fates{FateAt(items[cut], model, fate_index_++)};
        for (size_t j = cut + 1; j < m; ++j) fates.push_back({items[j].op, {}, {}});
        return fates;
      }
    }
    const size_t max_d = std::min<uint64_t>(options_.selection.k, eligible_.size());
    for (;;) {
      if (combo_.empty()) {  // start the next size
        if (++d_ > max_d) return std::nullopt;
        combo_.resize(d_);
        for (size_t i = 0; i < d_; ++i) combo_[i] = i;
        index_.assign(d_, 1);
      }
      std::vector<WriteFate> fates;
      for (size_t i = 0; i < d_; ++i)
        fates.push_back(FateAt(items[eligible_[combo_[i]]], model, index_[i]));
      Advance();
      return fates;
    }
  }

  // Moves the mixed radix, then the combination, to the next exhaustive state.
  void Advance() {
    const auto& items = pending_.items;
    size_t pos = d_;
    while (pos > 0 && ++index_[pos - 1] ==
                          FateCount(items[eligible_[combo_[pos - 1]]], options_.selection.model)) {
      index_[--pos] = 1;
    }
    if (pos > 0) return;
    // Next combination of d out of eligible.size(), lexicographic; none left: next size.
    pos = d_;
    while (pos > 0 && combo_[pos - 1] == eligible_.size() - d_ + pos - 1) --pos;
    if (pos == 0) {
      combo_.clear();
      return;
    }
    ++combo_[pos - 1];
    for (size_t i = pos; i < d_; ++i) combo_[i] = combo_[i - 1] + 1;
  }

  std::optional<std::vector<WriteFate>> NextSample() {
    const bool bounded = phase_ == Phase::kBoundedSamples;
    while (sample_yielded_ < sample_target_ &&
           sample_attempts_ < sample_target_ * kAttemptsPerSample) {
      ++sample_attempts_;
      if (auto fates = Draw(bounded)) return fates;
    }
    return std::nullopt;
  }

  // One random state's fates, or nullopt if the draw fell on the wrong side of the bound.
  std::optional<std::vector<WriteFate>> Draw(bool bounded) {
    const auto& items = pending_.items;
    const CrashModel& model = options_.selection.model;
    const size_t m = items.size();
    std::vector<WriteFate> fates;
    if (model.order == OrderModel::kPrefix) {
      if (m == 0) return std::nullopt;
      // Bounded: a cut among the last k items; beyond: any cut outside the exhaustive region.
      const size_t cut =
          bounded ? m - 1 - rng_.Below(std::min<uint64_t>(options_.selection.k, m)) : rng_.Below(m);
      const bool in_bound = m - cut <= options_.selection.k && IsEligibleIndex(cut);
      if (in_bound != bounded) return std::nullopt;
      fates.push_back(RandomDeviation(items[cut], model, rng_));
      for (size_t j = cut + 1; j < m; ++j) fates.push_back({items[j].op, {}, {}});
      return fates;
    }
    if (bounded) {
      if (eligible_.empty() || options_.selection.k == 0) return std::nullopt;
      const size_t d = 1 + rng_.Below(std::min<uint64_t>(options_.selection.k, eligible_.size()));
      std::vector<size_t> pool = eligible_;
      for (size_t i = 0; i < d; ++i) std::swap(pool[i], pool[i + rng_.Below(pool.size() - i)]);
      pool.resize(d);
      std::sort(pool.begin(), pool.end());
      for (size_t i : pool) fates.push_back(RandomDeviation(items[i], model, rng_));
      return fates;
    }
    bool all_eligible = true;
    for (size_t i = 0; i < m; ++i) {
      if (!rng_.Chance(1, 2)) continue;
      fates.push_back(RandomDeviation(items[i], model, rng_));
      all_eligible = all_eligible && IsEligibleIndex(i);
    }
    if (fates.size() <= options_.selection.k && all_eligible)
      return std::nullopt;  // exhaustive region
    return fates;
  }

  const EnumerationOptions& options_;
  uint64_t point_;
  PendingSet pending_;
  std::vector<size_t> eligible_;
  Xoshiro256 rng_;
  PointStats stats_;
  Phase phase_ = Phase::kStart;
  // exhaustive cursor
  size_t d_ = 0;
  uint64_t fate_index_ = 1;      // prefix model
  std::vector<size_t> combo_;    // any subset: indexes into eligible_
  std::vector<uint64_t> index_;  // any subset: fate index per combo item
  // sampling cursor
  uint64_t sample_target_ = 0;
  uint64_t sample_yielded_ = 0;
  uint64_t sample_attempts_ = 0;
};

CrashEnumerator::CrashEnumerator(std::shared_ptr<const Recording> recording,
                                 EnumerationOptions options)
    : recording_(std::move(recording)),
      options_(std::move(options)),
      garbage_seed_(DeriveSeed(options_.selection.seed, kGarbageSalt)) {
  INVARIANT(recording_ != nullptr);
  points_ = options_.points.empty() ? CrashPoints(*recording_) : options_.points;
  for (uint64_t point : points_) INVARIANT(point <= recording_->op_count());
  generators_.resize(points_.size());
  stats_index_.assign(points_.size(), SIZE_MAX);
  stats_.points_total = points_.size();
  if (options_.order == EnumerationOrder::kRoundRobin) {
    live_.resize(points_.size());
    for (size_t i = 0; i < live_.size(); ++i) live_[i] = i;
  }
}

CrashEnumerator::~CrashEnumerator() = default;

CrashEnumerator::PointStates& CrashEnumerator::Generator(size_t i) {
  if (generators_[i] == nullptr) {
    INVARIANT(stats_index_[i] == SIZE_MAX && "a finished point is never restarted");
    generators_[i] = std::make_unique<PointStates>(*recording_, options_, points_[i]);
    const PointStats& ps = generators_[i]->stats();
    stats_.possible = SatAdd(stats_.possible, ps.possible);
    stats_.within_bound = SatAdd(stats_.within_bound, ps.within_bound);
    stats_.planned = SatAdd(stats_.planned, ps.planned);
    // Points start in point order in both orders, so per_point stays sorted.
    ++stats_.crash_points;
    stats_index_[i] = stats_.per_point.size();
    stats_.per_point.push_back(ps);
  }
  return *generators_[i];
}

std::optional<CrashState> CrashEnumerator::NextOf(size_t i) {
  PointStates& g = Generator(i);
  bool sampled = false;
  while (auto fates = g.NextCandidate(&sampled)) {
    CrashState state{options_.selection.kind, g.point(), std::move(*fates), 0};
    if (state.HasGarbage()) state.garbage_seed = garbage_seed_;
    const uint64_t key = options_.dedupe ? ContentKey(*recording_, state) : state.Hash();
    const bool fresh = seen_.insert(key).second;
    if (sampled) g.Accepted(fresh);
    if (!fresh) {
      ++stats_.duplicates;
      continue;
    }
    ++(sampled ? stats_.sampled : stats_.exhaustive);
    ++stats_.per_point[stats_index_[i]].explored;
    return state;
  }
  generators_[i].reset();  // the point is finished
  return std::nullopt;
}

std::optional<CrashState> CrashEnumerator::Next() {
  if (options_.order == EnumerationOrder::kPointByPoint) {
    for (; cursor_ < points_.size(); ++cursor_) {
      if (auto state = NextOf(cursor_)) return state;
    }
    return std::nullopt;
  }
  while (!live_.empty()) {
    if (live_next_ >= live_.size()) live_next_ = 0;  // next round
    const size_t i = live_[live_next_];
    if (auto state = NextOf(i)) {
      ++live_next_;
      return state;
    }
    live_.erase(live_.begin() + static_cast<std::ptrdiff_t>(live_next_));
  }
  return std::nullopt;
}

}  // namespace crashsim::simdisk
