// How the property tests are sized and split, from the environment:
//   CRASHSIM_PROPERTY_SCALE=N   N times the cases and N times the states per case (default 1);
//                               for long soaks. RC_PARAMS still works and wins for rapidcheck.
//   GTEST_SHARD_INDEX / GTEST_TOTAL_SHARDS   split each property's crash states, not its tests:
//                               every shard generates the same workloads (a fixed seed unless
//                               RC_PARAMS names one) and checks every N-th state, so N machines
//                               together cover exactly one run's states (as explore --shard).
//   CRASHSIM_REDUCED_TESTS=1    the sizes of the sanitizer run (ci/test --sanitize sets it: under
//                               ASan and UBSan the longest tests take 5 to 20 times longer). Every
//                               test still runs and asserts what it asserts at full size, on
//                               less; here the ExplorerShortcuts workload with 2 MiB clusters
//                               has 3 ops instead of 4 (explorer_test.cc). The README's CI
//                               section lists all it shrinks: ci/test turns it into RC_PARAMS
//                               max_success=20 for every rapidcheck property, and
//                               tests/interop/written_by_crashsim.sh runs fewer cases.
#pragma once

#include <cstdint>

namespace crashsim {

struct PropertyEnv {
  uint64_t scale = 1;
  uint32_t shard_index = 0;
  uint32_t shard_count = 1;
  bool reduced = false;  // CRASHSIM_REDUCED_TESTS
};

// Read once by the test main before any test runs.
const PropertyEnv& GetPropertyEnv();
void InitPropertyEnv();

}  // namespace crashsim
