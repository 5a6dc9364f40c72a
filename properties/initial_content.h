// What the guest disk reads before the workload: zeros, except where a backing file holds the
// known pattern (kBackingPattern at the guest offset). Kept as extents, so a 1 TiB disk with a
// backing file costs a few extents, never a disk-sized buffer.
#pragma once

#include <cstdint>
#include <span>

#include "properties/extent_map.h"

namespace crashsim {

// The data pattern (workload.h FillPattern) backing files are filled with: unallocated clusters
// read through to it, so a cluster that loses its data reads wrong instead of as plausible zeros.
inline constexpr uint32_t kBackingPattern = 0xbac4;

class InitialContent {
 public:
  // [begin, end) reads as the backing pattern.
  void AddPattern(uint64_t begin, uint64_t end) { pattern_.Assign(begin, end, true); }

  void Fill(uint64_t offset, std::span<uint8_t> out) const;
  bool Matches(uint64_t offset, std::span<const uint8_t> got) const;
  bool all_zero() const { return pattern_.extent_count() == 0; }
  // Whether [begin, end) reads as zeros.
  bool ZeroIn(uint64_t begin, uint64_t end) const;

 private:
  ExtentMap<bool> pattern_;
};

}  // namespace crashsim
