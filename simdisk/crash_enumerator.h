// CrashEnumerator: walks the crash states of a recorded run, crash point by crash point
// (CrashPoints), and yields CrashState descriptions to materialise and check.
//
// At each point, with pending items P and the crash model's fates (fates.h):
//  1. exhaustive: every state in which at most k items deviate from "persisted whole"
//     (CrashMonkey-style bounding), in a fixed order: by number of deviations, then by the items
//     (lexicographic), then by fate index. Only items whose IoTag is in exhaustive_tags deviate
//     here, so the budget goes to metadata ordering when data writes are left out. If that set is
//     larger than exhaustive_budget, the same number of its states is sampled instead.
//  2. sampled: `samples` random states with more than k deviations (any tag), from a stream
//     seeded by (seed, point), so a point's states do not depend on the points before it.
// States whose bytes equal a state already yielded (ContentKey) are skipped when dedupe is on.
//
// Order: kPointByPoint yields every state of a point before the next point's. kRoundRobin
// stratifies: round r yields the r-th state of every point that has one, in point order, so
// every crash point has a state before any has a second (the first is the one that kept every
// pending write): a run capped at N states covers the first min(N, points) crash points, and
// so reaches the last (the clean close) only when N >= points; the explorer never caps below
// that. With dedupe off, both orders yield the same states of each point, in the same order
// within the point (with dedupe on, which of two equal states is kept depends on the order);
// states are made on demand, a point's generator holds only its pending set and a cursor.
//
// Same recording, same options: the same states in the same order, on any machine.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <unordered_set>
#include <vector>

#include "simdisk/crash_state.h"
#include "simdisk/fates.h"
#include "simdisk/recording.h"
#include "simdisk/write_cache.h"

namespace crashsim::simdisk {

inline constexpr uint32_t TagBit(IoTag tag) { return uint32_t{1} << static_cast<uint8_t>(tag); }
inline constexpr uint32_t kAllTags = (uint32_t{1} << kIoTagCount) - 1;
// Every tag but guest data: the exhaustive budget is spent on metadata ordering.
inline constexpr uint32_t kMetadataTags =
    kAllTags & ~TagBit(IoTag::kData) & ~TagBit(IoTag::kCowData);

enum class EnumerationOrder : uint8_t { kPointByPoint, kRoundRobin };

// Which crash states each crash point contributes: the crash kind and persistence model, the
// deviations explored exhaustively within a budget, the random states beyond, and their seed.
// Part of what a run is (ExploreSettings, settings/explore_settings.h, holds one), so the
// enumerator takes it as it is rather than a copy field by field.
struct StateSelection {
  CrashKind kind = CrashKind::kPowerLoss;
  CrashModel model;
  uint64_t k = 1;                    // deviations (dropped or torn items) explored exhaustively
  uint64_t exhaustive_budget = 512;  // per point; past it the bounded states are sampled
  uint64_t samples = 8;              // per point, random states with more than k deviations
  uint64_t seed = 0;
};

struct EnumerationOptions {
  StateSelection selection;
  uint32_t exhaustive_tags = kAllTags;  // resizes always count as eligible
  bool dedupe = true;
  EnumerationOrder order = EnumerationOrder::kPointByPoint;
  std::vector<uint64_t> points;  // crash points to visit; empty: CrashPoints(recording)
};

struct PointStats {
  uint64_t point = 0;
  uint64_t pending = 0;
  uint64_t possible = 0;      // states the model allows here (saturating)
  uint64_t within_bound = 0;  // of those, with at most k eligible deviations (saturating)
  uint64_t planned = 0;       // states the enumeration will try here: an upper bound on explored
  uint64_t explored = 0;      // states yielded here
};

struct EnumerationStats {
  uint64_t points_total = 0;          // crash points the enumeration covers when run to the end
  uint64_t crash_points = 0;          // crash points visited (covered) so far
  uint64_t possible = 0;              // summed over points started, saturating
  uint64_t within_bound = 0;          // summed over points started, saturating
  uint64_t planned = 0;               // summed over points started: at most this many states
  uint64_t exhaustive = 0;            // states yielded by exhaustive enumeration
  uint64_t sampled = 0;               // states yielded by sampling
  uint64_t duplicates = 0;            // states skipped: same bytes as a state already yielded
  std::vector<PointStats> per_point;  // points started, in point order

  uint64_t explored() const { return exhaustive + sampled; }
};

class CrashEnumerator {
 public:
  CrashEnumerator(std::shared_ptr<const Recording> recording, EnumerationOptions options);
  ~CrashEnumerator();

  // The next state, or nullopt when every point has been visited.
  std::optional<CrashState> Next();
  const EnumerationStats& stats() const { return stats_; }
  const Recording& recording() const { return *recording_; }

 private:
  class PointStates;

  // The next new state of point generator `i`, or nullopt when it has no more.
  std::optional<CrashState> NextOf(size_t i);
  PointStates& Generator(size_t i);

  std::shared_ptr<const Recording> recording_;
  EnumerationOptions options_;
  std::vector<uint64_t> points_;
  std::vector<std::unique_ptr<PointStates>> generators_;  // by index in points_, made on demand
  std::vector<size_t> stats_index_;    // by index in points_: its entry in stats_.per_point
  size_t cursor_ = 0;                  // the point (index) to ask next
  std::vector<size_t> live_;           // round-robin: points with states left, in point order
  size_t live_next_ = 0;               // round-robin: position in live_ of the next point to ask
  std::unordered_set<uint64_t> seen_;  // membership only; never iterated
  uint64_t garbage_seed_;
  EnumerationStats stats_;
};

}  // namespace crashsim::simdisk
