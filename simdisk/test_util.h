// Test helpers shared by simdisk's tests: small generated workloads run on a SimDisk, and a
// naive reference model (a flat byte vector) that replays a recording under a crash state
// independently of Medium's chunks and overlays.
#pragma once

#include <rapidcheck.h>

#include <cstdint>
#include <memory>
#include <vector>

#include "simdisk/crash_enumerator.h"
#include "simdisk/crash_state.h"
#include "simdisk/fates.h"
#include "simdisk/recording.h"
#include "simdisk/sim_disk.h"

namespace crashsim::simdisk::testing {

struct WorkOp {
  enum Kind { kWrite, kFlush, kResize } kind = kWrite;
  uint64_t offset = 0;  // write offset, or the new size
  uint64_t length = 0;
  bool fua = false;
  IoTag tag = IoTag::kData;
  uint8_t fill = 0;  // data byte pattern seed
  int64_t payload_of =
      -1;  // -1: its own payload; else the index of the write whose bytes it repeats
};

// The bytes written by op: distinct per (op index, fill) so tests can tell writes apart.
std::vector<uint8_t> PayloadFor(const WorkOp& op, size_t index);

// Runs ops on a fresh SimDisk of device_size bytes, returning it.
std::unique_ptr<SimDisk> RunWorkload(const std::vector<WorkOp>& ops, SimDiskOptions options,
                                     uint64_t device_size);

// Reads a whole medium.
std::vector<uint8_t> ReadAll(const Medium& medium);

// The bytes a crash state leaves, by naive replay (old-or-new tears only: garbage units are
// left as old data and reported through `garbage_bytes` when non-null).
std::vector<uint8_t> ReferenceImage(const Recording& recording, const CrashState& state,
                                    std::vector<bool>* garbage_bytes = nullptr);

// rapidcheck generator of workloads on a device of device_size bytes. Some writes repeat an
// earlier write's bytes at its offset (a table written back unchanged), which change nothing in
// the run and matter only when torn with garbage or when what lies beneath them changes.
rc::Gen<std::vector<WorkOp>> GenWorkload(uint64_t device_size, size_t max_ops, bool with_resize);

// Any crash model (order, tear shape, tear content).
CrashModel GenModel();

// Every state the enumerator yields for a recording: within k deviations (budget 64 a point) and
// 8 samples beyond, seeded; `dedupe` as EnumerationOptions has it.
std::vector<CrashState> EnumerateStates(std::shared_ptr<const Recording> recording,
                                        CrashModel model, uint64_t seed, uint64_t k = 1,
                                        bool dedupe = true);

}  // namespace crashsim::simdisk::testing
