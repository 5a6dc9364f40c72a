// A name for everything a read-only load of one internal snapshot reads (the header fields that
// shape reads, the snapshot's L1 table, every L2 table it names and every data cluster those
// map), so that a snapshot view found legal once is not read again while those bytes stay the
// same. Crash states of one run share most of their bytes: the snapshots a workload took are
// checked in every state that holds them, yet their tables and data rarely change.
//
// The name is built from the device's content names (BlockDevice::NameContent), never from the
// bytes, except for L2 tables it has not met before: those are read once and what they map is
// kept by the table's name. Where anything lies outside the device or the device names nothing,
// there is no key, and the caller reads the snapshot.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <utility>
#include <vector>

#include "engine/block_device.h"
#include "engine/check/snapshot_table.h"
#include "engine/format/header.h"
#include "properties/guest_delta.h"

namespace crashsim {

class SnapshotViewKeys {
 public:
  using Key = std::pair<uint64_t, uint64_t>;

  // The key of the view of `entry` (taken by workload op `snapshot_op`) on `device`, whose
  // header is `header`. With `reads`, also adds there the host ranges the key names (the L1
  // table, its L2 tables, their data inside the file). Thread-safe.
  std::optional<Key> KeyOf(BlockDevice& device, const QcowHeader& header,
                           const SnapshotEntry& entry, uint64_t snapshot_op,
                           ByteRanges* reads = nullptr);
  // Whether a view with this key was found legal; Add records one. Thread-safe.
  bool Passed(const Key& key);
  void AddPassed(const Key& key);

 private:
  // What a read through an L2 table depends on: the host ranges its entries name ((offset,
  // length), in entry order) and a digest of the entries without their COPIED flags, which no
  // read looks at (a repair that only sets or clears them leaves the view's key as it was).
  struct L2Reads {
    std::vector<std::pair<uint64_t, uint64_t>> ranges;
    uint64_t digest = 0;
  };
  std::shared_ptr<const L2Reads> ReadsOf(BlockDevice& device, const QcowHeader& header,
                                         uint64_t l2_offset, const ContentName& name);

  std::mutex mutex_;
  std::map<std::pair<uint64_t, uint64_t>, std::shared_ptr<const L2Reads>> l2_reads_;
  std::set<Key> passed_;
};

}  // namespace crashsim
