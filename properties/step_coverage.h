// Which steps of the commit protocol (engine/protocol.h) and which on-disk structures a run's
// crash states reached. A state "crashed after" the last write the device accepted before its
// crash point: that write's DurableStep and IoTag are counted. A power-loss state also "lost"
// each write its fates drop or tear. Every state checked is counted, whether its verdict was
// computed or taken from the cache.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "engine/block_device.h"
#include "engine/protocol.h"
#include "simdisk/crash_state.h"
#include "simdisk/recording.h"

namespace crashsim {

struct StepCoverage {
  uint64_t states = 0;
  uint64_t after_step[kDurableStepCount] = {};
  uint64_t lost_step[kDurableStepCount] = {};
  uint64_t after_tag[kIoTagCount] = {};
  uint64_t lost_tag[kIoTagCount] = {};
  // Written by the recorded run (the denominator: a step the run never took cannot be crashed).
  uint64_t run_step[kDurableStepCount] = {};
  uint64_t run_tag[kIoTagCount] = {};

  // The run's own writes, once per recording.
  void AddRun(const simdisk::Recording& recording);
  void Add(const simdisk::Recording& recording, const simdisk::CrashState& state);
  StepCoverage& operator+=(const StepCoverage& other);

  // Steps (never kNone) no state crashed after.
  std::vector<DurableStep> StepsNeverCrashed() const;
  // One row per step and per tag: writes in the run, states crashed after one, states that lost
  // or tore one. Steps and tags nothing wrote are listed too, with zeros.
  std::string Table() const;
};

}  // namespace crashsim
