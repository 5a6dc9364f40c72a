// rapidcheck generators for guest workloads and image configurations. Sizes are chosen so that
// writes hit first-touch and overwrite, aligned and unaligned, sub-cluster and multi-cluster
// cases on a small disk, which keeps every crash state cheap to check.
#pragma once

#include <rapidcheck.h>

#include "engine/options.h"
#include "properties/explorer.h"
#include "properties/workload.h"

namespace crashsim {

struct ImageConfig {
  CreateOptions create;
  CacheMode cache_mode = CacheMode::kWritethrough;
  BackingKind backing = BackingKind::kNone;

  std::string ToString() const;
};

void showValue(const ImageConfig& config, std::ostream& os);

// A workload of 1..max_ops operations on a disk of `disk_size` bytes with `cluster_size` clusters.
rc::Gen<Workload> GenWorkload(uint64_t disk_size, uint64_t cluster_size, size_t max_ops);
// Image options and cache mode. `allow_unsafe`: cache=unsafe promises nothing across a power
// loss (flushes never reach the disk), so only the process-kill property generates it.
rc::Gen<ImageConfig> GenImageConfig(bool allow_unsafe);
// The guest disk for a configuration: 16 clusters (3 for 2 MiB clusters) plus a partial one.
uint64_t DiskSizeFor(const ImageConfig& config);
// Explorer options for a configuration and crash kind, with the explorer's default bounds (the
// properties set their own).
ExploreOptions ExploreOptionsFor(const ImageConfig& config, simdisk::CrashKind crash);

}  // namespace crashsim
