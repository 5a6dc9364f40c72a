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
// Same recording, same options: the same states in the same order, on any machine.
#pragma once

#include <cstdint>
#include <deque>
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
inline constexpr uint32_t kMetadataTags = kAllTags & ~TagBit(IoTag::kData) & ~TagBit(IoTag::kCowData);

struct EnumerationOptions {
  CrashKind kind = CrashKind::kPowerLoss;
  CrashModel model;
  uint64_t k = 1;                      // deviations (dropped or torn items) explored exhaustively
  uint64_t exhaustive_budget = 4096;   // per point; past it the bounded states are sampled
  uint64_t samples = 16;               // per point, random states with more than k deviations
  uint64_t seed = 0;
  uint32_t exhaustive_tags = kAllTags;  // resizes always count as eligible
  bool dedupe = true;
  std::vector<uint64_t> points;  // crash points to visit; empty: CrashPoints(recording)
};

struct PointStats {
  uint64_t point = 0;
  uint64_t pending = 0;
  uint64_t possible = 0;      // states the model allows here (saturating)
  uint64_t within_bound = 0;  // of those, with at most k eligible deviations (saturating)
  uint64_t explored = 0;      // states yielded here
};

struct EnumerationStats {
  uint64_t crash_points = 0;
  uint64_t possible = 0;      // summed over points, saturating
  uint64_t within_bound = 0;  // summed over points, saturating
  uint64_t exhaustive = 0;    // states yielded by exhaustive enumeration
  uint64_t sampled = 0;       // states yielded by sampling
  uint64_t duplicates = 0;    // states skipped: same bytes as a state already yielded
  std::vector<PointStats> per_point;

  uint64_t explored() const { return exhaustive + sampled; }
};

class CrashEnumerator {
 public:
  CrashEnumerator(std::shared_ptr<const Recording> recording, EnumerationOptions options);

  // The next state, or nullopt when every point has been visited.
  std::optional<CrashState> Next();
  const EnumerationStats& stats() const { return stats_; }
  const Recording& recording() const { return *recording_; }

 private:
  void FillPoint(uint64_t point);
  void EnumerateExhaustive(const PendingSet& pending, const std::vector<size_t>& eligible);
  // Samples up to `count` new states inside (bounded) or outside the exhaustive region.
  void Sample(const PendingSet& pending, const std::vector<size_t>& eligible, bool bounded,
              uint64_t count, Xoshiro256& rng);
  // One random state's fates, or nullopt if the draw fell on the wrong side of the bound.
  std::optional<std::vector<WriteFate>> Draw(const PendingSet& pending,
                                             const std::vector<size_t>& eligible, bool bounded,
                                             Xoshiro256& rng) const;
  // Queues the state unless seen; returns whether it was new.
  bool Offer(CrashState state, bool sampled);
  CrashState MakeState(uint64_t point, std::vector<WriteFate> fates) const;

  std::shared_ptr<const Recording> recording_;
  EnumerationOptions options_;
  std::vector<uint64_t> points_;
  size_t next_point_ = 0;
  std::deque<CrashState> queue_;
  std::unordered_set<uint64_t> seen_;  // membership only; never iterated
  uint64_t garbage_seed_;
  EnumerationStats stats_;
};

}  // namespace crashsim::simdisk
