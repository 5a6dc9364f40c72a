// Seeded guest workloads for `crashsim explore --seed N --ops N`, drawn from the project's own
// PRNG (simdisk/prng.h), so a seed names the same workload on every machine and library.
#pragma once

#include <cstdint>

#include "properties/workload.h"

namespace crashsim {

Workload RandomWorkload(uint64_t seed, size_t op_count, uint64_t disk_size, uint64_t cluster_size);

// The built-in default: what `crashsim explore` runs with no workload arguments.
inline constexpr uint64_t kDefaultWorkloadSeed = 1;
inline constexpr size_t kDefaultWorkloadOps = 200;
// Half the ops land anywhere on the disk, so at 64 KiB clusters (an L2 table maps 512 MiB) the
// run allocates both L2 tables; what a crash state costs does not grow with the disk's size.
inline constexpr uint64_t kDefaultDiskSize = uint64_t{1} << 30;

}  // namespace crashsim
