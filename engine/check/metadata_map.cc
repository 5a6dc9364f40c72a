#include "engine/check/metadata_map.h"

#include <algorithm>

namespace crashsim::check {

void MetadataMap::Add(uint64_t offset, uint64_t size, std::string name) {
  if (size == 0) return;
  ranges_.push_back({offset, offset + size, std::move(name)});
  sorted_ = false;
}

const std::string* MetadataMap::Find(uint64_t offset, uint64_t size) const {
  if (!sorted_) {
    std::sort(ranges_.begin(), ranges_.end(),
              [](const Range& a, const Range& b) { return a.begin < b.begin; });
    max_end_.resize(ranges_.size());
    uint64_t running = 0;
    for (size_t i = 0; i < ranges_.size(); ++i)
      max_end_[i] = running = std::max(running, ranges_[i].end);
    sorted_ = true;
  }
  const uint64_t end = offset + size;
  // Ranges starting before `end`, scanned from the last while one of them could still reach
  // `offset`; disjoint ranges make this one step.
  size_t i = static_cast<size_t>(
      std::upper_bound(ranges_.begin(), ranges_.end(), end,
                       [](uint64_t v, const Range& r) { return v <= r.begin; }) -
      ranges_.begin());
  while (i > 0 && max_end_[i - 1] > offset) {
    --i;
    if (ranges_[i].end > offset) return &ranges_[i].name;
  }
  return nullptr;
}

}  // namespace crashsim::check
