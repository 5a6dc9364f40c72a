// Materialising a crash state: the recording plus a CrashState description give a writable
// BlockDevice holding exactly the bytes the crash left, on which the engine can open, check and
// repair the image. The device is a copy-on-write Medium::Overlay, so building one costs the
// bytes the state changed, not the image size.
//
// Semantics (README.md, "Crash states"): writes and resizes since the barrier are applied in
// issue order, each whole, torn to its kept atomic units (plus garbage units), or not at all. A
// write persisting in any unit also grows the device to its end if it extended it; a dropped
// one does not. Garbage is a pure function of (garbage seed, op, unit), confined to the bytes
// the write covered in that unit.
#pragma once

#include <cstdint>
#include <memory>

#include "simdisk/crash_state.h"
#include "simdisk/medium.h"
#include "simdisk/recording.h"

namespace crashsim::simdisk {

// Validates `state` against the recording (the point exists, fates name pending writes or
// resizes in increasing order, masks fit the write, resizes are only dropped).
Status ValidateCrashState(const Recording& recording, const CrashState& state);

// The device the crash left. Its bytes_copied() tells what materialising it cost: it starts from
// the medium that kept every pending write (shared by every state of the point) and recomputes
// only the ranges of the writes the state gives a fate to.
Result<std::unique_ptr<Medium>> Materialise(const Recording& recording, const CrashState& state);

// The same device built by definition: the medium at the barrier, then every write and resize
// since, in issue order, whole or torn. Slower; `state` must be valid. Materialise falls back to
// it when a pending resize shrinks the medium, and is tested against it.
std::unique_ptr<Medium> MaterialiseByReplay(const Recording& recording, const CrashState& state);

// A key for the bytes a state leaves, from its structure: two states with equal keys leave
// identical media (used to skip states already seen at an earlier crash point). The state must
// be valid.
uint64_t ContentKey(const Recording& recording, const CrashState& state);

// Applies one write of the recording to `medium` torn to `fate` (atomic_unit granularity).
void ApplyFate(Medium& medium, const OpRecord& op, const WriteFate& fate, uint64_t atomic_unit,
               uint64_t garbage_seed);

}  // namespace crashsim::simdisk
