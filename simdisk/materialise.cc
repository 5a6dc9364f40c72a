#include "simdisk/materialise.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>

#include "engine/coding.h"
#include "simdisk/hash.h"
#include "simdisk/persisted_pieces.h"
#include "simdisk/prng.h"
#include "simdisk/write_cache.h"

namespace crashsim::simdisk {

namespace {

Status Invalid(const CrashState& state, std::string_view why) {
  return Status::InvalidArgument(fmt::format("crash state {}: {}", state.ToText(), why));
}

uint64_t BarrierOf(const Recording& recording, const CrashState& state) {
  return state.kind == CrashKind::kProcessKill ? state.point : recording.BarrierBefore(state.point);
}

}  // namespace

Status ValidateCrashState(const Recording& recording, const CrashState& state) {
  if (state.point > recording.op_count()) {
    return Invalid(state,
                   fmt::format("crash point past the recording ({} ops)", recording.op_count()));
  }
  if (state.kind == CrashKind::kProcessKill && !state.fates.empty()) {
    return Invalid(state, "a process kill loses no writes");
  }
  const uint64_t barrier = recording.BarrierBefore(state.point);
  for (size_t i = 0; i < state.fates.size(); ++i) {
    const WriteFate& fate = state.fates[i];
    if (i > 0 && state.fates[i - 1].op >= fate.op) return Invalid(state, "fates out of order");
    if (fate.op < barrier || fate.op >= state.point) {
      return Invalid(state, fmt::format("op {} is not pending at point {}", fate.op, state.point));
    }
    const OpRecord& op = recording.ops()[fate.op];
    if (!op.ChangesMedium() || op.IsDurableWrite()) {
      return Invalid(state, fmt::format("op {} is not a pending write or resize", fate.op));
    }
    if (op.kind == OpKind::kResize && !fate.dropped())
      return Invalid(state, "a resize cannot tear");
    const uint64_t units = UnitsOf(op, recording.atomic_unit());
    if (fate.kept.End() > units || fate.garbage.End() > units ||
        fate.kept.Intersects(fate.garbage)) {
      return Invalid(state, fmt::format("bad unit masks for op {} ({} units)", fate.op, units));
    }
    if (units > 0 && fate.kept.Count() == units) {
      return Invalid(state,
                     fmt::format("op {} keeps every unit: it is whole, not a fate", fate.op));
    }
  }
  return Status::Ok();
}

namespace {

// [begin, end) byte ranges of the writes a state gives a fate to, merged and sorted.
std::vector<std::pair<uint64_t, uint64_t>> FatedRanges(const Recording& recording,
                                                       const CrashState& state) {
  std::vector<std::pair<uint64_t, uint64_t>> ranges;
  for (const WriteFate& fate : state.fates) {
    const OpRecord& op = recording.ops()[fate.op];
    if (op.kind == OpKind::kWrite && op.length > 0)
      ranges.push_back({op.offset, op.offset + op.length});
  }
  std::sort(ranges.begin(), ranges.end());
  std::vector<std::pair<uint64_t, uint64_t>> merged;
  for (const auto& r : ranges) {
    if (!merged.empty() && r.first <= merged.back().second) {
      merged.back().second = std::max(merged.back().second, r.second);
    } else {
      merged.push_back(r);
    }
  }
  return merged;
}

}  // namespace

void ApplyFate(Medium& medium, const OpRecord& op, const WriteFate& fate, uint64_t atomic_unit,
               uint64_t garbage_seed) {
  if (fate.dropped()) return;
  if (op.offset + op.length > medium.size()) medium.SetSize(op.offset + op.length);
  std::vector<uint8_t> scratch;
  ForEachPersistedPiece(
      op, &fate, atomic_unit, garbage_seed, scratch,
      [&](uint64_t offset, std::span<const uint8_t> bytes) { medium.WriteAt(offset, bytes); });
}

std::unique_ptr<Medium> MaterialiseByReplay(const Recording& recording, const CrashState& state) {
  const uint64_t barrier = BarrierOf(recording, state);
  std::unique_ptr<Medium> medium = Medium::Overlay(recording.MediumAt(barrier));
  ForEachApplied(recording, state, barrier, [&](const OpRecord& op, const WriteFate* fate) {
    if (fate == nullptr) {
      ApplyWhole(*medium, op);
    } else {
      ApplyFate(*medium, op, *fate, recording.atomic_unit(), state.garbage_seed);
    }
  });
  return medium;
}

Result<std::unique_ptr<Medium>> Materialise(const Recording& recording, const CrashState& state) {
  RETURN_IF_ERROR(ValidateCrashState(recording, state));
  if (state.kind == CrashKind::kProcessKill || state.fates.empty()) {
    return Medium::Overlay(recording.MediumAt(state.point));
  }
  // The state differs from the one that kept every pending write (MediumAt(point), shared by
  // every state of the point) only inside the ranges of the writes it gives a fate to, and in
  // size. So: start from that medium and recompute just those ranges from the barrier's medium.
  const uint64_t barrier = recording.BarrierBefore(state.point);
  const std::shared_ptr<const Medium> base = recording.MediumAt(barrier);
  uint64_t size = base->size();
  uint64_t largest = size;  // the largest size any state of the point can have reached so far
  bool may_shrink = false;  // a resize to below that: some state loses bytes the others keep
  ForEachApplied(recording, state, barrier, [&](const OpRecord& op, const WriteFate* fate) {
    const uint64_t end = op.kind == OpKind::kResize ? op.offset : op.offset + op.length;
    if (op.kind == OpKind::kResize) may_shrink = may_shrink || end < largest;
    largest = std::max(largest, end);
    if (fate != nullptr && fate->dropped()) return;
    size = op.kind == OpKind::kResize ? end : std::max(size, end);
  });
  if (may_shrink) return MaterialiseByReplay(recording, state);

  std::unique_ptr<Medium> medium = Medium::Overlay(recording.MediumAt(state.point));
  INVARIANT(medium->size() >= size);
  medium->SetSize(size);
  std::vector<uint8_t> window, scratch;
  for (const auto& range : FatedRanges(recording, state)) {
    // A plain local, not a structured binding: clang 14 (the fuzz build) cannot capture those.
    const uint64_t begin = range.first;
    const uint64_t end = std::min(range.second, size);
    if (begin >= end) continue;
    window.assign(end - begin, 0);
    if (begin < base->size()) {
      base->ReadAt(begin, std::span(window).first(std::min(end, base->size()) - begin));
    }
    ForEachApplied(recording, state, barrier, [&](const OpRecord& op, const WriteFate* f) {
      if (op.kind != OpKind::kWrite) return;
      ApplyPiecesToWindow(op, f, recording.atomic_unit(), state.garbage_seed, begin, window,
                          scratch);
    });
    // Only the chunks whose bytes differ from the kept-everything medium are written, so the
    // chunks the state does not share with it are exactly where the two can differ.
    std::array<uint8_t, Medium::kChunkSize> current;
    for (uint64_t pos = begin; pos < end;) {
      const uint64_t piece_end =
          std::min(end, AlignDown(pos, Medium::kChunkSize) + Medium::kChunkSize);
      const auto piece = std::span<const uint8_t>(window).subspan(pos - begin, piece_end - pos);
      medium->ReadAt(pos, std::span(current).first(piece.size()));
      if (!std::equal(piece.begin(), piece.end(), current.begin())) medium->WriteAt(pos, piece);
      pos = piece_end;
    }
  }
  return medium;
}

uint64_t ContentKey(const Recording& recording, const CrashState& state) {
  // Process kill and power loss share the key scheme, so a process kill at N and the power-loss
  // state at N that kept everything get the same key.
  const uint64_t barrier = recording.BarrierBefore(state.point);
  uint64_t h = HashCombine(0xc4a5, barrier);
  ForEachApplied(recording, state, barrier, [&](const OpRecord& op, const WriteFate* fate) {
    if (fate != nullptr && fate->dropped()) return;
    h = HashCombine(h, op.seq);
    if (fate == nullptr) return;
    for (uint64_t w : fate->kept.words()) h = HashCombine(h, w);
    h = HashCombine(h, 0x9a4ba9e);
    for (uint64_t w : fate->garbage.words()) h = HashCombine(h, w);
  });
  if (state.HasGarbage()) h = HashCombine(h, state.garbage_seed);
  return h;
}

}  // namespace crashsim::simdisk

namespace crashsim::simdisk {

void FillGarbage(std::span<uint8_t> out, uint64_t garbage_seed, uint64_t op, uint64_t unit) {
  Xoshiro256 rng(DeriveSeed(DeriveSeed(garbage_seed, op), unit));
  for (size_t i = 0; i < out.size(); i += 8) {
    const uint64_t word = rng.Next();
    for (size_t b = 0; b < 8 && i + b < out.size(); ++b)
      out[i + b] = static_cast<uint8_t>(word >> (8 * b));
  }
}

void ApplyPiecesToWindow(const OpRecord& op, const WriteFate* fate, uint64_t atomic_unit,
                         uint64_t garbage_seed, uint64_t window_offset, std::span<uint8_t> window,
                         std::vector<uint8_t>& scratch) {
  const uint64_t window_end = window_offset + window.size();
  if (op.offset >= window_end || op.offset + op.length <= window_offset) return;
  ForEachPersistedPiece(op, fate, atomic_unit, garbage_seed, scratch,
                        [&](uint64_t offset, std::span<const uint8_t> bytes) {
                          const uint64_t a = std::max(offset, window_offset);
                          const uint64_t b = std::min(offset + bytes.size(), window_end);
                          if (a >= b) return;
                          std::copy(
                              bytes.begin() + static_cast<std::ptrdiff_t>(a - offset),
                              bytes.begin() + static_cast<std::ptrdiff_t>(b - offset),
                              window.begin() + static_cast<std::ptrdiff_t>(a - window_offset));
                        });
}

}  // namespace crashsim::simdisk
