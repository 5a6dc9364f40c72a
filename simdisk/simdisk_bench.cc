// Microbenchmark: the cost of a crash state. A 1 GiB simulated device receives 100 pending
// (unflushed) 64 KiB writes at distinct offsets; crash states at the last point are drawn by the
// enumerator and materialised as copy-on-write overlays. Reported: states materialised per
// second and bytes copied per state (what the overlay had to copy: the kept write bytes plus
// chunks faulted in from the base), which is what bounds the cost, not the 1 GiB size.
#include <benchmark/benchmark.h>

#include <vector>

#include "simdisk/crash_enumerator.h"
#include "simdisk/materialise.h"
#include "simdisk/prng.h"
#include "simdisk/sim_disk.h"

namespace crashsim::simdisk {
namespace {

constexpr uint64_t kDeviceSize = uint64_t{1} << 30;
constexpr uint64_t kWriteSize = 64 * 1024;
constexpr int kPendingWrites = 100;

std::shared_ptr<const Recording> PendingRun() {
  static const std::shared_ptr<const Recording> recording = [] {
    SimDiskOptions options;
    options.initial_size = kDeviceSize;
    SimDisk disk(options);
    Xoshiro256 rng(2024);
    std::vector<uint8_t> data(kWriteSize);
    std::vector<bool> used(kDeviceSize / kWriteSize, false);
    for (int i = 0; i < kPendingWrites; ++i) {
      uint64_t slot = rng.Below(used.size());
      while (used[slot]) slot = rng.Below(used.size());
      used[slot] = true;
      for (auto& b : data) b = static_cast<uint8_t>(rng.Next());
      INVARIANT(disk.Write(slot * kWriteSize, data, {.fua = false, .tag = IoTag::kData}).ok());
    }
    return disk.SnapshotRecording();
  }();
  return recording;
}

std::vector<CrashState> States(TearShape tears, size_t count) {
  auto recording = PendingRun();
  EnumerationOptions options;
  options.selection.model.tears = tears;
  options.selection.k = 1;
  options.selection.exhaustive_budget = count / 2;
  options.selection.samples = count / 2;
  options.points = {recording->op_count()};
  CrashEnumerator enumerator(recording, options);
  std::vector<CrashState> states;
  while (auto state = enumerator.Next()) states.push_back(std::move(*state));
  return states;
}

void Materialise(benchmark::State& bench, TearShape tears) {
  auto recording = PendingRun();
  const std::vector<CrashState> states = States(tears, 256);
  uint64_t copied = 0;
  uint64_t materialised = 0;
  for (auto _ : bench) {
    auto medium = Materialise(*recording, states[materialised % states.size()]);
    copied += (*medium)->bytes_copied();
    ++materialised;
    benchmark::DoNotOptimize(medium);
  }
  bench.counters["states_per_s"] =
      benchmark::Counter(static_cast<double>(materialised), benchmark::Counter::kIsRate);
  bench.counters["bytes_copied_per_state"] =
      static_cast<double>(copied) / static_cast<double>(materialised);
  bench.counters["states_in_pool"] = static_cast<double>(states.size());
}

void BM_MaterialiseDropOnly(benchmark::State& bench) { Materialise(bench, TearShape::kNone); }
void BM_MaterialiseTorn512(benchmark::State& bench) { Materialise(bench, TearShape::kAnySubset); }

// Enumeration alone: describing states, without building them.
void BM_EnumerateStates(benchmark::State& bench) {
  uint64_t states = 0;
  for (auto _ : bench) states += States(TearShape::kAnySubset, 256).size();
  bench.counters["states_per_s"] =
      benchmark::Counter(static_cast<double>(states), benchmark::Counter::kIsRate);
}

BENCHMARK(BM_MaterialiseDropOnly)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_MaterialiseTorn512)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_EnumerateStates)->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace crashsim::simdisk

BENCHMARK_MAIN();
