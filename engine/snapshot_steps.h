// The steps internal snapshot operations share (engine/snapshot.cc defines them; creation and
// deletion there, reverting in engine/snapshot_apply.cc). Each is one durable step of the
// protocol in engine/snapshot.h; they run under the dirty bit.
#pragma once

#include <cstdint>
#include <vector>

#include "engine/check/snapshot_table.h"
#include "engine/image_state.h"

namespace crashsim::snapshot_steps {

using State = Image::State;

// Why `what` ("snapshot creation") cannot run on this image: it needs a v3 image, whose dirty
// bit makes it crash-safe. Ok on v3.
Status RequireDirtyBit(const State& s, const char* what);
// The image's snapshot table (empty without snapshots).
Result<SnapshotTable> ReadTable(State& s);
// Everything cached reaches the disk (decrements applied, R3), then the dirty bit. Returns
// whether the image was dirty already (then the operation leaves it so).
Result<bool> FlushAndMarkDirty(State& s);
// One more reference to `clusters` clusters from `host_offset`.
Status AddReference(State& s, uint64_t host_offset, uint64_t clusters);
// One reference less to every L2 table `l1` names and every cluster those tables map, applied
// at once: nothing on disk may still name them through `l1`.
Status ReleaseL1Tree(State& s, const std::vector<uint64_t>& l1);
// COPIED set again on the active L1 and L2 entries whose cluster is referenced once (QEMU's
// update_snapshot_refcount with addend 0), written with the refcounts.
Status RestoreCopiedFlags(State& s);
// Frees the old snapshot table (if any) once the header no longer names it, flushes, and
// clears the dirty bit unless the image was dirty before the operation.
Status FreeOldTableAndMarkClean(State& s, uint64_t old_offset, uint64_t old_size, bool was_dirty);

}  // namespace crashsim::snapshot_steps
