// rapidcheck generators for guest workloads and image configurations. Sizes are chosen so that
// writes hit first-touch and overwrite, aligned and unaligned, sub-cluster and multi-cluster
// cases on a small disk, which keeps every crash state cheap to check.
#pragma once

#include <rapidcheck.h>

#include "engine/options.h"
#include "properties/workload.h"
#include "settings/explore_settings.h"

namespace crashsim {

// Prints the settings a generator chose, for rapidcheck's counterexamples.
void showValue(const ExploreSettings& settings, std::ostream& os);

// A workload of 1..max_ops operations on a disk of `disk_size` bytes with `cluster_size` clusters.
// Resizes keep the disk between half its size and a few clusters more; every other op lies
// inside the disk as it is when the op runs.
rc::Gen<Workload> GenWorkload(uint64_t disk_size, uint64_t cluster_size, size_t max_ops);
// `base` with generated image options, cache mode and backing file. `allow_unsafe`: cache=unsafe
// promises nothing across a power loss (flushes never reach the disk), so only the process-kill
// property generates it.
rc::Gen<ExploreSettings> GenImageSettings(const ExploreSettings& base, bool allow_unsafe);
// The guest disk for the settings' image: 16 clusters (3 for 2 MiB clusters) plus a partial one.
uint64_t DiskSizeFor(const ExploreSettings& settings);

// The smallest refcount structures qcow2 allows: 512-byte clusters and 64-bit refcounts, so one
// refcount block covers 64 clusters (32 KiB of file) and a one-cluster refcount table 64 blocks
// (2 MiB of file). Lazy refcounts, cache mode and backing file are generated over `base`.
rc::Gen<ExploreSettings> GenSmallRefcountSettings(const ExploreSettings& base);

// On that geometry, a 256 KiB guest disk where a single write fills a refcount block: a write
// of 72 to 128 clusters (past the first block's 64, so the engine allocates a new block and
// names it in the refcount table), then up to max_ops generated ops.
inline constexpr uint64_t kRefblockFillingDisk = 256 * 1024;
rc::Gen<Workload> GenRefblockFillingWorkload(size_t max_ops);

// On that geometry, a 4 MiB guest disk whose refcount table must grow: a first write of
// kTableAgingClusters clusters ages the image to 4,090 clusters of file (with its L2 tables and
// refcount blocks), 6 short of the 4,096 the first table covers, and a reopen leaves it clean;
// the third op writes 12 to 48 fresh clusters, so the engine writes a grown table and switches
// the header to it (R4); then up to max_ops generated ops. Exploring from the third op on
// (ExploreOptions::aging_ops = kTableAgingOps) crashes the growth, about a hundred crash
// points, without the ~5,000 of the aging write; and the states' images differ from a clean
// image only by what the growth and later ops did (a still-dirty aged image would hold 4,000
// clusters of refcounts for every check to report).
inline constexpr uint64_t kTableGrowingDisk = 4 * 1024 * 1024;
inline constexpr uint64_t kTableAgingClusters = 3960;
inline constexpr uint64_t kTableAgingOps = 2;
rc::Gen<Workload> GenTableGrowingWorkload(size_t max_ops);

// Images whose L1 table a resize of a few MiB grows: generated image options, cache mode and
// backing file over `base`, with 512-byte clusters (an L2 table covers 32 KiB and one L1
// cluster 2 MiB) or 4 KiB clusters (2 MiB per L2 table, and shrinks to sizes that are not
// cluster multiples).
rc::Gen<ExploreSettings> GenResizeSettings(const ExploreSettings& base);

// On such an image, a disk of one and a half L2 tables: up to max_ops generated ops, then a
// grow that moves the L1 table (past 2 MiB with 512-byte clusters, past a second L2 table with
// 4 KiB ones), writes in the grown area (one ending at the new end), a shrink below the first L2
// table's reach (its L1 entries past it cleared, their L2 tables freed), a write ending at the
// new end, a grow back and a read of what the shrink cut off (zeros now).
rc::Gen<Workload> GenL1ResizeWorkload(uint64_t cluster_size, size_t max_ops);

}  // namespace crashsim
