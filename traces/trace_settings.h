// A trace's settings lines (image, cache, crash, model, explore, check; FORMAT.md): how the run
// was explored and checked. The one place the trace format meets the explorer's options.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "engine/options.h"
#include "engine/status.h"
#include "properties/explorer.h"
#include "simdisk/crash_state.h"
#include "simdisk/fates.h"
#include "simdisk/fault_plan.h"

namespace crashsim::traces {

class LineReader;

// How the run was explored and checked: these settings change verdicts or crash states.
struct TraceSettings {
  CreateOptions image;  // size = the workload's disk size
  CacheMode cache_mode = CacheMode::kWritethrough;
  simdisk::CrashKind crash = simdisk::CrashKind::kPowerLoss;
  simdisk::CrashModel model;
  uint64_t atomic_unit = 512;
  uint64_t seed = 0;
  uint64_t k = 1;
  uint64_t exhaustive_budget = 512;
  uint64_t samples = 8;
  bool metadata_first = true;
  bool writes_after_repair = true;
  uint64_t repair_crash_states = 0;
  BackingKind backing = BackingKind::kNone;
  std::optional<simdisk::FaultRule> fault;  // an I/O error injected into the run (fault_sweep.h)

  // CreateOptions and CrashModel have no operator==: compared by their text forms.
  bool operator==(const TraceSettings& other) const;
};

TraceSettings SettingsFrom(const ExploreOptions& options);
// The ExploreOptions that re-run this trace (one state, no failure limit).
ExploreOptions ExploreOptionsFor(const TraceSettings& settings);

// The settings lines, with the image's size set to `disk_size`.
std::string TraceSettingsText(const TraceSettings& settings, uint64_t disk_size);
// Reads the settings lines; comments met before the first are unescaped into `comments`.
Status ParseTraceSettings(LineReader& r, TraceSettings& settings,
                          std::vector<std::string>& comments);

}  // namespace crashsim::traces
