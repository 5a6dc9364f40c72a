// The guest workload `crashsim validate` drives a target with.
#pragma once

#include <cstddef>
#include <cstdint>

#include "properties/workload.h"

namespace crashsim::validate {

// A deterministic workload for `seed`: writes (sub-cluster, unaligned, multi-cluster, overwrites
// of a few hot clusters), zeroes, discards, flushes and reopens, ending in a flush.
Workload GenerateWorkload(uint64_t seed, uint64_t disk_size, uint64_t cluster_size, size_t ops);

}  // namespace crashsim::validate
