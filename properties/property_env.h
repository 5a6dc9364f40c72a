// How the property tests are sized and split, from the environment:
//   CRASHSIM_PROPERTY_SCALE=N   N times the cases and N times the states per case (default 1);
//                               for long soaks. RC_PARAMS still works and wins for rapidcheck.
//   GTEST_SHARD_INDEX / GTEST_TOTAL_SHARDS   split each property's crash states, not its tests:
//                               every shard generates the same workloads (a fixed seed unless
//                               RC_PARAMS names one) and checks every N-th state, so N machines
//                               together cover exactly one run's states (as explore --shard).
#pragma once

#include <cstdint>

namespace crashsim {

struct PropertyEnv {
  uint64_t scale = 1;
  uint32_t shard_index = 0;
  uint32_t shard_count = 1;
};

// Read once by the test main before any test runs.
const PropertyEnv& GetPropertyEnv();
void InitPropertyEnv();

}  // namespace crashsim
