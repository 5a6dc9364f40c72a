// Which internal snapshots a workload's snapshot ops leave, as guest_run.cc drives the engine:
// `snapshot` takes one, `delete-snapshot` deletes the oldest, `apply-snapshot` reverts to the
// newest one taken at the disk's current size. The live model keeps each snapshot's content
// here and the oracle the op that took it, so the two cannot disagree on which one a revert
// picks.
#pragma once

#include <cstdint>
#include <deque>
#include <utility>

namespace crashsim {

template <typename T>
class SnapshotList {
 public:
  void Take(uint64_t disk_size, T value) { list_.emplace_back(disk_size, std::move(value)); }
  // The oldest snapshot's value, or null when there is none.
  const T* Oldest() const { return list_.empty() ? nullptr : &list_.front().second; }
  void DeleteOldest() {
    if (!list_.empty()) list_.pop_front();
  }
  // What a revert at `disk_size` restores, or null: then it is skipped.
  const T* RevertTarget(uint64_t disk_size) const {
    for (auto it = list_.rbegin(); it != list_.rend(); ++it) {
      if (it->first == disk_size) return &it->second;
    }
    return nullptr;
  }

 private:
  std::deque<std::pair<uint64_t, T>> list_;  // (disk size when taken, value), oldest first
};

}  // namespace crashsim
