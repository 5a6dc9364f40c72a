// ExtentMap: a value per byte range of a large address space, stored as maximal extents, so a
// model of a 1 TiB guest disk costs memory for the ranges that were assigned, not the disk.
// Ranges never assigned hold no value (Visit reports them as gaps).
#pragma once

#include <cstdint>
#include <iterator>
#include <map>

namespace crashsim {

template <typename V>
class ExtentMap {
 public:
  // Gives [begin, end) the value `value`, replacing what was there.
  void Assign(uint64_t begin, uint64_t end, const V& value) {
    if (begin >= end) return;
    Split(begin);
    Split(end);
    extents_.erase(extents_.lower_bound(begin), extents_.lower_bound(end));
    extents_.emplace(begin, Extent{end, value});
    Merge(begin);
  }

  // Calls fn(begin, end, const V* value) for consecutive pieces covering [begin, end) in order;
  // value is null for gaps never assigned.
  template <typename Fn>
  void Visit(uint64_t begin, uint64_t end, Fn fn) const {
    uint64_t pos = begin;
    auto it = extents_.upper_bound(begin);
    if (it != extents_.begin() && std::prev(it)->second.end > begin) --it;
    for (; it != extents_.end() && it->first < end && pos < end; ++it) {
      if (it->first > pos) {
        fn(pos, it->first, static_cast<const V*>(nullptr));
        pos = it->first;
      }
      const uint64_t piece_end = std::min(end, it->second.end);
      fn(pos, piece_end, &it->second.value);
      pos = piece_end;
    }
    if (pos < end) fn(pos, end, static_cast<const V*>(nullptr));
  }

  size_t extent_count() const { return extents_.size(); }

 private:
  struct Extent {
    uint64_t end;
    V value;
  };

  // Makes `at` an extent boundary (splits the extent containing it).
  void Split(uint64_t at) {
    auto it = extents_.upper_bound(at);
    if (it == extents_.begin()) return;
    --it;
    if (it->first == at || it->second.end <= at) return;
    Extent tail{it->second.end, it->second.value};
    it->second.end = at;
    extents_.emplace(at, std::move(tail));
  }

  // Joins the extent at `begin` with equal-valued neighbours that touch it.
  void Merge(uint64_t begin) {
    auto it = extents_.find(begin);
    auto next = std::next(it);
    if (next != extents_.end() && next->first == it->second.end &&
        next->second.value == it->second.value) {
      it->second.end = next->second.end;
      extents_.erase(next);
    }
    if (it != extents_.begin()) {
      auto prev = std::prev(it);
      if (prev->second.end == it->first && prev->second.value == it->second.value) {
        prev->second.end = it->second.end;
        extents_.erase(it);
      }
    }
  }

  std::map<uint64_t, Extent> extents_;  // by begin; disjoint
};

}  // namespace crashsim
