// Seeded guest workloads for `crashsim explore --seed N --ops N`, drawn from the project's own
// PRNG (simdisk/prng.h), so a seed names the same workload on every machine and library.
#pragma once

#include <cstdint>

#include "properties/workload.h"

namespace crashsim {

Workload RandomWorkload(uint64_t seed, size_t op_count, uint64_t disk_size, uint64_t cluster_size);

// The built-in default: what `crashsim explore` runs with no workload arguments.
inline constexpr uint64_t kDefaultWorkloadSeed = 1;
inline constexpr size_t kDefaultWorkloadOps = 10;
uint64_t DefaultDiskSize(uint64_t cluster_size);

}  // namespace crashsim
