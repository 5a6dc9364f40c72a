// What one pending write leaves on the medium under a fate, as byte pieces: shared by
// materialisation (materialise.cc) and content keys (image_key.cc), which must agree exactly.
#pragma once

#include <algorithm>
#include <cstdint>
#include <span>
#include <vector>

#include "simdisk/crash_state.h"
#include "simdisk/recording.h"
#include "simdisk/write_cache.h"

namespace crashsim::simdisk {

// Fills `out` with the garbage a torn unit holds: a pure function of (garbage seed, op, unit).
void FillGarbage(std::span<uint8_t> out, uint64_t garbage_seed, uint64_t op, uint64_t unit);

// Calls fn(offset, bytes) for each piece of write `op` that persisted: the whole write when
// `fate` is null, else its kept units (the write's bytes) and garbage units (garbage, built in
// `scratch`, valid during the call).
template <typename Fn>
void ForEachPersistedPiece(const OpRecord& op, const WriteFate* fate, uint64_t atomic_unit,
                           uint64_t garbage_seed, std::vector<uint8_t>& scratch, Fn fn) {
  INVARIANT(op.kind == OpKind::kWrite);
  if (fate == nullptr) {
    fn(op.offset, std::span<const uint8_t>(*op.data));
    return;
  }
  const uint64_t first_unit = op.offset / atomic_unit;
  const uint64_t units = UnitsOf(op, atomic_unit);
  for (uint64_t u = 0; u < units; ++u) {
    const bool kept = fate->kept.Test(u);
    if (!kept && !fate->garbage.Test(u)) continue;
    const uint64_t begin = std::max(op.offset, (first_unit + u) * atomic_unit);
    const uint64_t end = std::min(op.offset + op.length, (first_unit + u + 1) * atomic_unit);
    std::span<const uint8_t> bytes(op.data->data() + (begin - op.offset), end - begin);
    if (!kept) {
      scratch.resize(bytes.size());
      FillGarbage(scratch, garbage_seed, op.seq, u);
      bytes = scratch;
    }
    fn(begin, bytes);
  }
}

// Applies the pieces of `op` (whole or under `fate`) that fall in [window_offset, +window.size())
// to `window`.
void ApplyPiecesToWindow(const OpRecord& op, const WriteFate* fate, uint64_t atomic_unit,
                         uint64_t garbage_seed, uint64_t window_offset, std::span<uint8_t> window,
                         std::vector<uint8_t>& scratch);

// Calls fn(op, fate-or-null) for every medium-changing op in [from, state.point), in issue order;
// the fate is the state's entry for the op, if it has one.
template <typename Fn>
void ForEachApplied(const Recording& recording, const CrashState& state, uint64_t from, Fn fn) {
  auto fate = std::lower_bound(state.fates.begin(), state.fates.end(), from,
                               [](const WriteFate& f, uint64_t seq) { return f.op < seq; });
  for (uint64_t seq = from; seq < state.point; ++seq) {
    const OpRecord& op = recording.ops()[seq];
    if (!op.ChangesMedium()) continue;
    const bool has_fate = fate != state.fates.end() && fate->op == seq;
    fn(op, has_fate ? &*fate : nullptr);
    if (has_fate) ++fate;
  }
}

}  // namespace crashsim::simdisk
