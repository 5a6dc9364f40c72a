// The properties' test main: reads CRASHSIM_PROPERTY_SCALE, CRASHSIM_REDUCED_TESTS and the gtest
// shard variables (property_env.h) before rapidcheck and gtest read their own configuration.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <cstdlib>
#include <string>

#include "properties/property_env.h"

namespace crashsim {
namespace {
PropertyEnv g_env;

uint64_t EnvNumber(const char* name, uint64_t fallback) {
  const char* v = std::getenv(name);
  if (!v || !*v) return fallback;
  char* end = nullptr;
  unsigned long long n = std::strtoull(v, &end, 10);
  return (end && *end == 0) ? n : fallback;
}
}  // namespace

const PropertyEnv& GetPropertyEnv() { return g_env; }

void InitPropertyEnv() {
  g_env.scale = std::max<uint64_t>(1, EnvNumber("CRASHSIM_PROPERTY_SCALE", 1));
  g_env.reduced = EnvNumber("CRASHSIM_REDUCED_TESTS", 0) == 1;
  g_env.shard_count =
      static_cast<uint32_t>(std::max<uint64_t>(1, EnvNumber("GTEST_TOTAL_SHARDS", 1)));
  g_env.shard_index = static_cast<uint32_t>(EnvNumber("GTEST_SHARD_INDEX", 0));
  if (g_env.shard_index >= g_env.shard_count) g_env.shard_index = 0;
  std::string params = std::getenv("RC_PARAMS") ? std::getenv("RC_PARAMS") : "";
  if (params.find("max_success") == std::string::npos) {
    params += fmt::format("{}max_success={}", params.empty() ? "" : " ", 100 * g_env.scale);
  }
  if (g_env.shard_count > 1) {
    // gtest would hand whole tests to shards; the states are split instead, so every shard runs
    // every test with the same workloads.
    ::unsetenv("GTEST_SHARD_INDEX");
    ::unsetenv("GTEST_TOTAL_SHARDS");
    if (params.find("seed") == std::string::npos) params += " seed=1";
  }
  ::setenv("RC_PARAMS", params.c_str(), 1);
}

}  // namespace crashsim

int main(int argc, char** argv) {
  crashsim::InitPropertyEnv();
  ::testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}
