// What a crash-exploration run is, as one value: the image and its backing file, the cache
// mode's durability contract, the crash and tear model, how crash states are chosen (seed,
// bound, budget, samples), and what is checked beyond check and repair. Everything here can
// change a verdict or the set of crash states, so a trace records all of it (traces/FORMAT.md)
// and nothing more. `crashsim explore`, `crashsim validate`, the property run and the trace
// reader all hold this one type, set it from the same words (SetSetting) and print it the same
// way (SettingValue, SettingsText). How much of a run to do (a state cap, shards, threads, when
// to stop) belongs to each driver's own options.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "engine/cache_mode.h"
#include "engine/options.h"
#include "engine/status.h"
#include "simdisk/crash_enumerator.h"
#include "simdisk/crash_state.h"
#include "simdisk/fates.h"
#include "simdisk/fault_plan.h"

namespace crashsim {

// A backing file under the image, filled with a known pattern: unallocated clusters read
// through to it, so a cluster that loses its data reads wrong instead of as plausible zeros.
enum class BackingKind : uint8_t { kNone, kRaw, kQcow2 };
const char* BackingKindName(BackingKind kind);  // "none", "raw", "qcow2"

// Bounds on values read from untrusted text (trace files): the reader checks them before it
// allocates anything from them.
inline constexpr uint64_t kMaxDeviations = 64;  // k
inline constexpr uint64_t kMaxRepairCrashStates = uint64_t{1} << 20;

struct ExploreSettings {
  CreateOptions image;  // size: the workload's disk; never a backing_file (`backing` says)
  BackingKind backing = BackingKind::kNone;
  CacheMode cache_mode = CacheMode::kWritethrough;
  // The crash kind and model, k, budget, samples and seed (also a seeded workload's seed).
  simdisk::StateSelection selection;
  uint64_t atomic_unit = 512;       // bytes a torn write keeps or loses together
  bool metadata_first = true;       // spend the exhaustive budget on metadata writes
  bool writes_after_repair = true;  // after repair the image takes writes, no cluster used twice
  // Per dirty state: power-loss states of its repair to check (spread over the repair's crash
  // points), and repairs failed by an I/O error on each of its first this-many writes. After a
  // process kill the repair's disk still holds, volatile, what the killed run had not flushed
  // (cache modes that honour flushes), so those states can lose it too.
  uint64_t repair_crash_states = 0;
  // An I/O error injected into the recorded run (properties/fault_sweep.h): the run goes on past
  // it as a guest would, and only the crash points after it are explored.
  std::optional<simdisk::FaultRule> fault;

  // Equal when every setting's text is equal (CreateOptions and CrashModel have no operator==).
  bool operator==(const ExploreSettings& other) const;
};

// The budgets each driver starts from; everything else is the struct's defaults.
enum class SettingsPreset : uint8_t {
  kExplore,   // `crashsim explore`: 512 exhaustive states and 8 samples a point, 4 repair
              // crashes, seed 1 (the built-in default workload)
  kProperty,  // the rapidcheck properties: 64 and 2 a point (samples scaled by
              // CRASHSIM_PROPERTY_SCALE), 2 repair crashes
  kValidate,  // `crashsim validate`: a third-party target is slow, 2 and 1 a point, seed 1
};
ExploreSettings PresetSettings(SettingsPreset preset);

// Every setting has one key and one spelling of its values:
//   image=OPTIONS (qemu-img -o syntax)  cache=MODE  crash=power-loss|process-kill
//   order=any|prefix  tears=none|prefix|any  content=old-or-new|garbage  unit=512|4096
//   seed=N  k=N  budget=N  samples=N  metadata-first=on|off  writes-after-repair=on|off
//   repair-crash-states=N  backing=none|raw|qcow2  fault=KIND#N:EIO|ENOSPC|none
std::string SettingValue(const ExploreSettings& settings, std::string_view key);
// Sets `key` from its text; the error names the key and what it accepts, and leaves `settings`
// unchanged. Numbers are decimal or 0x hex.
Status SetSetting(ExploreSettings& settings, std::string_view key, std::string_view value);
// "key=value" words for `keys`, separated by spaces.
std::string SettingsText(const ExploreSettings& settings,
                         std::initializer_list<std::string_view> keys);
// Every key, in the order of the list above.
std::span<const std::string_view> SettingKeys();

// The crash-state enumeration these settings ask for: their selection, metadata first if so,
// every state counted (no dedupe: the verdict cache keeps a repeated state from being checked
// twice), in point-by-point order.
simdisk::EnumerationOptions EnumerationOptionsFor(const ExploreSettings& settings);

}  // namespace crashsim
