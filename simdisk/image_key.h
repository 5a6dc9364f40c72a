// Content keys for crash states: a 128-bit name for the bytes (and size) a crash state leaves,
// computed from the recording without materialising the state, at a cost proportional to the
// sectors the state's lost or torn writes actually changed. Two states with equal keys leave
// identical media (up to a 2^-128 hash collision), whatever crash point, barrier or fates they
// came from: the key of a state is the key of its bytes. Verdicts are cached under it.
//
// The key of a medium is its size plus the sum (mod 2^64, in two independent lanes) of one term
// per non-zero 512-byte sector, term = hash(sector index, sector bytes); an all-zero sector adds
// nothing, so the key does not depend on how a medium stores its zeros. Sums make the key
// incremental: changing one sector subtracts its old term and adds the new one.
//
// The index is built in one pass over the recording (cost: the bytes it wrote, hashed once). For
// every sector any write touched it keeps the history of its term after each such write, and for
// every write the sectors it changed (bytes differ from what lay beneath in the run). A state at
// crash point N differs from MediumAt(N), the state that kept every pending write, only in
// sectors that one of its fated writes changed in the run or filled with garbage; so its key is
// KeyAt(N) corrected on those sectors (most 64 KiB metadata write-backs change one or two of
// their 128 sectors).
//
// Canonicalise rewrites a state's fates so that tear units whose bytes equal what lies beneath
// them at that moment are marked kept (they cannot matter), and fates that then keep every unit
// disappear: states that differ only in such units get one description, and materialising the
// canonical state writes less.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <unordered_map>
#include <vector>

#include "simdisk/crash_state.h"
#include "simdisk/medium.h"
#include "simdisk/recording.h"

namespace crashsim::simdisk {

inline constexpr uint64_t kKeySectorSize = 512;

struct ImageKey {
  uint64_t lo = 0;
  uint64_t hi = 0;
  uint64_t size = 0;
  bool operator==(const ImageKey&) const = default;
};

struct ImageKeyHash {
  size_t operator()(const ImageKey& key) const {
    return static_cast<size_t>(key.lo ^ (key.hi * 0x9e3779b97f4a7c15ULL) ^ (key.size << 1));
  }
};

// The key of a medium's bytes, from every sector it holds (the definition; O(size)).
ImageKey KeyOfMedium(const Medium& medium);

class ImageKeyIndex {
 public:
  explicit ImageKeyIndex(std::shared_ptr<const Recording> recording);

  const Recording& recording() const { return *recording_; }
  // The key of MediumAt(point): every medium-changing op before `point` applied whole.
  ImageKey KeyAt(uint64_t point) const { return key_at_[point]; }
  // The key of Materialise(state); `state` must be valid for the recording.
  ImageKey KeyOf(const CrashState& state) const;
  // The same state with canonical fates (materialises the same bytes).
  CrashState Canonicalise(const CrashState& state) const;

  // Sectors write `seq` changed in the run (empty for other ops), increasing.
  std::span<const uint64_t> ChangedSectors(uint64_t seq) const;

 private:
  struct Term {
    uint64_t lo = 0;
    uint64_t hi = 0;
  };
  struct Entry {
    uint64_t seq;
    Term term;  // the sector's term after op `seq` applied whole in the run
  };
  struct History {
    Term initial;  // the sector's term in the recording's initial medium
    std::vector<Entry> entries;
  };

  static Term TermOf(uint64_t sector, std::span<const uint8_t> bytes);
  const History* HistoryOf(uint64_t sector) const;
  History& MutableHistory(uint64_t sector, const Medium& initial);
  // The sector's term after ops [0, point) applied whole.
  Term TermAt(uint64_t sector, uint64_t point) const;
  // The sector's term in the state (size: the state's size).
  Term StateTerm(uint64_t sector, const CrashState& state, uint64_t barrier, uint64_t size) const;
  // The state's bytes of [offset, offset + out.size()) after its ops in [barrier, upto) applied.
  void Compose(const CrashState& state, uint64_t barrier, uint64_t upto, uint64_t offset,
               std::span<uint8_t> out) const;
  // The state's size, or nothing if a pending resize may shrink the medium (no fast path then).
  std::optional<uint64_t> StateSize(const CrashState& state, uint64_t barrier) const;
  // Whether a fated op before `before_seq` changed `sector` in the run or put garbage in it.
  bool FatedOpChanged(const CrashState& state, uint64_t before_seq, uint64_t sector) const;
  bool UnitEqualsBeneath(const CrashState& state, uint64_t barrier, const OpRecord& op,
                         uint64_t unit) const;

  std::shared_ptr<const Recording> recording_;
  std::vector<ImageKey> key_at_;            // by point, 0..op_count
  std::vector<int32_t> history_of_sector_;  // index into histories_, -1: never written
  std::unordered_map<uint64_t, int32_t> history_of_far_sector_;  // the same, past kDenseSectors
  std::vector<History> histories_;
  std::vector<uint64_t> changed_;        // ChangedSectors of every op, concatenated
  std::vector<uint64_t> changed_begin_;  // by seq: where its sectors start in changed_
};

}  // namespace crashsim::simdisk
