// The guest workload `crashsim validate` drives a target with.
#pragma once

#include <cstddef>
#include <cstdint>

#include "properties/workload.h"

namespace crashsim::validate {

// A deterministic workload for `seed`: writes (sub-cluster, unaligned, multi-cluster, overwrites
// of a few hot clusters), zeroes, discards, flushes and reopens, ending in a flush. With
// `image_ops` (for a target that has them) image operations go between those guest ops at fixed
// places: a snapshot after the first third, a resize up by one cluster and back in the middle,
// a revert to the snapshot after two thirds and its deletion before the final flush. The guest
// ops are the same with and without them.
Workload GenerateWorkload(uint64_t seed, uint64_t disk_size, uint64_t cluster_size, size_t ops,
                          bool image_ops = false);

}  // namespace crashsim::validate
