// What each snapshot op of a workload acts on, by name, for writers driven by snapshot name
// (validate's targets run `qemu-img snapshot -c/-d/-a NAME`). The rules are guest_run.cc's, and
// SnapshotList's: `snapshot` at op i takes SnapshotName(i), `delete-snapshot` deletes the
// oldest, `apply-snapshot` reverts to the newest one taken at the disk's current size; with
// nothing to act on, or on an image that cannot hold snapshots, the op is skipped and flushes.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "properties/workload.h"

namespace crashsim {

// The name (and id) of the snapshot the workload's op at `op_index` takes: "snap<i+1>".
std::string SnapshotName(size_t op_index);

struct SnapshotOpTarget {
  std::string name;      // the snapshot the op takes, deletes or reverts to; empty otherwise
  bool skipped = false;  // a snapshot op with nothing to act on: it flushes instead
};

// One entry per op of `workload`; `can_hold`: whether the image takes snapshots at all.
std::vector<SnapshotOpTarget> SnapshotOpTargets(const Workload& workload, bool can_hold);

}  // namespace crashsim
