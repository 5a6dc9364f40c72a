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
rc::Gen<Workload> GenWorkload(uint64_t disk_size, uint64_t cluster_size, size_t max_ops);
// `base` with generated image options, cache mode and backing file. `allow_unsafe`: cache=unsafe
// promises nothing across a power loss (flushes never reach the disk), so only the process-kill
// property generates it.
rc::Gen<ExploreSettings> GenImageSettings(const ExploreSettings& base, bool allow_unsafe);
// The guest disk for the settings' image: 16 clusters (3 for 2 MiB clusters) plus a partial one.
uint64_t DiskSizeFor(const ExploreSettings& settings);

// Geometry where a single write fills a refcount block: 512-byte clusters and 64-bit refcounts,
// so one block covers 64 clusters (32 KiB of file), on a 256 KiB guest disk. Lazy refcounts,
// cache mode and backing file are generated over `base`.
inline constexpr uint64_t kRefblockFillingDisk = 256 * 1024;
rc::Gen<ExploreSettings> GenRefblockFillingSettings(const ExploreSettings& base);
// A write of 72 to 128 clusters (past the first refcount block's 64, so the engine allocates a
// new block and names it in the refcount table), then up to max_ops generated ops.
rc::Gen<Workload> GenRefblockFillingWorkload(size_t max_ops);

}  // namespace crashsim
