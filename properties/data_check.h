// The guest-data half of the crash property, at a cost proportional to what a state changed.
//
// The definition (Full): open the image read-only, read every guest range the workload touched
// and hold each 512-byte piece to the oracle at the crash point, then read the parts of every
// mapped cluster no op touched and hold them to the initial content.
//
// The incremental form (Check) uses that every crash state at point N differs from MediumAt(N),
// the state that kept every pending write, only in a few host ranges. For each crash point the
// checker keeps a reference: the mapping of MediumAt(N) and the set of its illegal pieces at N
// (empty unless the engine is wrong), computed once along the crash points in order, each from
// the previous one by re-reading only the guest clusters the ops in between changed and the
// ranges whose legal sources changed (an op began or became durable). A state is then checked by
// reading only the guest clusters whose mapping or data its host ranges change. Whenever that
// finds anything illegal, or cannot bound the change, the state is checked in full, so the
// verdict text is always Full's.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>

#include "engine/block_device.h"
#include "engine/image.h"
#include "engine/options.h"
#include "properties/guest_delta.h"
#include "properties/oracle.h"
#include "properties/snapshot_view_key.h"
#include "simdisk/recording.h"

namespace crashsim {

// Full: reads the guest disk through a read-only open (`read_only` carries the backing opener)
// and holds it to the oracle at `crash_point`. Returns the failure, or "". With must_open false,
// an image that does not open read-only passes. `keys`: as CheckSnapshotData's.
std::string CheckGuestData(BlockDevice& device, const GuestOracle& oracle,
                           const OpenOptions& read_only, uint64_t crash_point, const char* when,
                           bool must_open = true, SnapshotViewKeys* keys = nullptr);

// The snapshot half: every internal snapshot of `img` (open read-only on `device`) must be one a
// workload op took (GuestOracle::SnapshotOpNamed) and read, through a read-only load of it, as
// the guest disk read when that op ran (GuestOracle::CheckSnapshot): ranges no op touched as the
// initial content. Returns the failure, or "". Images that cannot hold snapshots pass.
// With `keys`, a snapshot whose view (SnapshotViewKeys) was found legal before is not read again.
// With `reads` too, it is set to every host range the verdict depends on but the header (the
// snapshot table, what each view's key names), or to nullopt where a view has no key.
std::string CheckSnapshotData(BlockDevice& device, Image& img, const GuestOracle& oracle,
                              const OpenOptions& read_only, const char* when,
                              SnapshotViewKeys* keys = nullptr,
                              std::optional<ByteRanges>* reads = nullptr);

struct DataCheckStats {
  uint64_t checks = 0;           // incremental checks asked for
  uint64_t full_checks = 0;      // of those, answered by the full check
  uint64_t reference_steps = 0;  // crash points whose reference was built
  uint64_t guest_bytes_read = 0;
};

class GuestDataCheck {
 public:
  GuestDataCheck(const GuestOracle& oracle, std::shared_ptr<const simdisk::Recording> recording,
                 OpenOptions read_only);

  // The verdict of CheckGuestData for `image`, which differs from recording.MediumAt(point)
  // only inside `host_delta` (a superset is fine). Thread-safe.
  std::string Check(const simdisk::Medium& image, uint64_t point, const ByteRanges& host_delta,
                    const char* when, bool must_open = true);

  DataCheckStats stats() const;
  // The parsed mapping of recording.MediumAt(point), or null where it does not open. Thread-safe.
  std::shared_ptr<const MappingSnapshot> SnapshotAt(uint64_t point);

 private:
  struct Reference {
    std::shared_ptr<const MappingSnapshot> snapshot;  // null: MediumAt(point) does not open
    std::set<uint64_t> illegal_blocks;                // 512-byte guest blocks, illegal at point
  };

  // Whether the snapshots of `image` (which differs from MediumAt(point) only inside
  // `host_delta`) read exactly as the reference's, and those were found legal: then their
  // verdict is the reference's, and nothing of them is read or named.
  bool SnapshotsAsReference(const simdisk::Medium& image, uint64_t point,
                            const ByteRanges& host_delta);
  const Reference& ReferenceAt(uint64_t point);
  Reference BuildReference(uint64_t point, const Reference* previous, uint64_t previous_point);
  // Adds to `illegal` the blocks of `ranges` (guest) that read illegally at `point` in `image`.
  // Returns false if the image does not open read-only.
  bool CollectIllegal(const simdisk::Medium& image, uint64_t point, const ByteRanges& ranges,
                      std::set<uint64_t>& illegal);
  bool CollectAllIllegal(const simdisk::Medium& image, uint64_t point, std::set<uint64_t>& illegal);

  const GuestOracle& oracle_;
  std::shared_ptr<const simdisk::Recording> recording_;
  OpenOptions read_only_;
  std::vector<uint64_t> points_;  // crash points, increasing
  std::mutex mutex_;              // guards references_ and stats_
  // By point. Each is built from the nearest one below it, or from scratch when there is none
  // (the first point asked; with several jobs a lower point may come after a higher one).
  std::map<uint64_t, Reference> references_;
  DataCheckStats stats_;
  SnapshotViewKeys snapshot_views_;
  struct SnapshotReads {
    bool legal = false;           // the reference's snapshots passed, every view had a key
    ByteRanges ranges;            // the views' reads (CheckSnapshotData's `reads`)
    std::vector<uint8_t> header;  // the reference's header as a load decodes it
  };
  std::map<uint64_t, SnapshotReads> snapshot_reads_;  // by point; guarded by mutex_
};

}  // namespace crashsim
