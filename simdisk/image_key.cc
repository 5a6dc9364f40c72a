#include "simdisk/image_key.h"

#include <xxhash.h>

#include <algorithm>
#include <array>
#include <cstring>

#include "engine/all_zero.h"
#include "engine/coding.h"
#include "simdisk/hash.h"
#include "simdisk/materialise.h"
#include "simdisk/persisted_pieces.h"
#include "simdisk/write_cache.h"

namespace crashsim::simdisk {
namespace {

constexpr uint64_t kSector = kKeySectorSize;
// Sectors below this (8 GiB of medium) find their history in a dense table; those above it (a
// sparse image file that places metadata far out, e.g. preallocated L2 tables of a 1 TiB disk)
// in a hash map, so the index's memory follows the sectors written, not the medium's size.
constexpr uint64_t kDenseSectors = uint64_t{1} << 24;

// Reads [offset, offset + out.size()) of a medium, zeros past its end.
void ReadPadded(const Medium& medium, uint64_t offset, std::span<uint8_t> out) {
  const uint64_t readable =
      offset >= medium.size() ? 0 : std::min<uint64_t>(out.size(), medium.size() - offset);
  if (readable > 0) medium.ReadAt(offset, out.first(readable));
  std::fill(out.begin() + static_cast<std::ptrdiff_t>(readable), out.end(), uint8_t{0});
}

const WriteFate* FindFate(const CrashState& state, uint64_t seq) {
  auto it = std::lower_bound(state.fates.begin(), state.fates.end(), seq,
                             [](const WriteFate& f, uint64_t s) { return f.op < s; });
  return it != state.fates.end() && it->op == seq ? &*it : nullptr;
}

// Calls fn(sector) for every sector a garbage unit of `fate` (a fate of write `op`) covers:
// garbage changes those bytes whether or not the write changed them in the run.
template <typename Fn>
void ForEachGarbageSector(const OpRecord& op, const WriteFate& fate, uint64_t atomic_unit, Fn fn) {
  if (fate.garbage.empty() || op.length == 0) return;
  const uint64_t units = UnitsOf(op, atomic_unit);
  for (uint64_t u = 0; u < units; ++u) {
    if (!fate.garbage.Test(u)) continue;
    const uint64_t a = std::max(op.offset, (op.offset / atomic_unit + u) * atomic_unit);
    const uint64_t b =
        std::min(op.offset + op.length, (op.offset / atomic_unit + u + 1) * atomic_unit);
    for (uint64_t s = a / kSector; s <= (b - 1) / kSector; ++s) fn(s);
  }
}

}  // namespace

ImageKeyIndex::Term ImageKeyIndex::TermOf(uint64_t sector, std::span<const uint8_t> bytes) {
  if (AllZero(bytes)) return {};
  const XXH128_hash_t h = XXH3_128bits(bytes.data(), bytes.size());
  return {Mix64(h.low64 ^ (sector * 0x9e3779b97f4a7c15ULL)),
          Mix64(h.high64 + sector * 0xd1342543de82ef95ULL + 1)};
}

ImageKey KeyOfMedium(const Medium& medium) {
  ImageKey key{0, 0, medium.size()};
  std::array<uint8_t, Medium::kChunkSize> chunk;
  medium.ForEachChunkNotSharedWith(Medium(), [&](uint64_t index) {
    const uint64_t base = index * Medium::kChunkSize;
    if (base >= medium.size()) return;
    ReadPadded(medium, base, chunk);
    for (uint64_t s = 0; s < Medium::kChunkSize / kSector; ++s) {
      const uint64_t sector = base / kSector + s;
      if (sector * kSector >= medium.size()) break;
      std::span<const uint8_t> bytes(chunk.data() + s * kSector, kSector);
      if (AllZero(bytes)) continue;
      const XXH128_hash_t h = XXH3_128bits(bytes.data(), bytes.size());
      key.lo += Mix64(h.low64 ^ (sector * 0x9e3779b97f4a7c15ULL));
      key.hi += Mix64(h.high64 + sector * 0xd1342543de82ef95ULL + 1);
    }
  });
  return key;
}

const ImageKeyIndex::History* ImageKeyIndex::HistoryOf(uint64_t sector) const {
  int32_t index = -1;
  if (sector < history_of_sector_.size()) {
    index = history_of_sector_[sector];
  } else if (auto it = history_of_far_sector_.find(sector); it != history_of_far_sector_.end()) {
    index = it->second;
  }
  return index < 0 ? nullptr : &histories_[static_cast<size_t>(index)];
}

ImageKeyIndex::History& ImageKeyIndex::MutableHistory(uint64_t sector, const Medium& initial) {
  if (sector < kDenseSectors && sector >= history_of_sector_.size()) {
    history_of_sector_.resize(sector + 1, -1);
  }
  int32_t& index = sector < kDenseSectors
                       ? history_of_sector_[sector]
                       : history_of_far_sector_.try_emplace(sector, -1).first->second;
  if (index < 0) {
    INVARIANT(histories_.size() < static_cast<size_t>(INT32_MAX));
    index = static_cast<int32_t>(histories_.size());
    std::array<uint8_t, kSector> bytes;
    ReadPadded(initial, sector * kSector, bytes);
    histories_.push_back({TermOf(sector, bytes), {}});
  }
  return histories_[static_cast<size_t>(index)];
}

ImageKeyIndex::ImageKeyIndex(std::shared_ptr<const Recording> recording)
    : recording_(std::move(recording)) {
  const Recording& rec = *recording_;
  const auto& ops = rec.ops();
  key_at_.resize(ops.size() + 1);
  changed_begin_.resize(ops.size() + 1);
  Medium live = *rec.initial();
  ImageKey running = KeyOfMedium(live);
  std::vector<uint8_t> before, after;
  auto add = [&](Term from, Term to) {
    running.lo += to.lo - from.lo;
    running.hi += to.hi - from.hi;
  };
  for (uint64_t seq = 0; seq < ops.size(); ++seq) {
    key_at_[seq] = running;
    changed_begin_[seq] = changed_.size();
    const OpRecord& op = ops[seq];
    if (!op.ChangesMedium()) continue;
    if (op.kind == OpKind::kWrite && op.length > 0) {
      const uint64_t first = op.offset / kSector;
      const uint64_t last = (op.offset + op.length - 1) / kSector;
      before.resize((last - first + 1) * kSector);
      after.resize(before.size());
      ReadPadded(live, first * kSector, before);
      ApplyWhole(live, op);
      ReadPadded(live, first * kSector, after);
      for (uint64_t s = first; s <= last; ++s) {
        History& h = MutableHistory(s, *rec.initial());
        const Term old_term = h.entries.empty() ? h.initial : h.entries.back().term;
        Term new_term = old_term;
        const size_t at = static_cast<size_t>((s - first) * kSector);
        if (std::memcmp(&before[at], &after[at], kSector) != 0) {
          new_term = TermOf(s, std::span<const uint8_t>(&after[at], kSector));
          changed_.push_back(s);
          add(old_term, new_term);
        }
        h.entries.push_back({seq, new_term});
      }
    } else if (op.kind == OpKind::kResize && op.offset < live.size()) {
      // A shrink: sectors past the new end lose their bytes (the boundary sector its tail).
      const uint64_t old_size = live.size();
      const uint64_t first = op.offset / kSector;
      const uint64_t last = (old_size - 1) / kSector;
      before.resize((last - first + 1) * kSector);
      ReadPadded(live, first * kSector, before);
      live.SetSize(op.offset);
      after.assign(before.size(), 0);
      ReadPadded(live, first * kSector, after);
      for (uint64_t s = first; s <= last; ++s) {
        const size_t at = static_cast<size_t>((s - first) * kSector);
        if (std::memcmp(&before[at], &after[at], kSector) == 0) continue;
        History& h = MutableHistory(s, *rec.initial());
        const Term old_term = h.entries.empty() ? h.initial : h.entries.back().term;
        const Term new_term = TermOf(s, std::span<const uint8_t>(&after[at], kSector));
        changed_.push_back(s);
        add(old_term, new_term);
        h.entries.push_back({seq, new_term});
      }
    } else {
      ApplyWhole(live, op);  // a write of nothing, or a resize that grows: size only
    }
    running.size = live.size();
  }
  key_at_[ops.size()] = running;
  changed_begin_[ops.size()] = changed_.size();
}

std::span<const uint64_t> ImageKeyIndex::ChangedSectors(uint64_t seq) const {
  INVARIANT(seq < changed_begin_.size() - 1);
  return std::span<const uint64_t>(changed_.data() + changed_begin_[seq],
                                   changed_begin_[seq + 1] - changed_begin_[seq]);
}

ImageKeyIndex::Term ImageKeyIndex::TermAt(uint64_t sector, uint64_t point) const {
  const History* h = HistoryOf(sector);
  if (h == nullptr) {
    std::array<uint8_t, kSector> bytes;
    ReadPadded(*recording_->initial(), sector * kSector, bytes);
    return TermOf(sector, bytes);
  }
  auto it = std::lower_bound(h->entries.begin(), h->entries.end(), point,
                             [](const Entry& e, uint64_t p) { return e.seq < p; });
  return it == h->entries.begin() ? h->initial : std::prev(it)->term;
}

std::optional<uint64_t> ImageKeyIndex::StateSize(const CrashState& state, uint64_t barrier) const {
  uint64_t size = recording_->MediumAt(barrier)->size();
  uint64_t largest = size;
  bool may_shrink = false;
  ForEachApplied(*recording_, state, barrier, [&](const OpRecord& op, const WriteFate* fate) {
    const uint64_t end = op.kind == OpKind::kResize ? op.offset : op.offset + op.length;
    if (op.kind == OpKind::kResize) may_shrink = may_shrink || end < largest;
    largest = std::max(largest, end);
    if (fate != nullptr && fate->dropped()) return;
    size = op.kind == OpKind::kResize ? end : std::max(size, end);
  });
  if (may_shrink) return std::nullopt;
  return size;
}

void ImageKeyIndex::Compose(const CrashState& state, uint64_t barrier, uint64_t upto,
                            uint64_t offset, std::span<uint8_t> out) const {
  ReadPadded(*recording_->MediumAt(barrier), offset, out);
  std::vector<uint8_t> scratch;
  CrashState prefix = state;
  prefix.point = upto;
  ForEachApplied(*recording_, prefix, barrier, [&](const OpRecord& op, const WriteFate* fate) {
    if (op.kind != OpKind::kWrite) return;
    ApplyPiecesToWindow(op, fate, recording_->atomic_unit(), state.garbage_seed, offset, out,
                        scratch);
  });
}

ImageKeyIndex::Term ImageKeyIndex::StateTerm(uint64_t sector, const CrashState& state,
                                             uint64_t barrier, uint64_t size) const {
  const uint64_t begin = sector * kSector;
  const uint64_t au = recording_->atomic_unit();
  const History* h = HistoryOf(sector);
  if (h != nullptr && begin + kSector <= size) {
    // The last op before the crash that left bytes in the sector decides it, if it covered the
    // whole sector with its own bytes: then the sector holds what the run's term says.
    auto first = std::lower_bound(h->entries.begin(), h->entries.end(), barrier,
                                  [](const Entry& e, uint64_t p) { return e.seq < p; });
    auto end = std::lower_bound(first, h->entries.end(), state.point,
                                [](const Entry& e, uint64_t p) { return e.seq < p; });
    bool decided = true;
    for (auto it = end; it != first && decided;) {
      --it;
      const OpRecord& op = recording_->ops()[it->seq];
      const bool covers = op.offset <= begin && op.offset + op.length >= begin + kSector;
      const WriteFate* fate = FindFate(state, it->seq);
      if (fate != nullptr) {
        const uint64_t unit = begin / au - op.offset / au;
        if (fate->garbage.Test(unit)) {
          decided = false;
          break;
        }
        if (!fate->kept.Test(unit)) continue;  // nothing of this op reached the sector
      }
      if (covers) return it->term;
      decided = false;
    }
    if (decided) return TermAt(sector, barrier);
  }
  std::array<uint8_t, kSector> bytes;
  Compose(state, barrier, state.point, begin, bytes);
  if (begin + kSector > size) {
    std::fill(bytes.begin() + static_cast<std::ptrdiff_t>(size > begin ? size - begin : 0),
              bytes.end(), uint8_t{0});
  }
  return TermOf(sector, bytes);
}

ImageKey ImageKeyIndex::KeyOf(const CrashState& state) const {
  if (state.kind == CrashKind::kProcessKill || state.fates.empty()) return key_at_[state.point];
  const uint64_t barrier = recording_->BarrierBefore(state.point);
  const std::optional<uint64_t> size = StateSize(state, barrier);
  if (!size) return KeyOfMedium(*MaterialiseByReplay(*recording_, state));
  ImageKey key = key_at_[state.point];
  // Only sectors a fated write changed in the run or covered with garbage can differ from
  // MediumAt(point) (if none of the fated writes covering a sector changed it and none put
  // garbage there, every path through them leaves the same bytes), plus the sector the state's
  // end falls in when it is shorter.
  std::vector<uint64_t> sectors;
  for (const WriteFate& fate : state.fates) {
    const std::span<const uint64_t> changed = ChangedSectors(fate.op);
    sectors.insert(sectors.end(), changed.begin(), changed.end());
    ForEachGarbageSector(recording_->ops()[fate.op], fate, recording_->atomic_unit(),
                         [&](uint64_t s) { sectors.push_back(s); });
  }
  if (*size < key.size && *size % kSector != 0) sectors.push_back(*size / kSector);
  if (state.fates.size() > 1 || state.HasGarbage() || *size < key.size) {
    std::sort(sectors.begin(), sectors.end());
    sectors.erase(std::unique(sectors.begin(), sectors.end()), sectors.end());
  }
  for (uint64_t s : sectors) {
    const Term was = TermAt(s, state.point);
    const Term now = s * kSector >= *size ? Term{} : StateTerm(s, state, barrier, *size);
    key.lo += now.lo - was.lo;
    key.hi += now.hi - was.hi;
  }
  key.size = *size;
  return key;
}

bool ImageKeyIndex::FatedOpChanged(const CrashState& state, uint64_t before_seq,
                                   uint64_t sector) const {
  for (const WriteFate& fate : state.fates) {
    if (fate.op >= before_seq) break;
    const std::span<const uint64_t> changed = ChangedSectors(fate.op);
    if (std::binary_search(changed.begin(), changed.end(), sector)) return true;
    bool garbage = false;
    ForEachGarbageSector(recording_->ops()[fate.op], fate, recording_->atomic_unit(),
                         [&](uint64_t s) { garbage = garbage || s == sector; });
    if (garbage) return true;
  }
  return false;
}

bool ImageKeyIndex::UnitEqualsBeneath(const CrashState& state, uint64_t barrier, const OpRecord& op,
                                      uint64_t unit) const {
  const uint64_t au = recording_->atomic_unit();
  const uint64_t a = std::max(op.offset, (op.offset / au + unit) * au);
  const uint64_t b = std::min(op.offset + op.length, (op.offset / au + unit + 1) * au);
  // Fast: the op did not change these sectors in the run, and no earlier fated op did either,
  // so what lies beneath the op in this state is what lay beneath it in the run.
  const std::span<const uint64_t> own = ChangedSectors(op.seq);
  bool fast = true;
  for (uint64_t s = a / kSector; s <= (b - 1) / kSector && fast; ++s) {
    fast = !std::binary_search(own.begin(), own.end(), s) && !FatedOpChanged(state, op.seq, s);
  }
  if (fast) return true;
  std::vector<uint8_t> beneath(b - a);
  Compose(state, barrier, op.seq, a, beneath);
  return std::memcmp(beneath.data(), op.data->data() + (a - op.offset), b - a) == 0;
}

CrashState ImageKeyIndex::Canonicalise(const CrashState& state) const {
  if (state.kind == CrashKind::kProcessKill || state.fates.empty()) return state;
  const uint64_t barrier = recording_->BarrierBefore(state.point);
  if (!StateSize(state, barrier)) return state;
  CrashState out = state;
  out.fates.clear();
  uint64_t size = recording_->MediumAt(barrier)->size();
  ForEachApplied(*recording_, state, barrier, [&](const OpRecord& op, const WriteFate* fate) {
    const uint64_t end = op.kind == OpKind::kResize ? op.offset : op.offset + op.length;
    const uint64_t size_before = size;
    if (fate == nullptr || !fate->dropped())
      size = op.kind == OpKind::kResize ? end : std::max(size, end);
    if (fate == nullptr) return;
    const uint64_t units = UnitsOf(op, recording_->atomic_unit());
    // A dropped write that would have grown the medium must stay dropped: keeping any unit of it
    // would grow the state.
    if (op.kind != OpKind::kWrite || units == 0 || (fate->dropped() && end > size_before)) {
      out.fates.push_back(*fate);
      return;
    }
    WriteFate canonical = *fate;
    for (uint64_t u = 0; u < units; ++u) {
      if (canonical.kept.Test(u) || canonical.garbage.Test(u)) continue;
      if (UnitEqualsBeneath(state, barrier, op, u)) canonical.kept.Set(u);
    }
    if (canonical.garbage.empty() && canonical.kept.Count() == units) return;  // whole
    out.fates.push_back(std::move(canonical));
  });
  if (!out.HasGarbage()) out.garbage_seed = 0;
  return out;
}

}  // namespace crashsim::simdisk
