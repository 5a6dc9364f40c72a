#include "properties/oracle.h"

#include <fmt/format.h>

#include <algorithm>

#include "engine/all_zero.h"
#include "engine/invariant.h"
#include "properties/snapshot_list.h"
#include "properties/snapshot_ops.h"

namespace crashsim {
namespace {

// Tears happen at atomic units of at least 512 bytes, and a guest offset keeps its alignment
// within a host cluster, so each 512-byte guest piece of a segment comes from one source.
constexpr uint64_t kPiece = 512;

// Appends each of `more` that `set` lacks (small vectors of sources or sizes).
template <typename T>
void AddAll(std::vector<T>& set, std::initializer_list<T> more) {
  for (const T& v : more) {
    if (std::find(set.begin(), set.end(), v) == set.end()) set.push_back(v);
  }
}
template <typename T>
void AddAll(std::vector<T>& set, const std::vector<T>& more) {
  for (const T& v : more) AddAll(set, {v});
}

}  // namespace

void AssignDurability(const Workload& workload, CacheMode mode, simdisk::CrashKind crash,
                      std::vector<OpTiming>& timings) {
  const bool through = CacheModeWritesThrough(mode);
  const bool nothing = mode == CacheMode::kUnsafe && crash == simdisk::CrashKind::kPowerLoss;
  // Walk backwards: the next flush (or reopen) acknowledgement makes everything before durable.
  uint64_t next_flush_ack = kNever;
  for (size_t i = timings.size(); i-- > 0;) {
    const WorkloadOp& op = workload.ops[i];
    bool is_flush = IsFlushLike(op.kind);
    const bool failed = timings[i].ack == kNever;  // the guest was told it failed
    if (is_flush && !failed) next_flush_ack = timings[i].ack;
    // A reopen (or the final close) that fails drops the engine without a clean close: what was
    // not yet durable may be lost, as after a process kill, and no later flush promises it.
    // Other failed ops void nothing: a later flush that succeeds promises all acknowledged before.
    if (failed && is_flush && (op.kind == WorkloadOpKind::kReopen || i + 1 == timings.size())) {
      next_flush_ack = kNever;
    }
    if (nothing || failed) {
      timings[i].durable = kNever;
    } else if (through || is_flush) {
      timings[i].durable = timings[i].ack;
    } else {
      timings[i].durable = next_flush_ack;
    }
  }
}

GuestOracle::GuestOracle(const Workload& workload, std::vector<OpTiming> timings,
                         InitialContent initial, bool snapshots)
    : workload_(workload),
      timings_(std::move(timings)),
      initial_(std::move(initial)),
      snapshots_(snapshots) {
  for (size_t j = 1; j < timings_.size(); ++j) {
    monotone_timings_ = monotone_timings_ && timings_[j - 1].begin <= timings_[j].begin &&
                        timings_[j - 1].durable <= timings_[j].durable;
  }
  sizes_ = workload_.Sizes();
  ranges_.resize(workload_.ops.size());
  std::vector<uint64_t> cuts;
  for (size_t j = 0; j < workload_.ops.size(); ++j) {
    const WorkloadOp& op = workload_.ops[j];
    if (op.TouchesData()) {
      ranges_[j] = {op.offset, op.offset + op.length};
    } else if (op.kind == WorkloadOpKind::kResize && op.new_size != sizes_[j]) {
      // Zeros between the old end and the new: what a grown area reads, and what an area cut
      // off reads should it come back.
      ranges_[j] = {std::min(sizes_[j], op.new_size), std::max(sizes_[j], op.new_size)};
    }
    if (!ranges_[j]) continue;
    cuts.push_back(ranges_[j]->first);
    cuts.push_back(ranges_[j]->second);
  }
  std::sort(cuts.begin(), cuts.end());
  cuts.erase(std::unique(cuts.begin(), cuts.end()), cuts.end());
  for (size_t i = 0; i + 1 < cuts.size(); ++i) {
    std::vector<uint32_t> ops;
    for (uint32_t j = 0; j < workload_.ops.size(); ++j) {
      if (ranges_[j] && ranges_[j]->first <= cuts[i] && cuts[i + 1] <= ranges_[j]->second) {
        ops.push_back(j);
      }
    }
    if (ops.empty()) continue;  // a gap between touched ranges
    segments_.push_back({cuts[i], cuts[i + 1]});
    segment_ops_.push_back(std::move(ops));
  }
  if (snapshots) {
    for (size_t j = 0; j < workload_.ops.size(); ++j) {
      if (workload_.ops[j].kind == WorkloadOpKind::kSnapshot) snapshot_ops_[SnapshotName(j)] = j;
    }
    AddReverts();
  }
}

void GuestOracle::AddReverts() {
  // Which snapshot op each apply-snapshot op reverts to: the newest one still there whose disk
  // size is the current one (guest_run.cc), with deletions taking the oldest.
  SnapshotList<uint32_t> taken;                        // the snapshot op that took each
  std::vector<std::pair<uint32_t, uint32_t>> reverts;  // (apply op, snapshot op), in op order
  for (uint32_t j = 0; j < workload_.ops.size(); ++j) {
    const WorkloadOpKind kind = workload_.ops[j].kind;
    if (kind == WorkloadOpKind::kSnapshot) taken.Take(sizes_[j], j);
    if (kind == WorkloadOpKind::kDeleteSnapshot) taken.DeleteOldest();
    if (kind != WorkloadOpKind::kApplySnapshot) continue;
    if (const uint32_t* snapshot = taken.RevertTarget(sizes_[j])) reverts.push_back({j, *snapshot});
  }
  if (reverts.empty() || segments_.empty()) return;
  // A revert touches every segment (ranges no op touched hold the initial content in every
  // snapshot alike); it leaves what each segment held when the snapshot was taken.
  for (const auto& [apply, snapshot] : reverts) {
    std::vector<std::vector<int64_t>> values(segments_.size());
    for (size_t s = 0; s < segments_.size(); ++s) values[s] = ContentAt(s, snapshot);
    revert_values_[apply] = std::move(values);
    ranges_[apply] = {segments_.front().first, segments_.back().second};
    for (auto& ops : segment_ops_)
      ops.insert(std::upper_bound(ops.begin(), ops.end(), apply), apply);
  }
}

std::vector<int64_t> GuestOracle::ValuesOf(uint32_t j, size_t segment,
                                           const std::vector<int64_t>& before) const {
  const WorkloadOp& op = workload_.ops[j];
  switch (op.kind) {
    case WorkloadOpKind::kWrite:
      return {static_cast<int64_t>(j)};
    case WorkloadOpKind::kZero:
      return {kZero};
    case WorkloadOpKind::kApplySnapshot:
      return revert_values_.at(j)[segment];
    case WorkloadOpKind::kResize:
      if (op.new_size > sizes_[j]) return {kZero};  // a grown area reads as zeros only
      // A shrink unmaps what it cuts off, as a discard does: until the size falls, that range
      // reads as before, as zeros or as what lies beneath.
      [[fallthrough]];
    default: {  // discard: the old value, zeros, or what lies beneath (the initial content)
      std::vector<int64_t> values = before;
      AddAll(values, {kZero, kInitial});
      return values;
    }
  }
}

std::vector<int64_t> GuestOracle::ContentAt(size_t segment, uint32_t snapshot_op) const {
  // Every op before a snapshot completed before it began (ops run one at a time), and the
  // snapshot flushed them: each left its values, or, if it failed, maybe left them.
  std::vector<int64_t> values = {kInitial};
  for (uint32_t j : segment_ops_[segment]) {
    if (j >= snapshot_op) break;
    std::vector<int64_t> next = ValuesOf(j, segment, values);
    if (timings_[j].ack == kNever) {
      AddAll(values, next);
    } else {
      values = std::move(next);
    }
  }
  return values;
}

void GuestOracle::Candidates(size_t segment, uint64_t crash_point,
                             std::vector<int64_t>& out) const {
  out.assign(1, kInitial);
  for (uint32_t j : segment_ops_[segment]) {
    const OpTiming& t = timings_[j];
    if (t.begin == kNever || t.begin >= crash_point) break;  // not issued before the crash
    const std::vector<int64_t> values = ValuesOf(j, segment, out);
    bool durable = t.durable != kNever && t.durable < crash_point;
    if (durable) out.clear();
    AddAll(out, values);
  }
}

bool GuestOracle::PieceMatches(int64_t source, uint64_t offset,
                               std::span<const uint8_t> got) const {
  if (source == kZero) {
    return AllZero(got);
  }
  if (source == kInitial) return initial_.Matches(offset, got);
  return PatternMismatch(workload_.ops[static_cast<size_t>(source)].pattern, offset, got) ==
         got.size();
}

std::string GuestOracle::DescribeSource(int64_t source) const {
  if (source == kZero) return "zeros";
  if (source == kInitial) return "the initial content";
  return fmt::format("op #{} ({})", source, workload_.ops[static_cast<size_t>(source)].ToText());
}

std::vector<uint64_t> GuestOracle::LegalSizes(uint64_t crash_point) const {
  // The size the last resize durable before the crash left, and that of every resize begun
  // since (not yet durable: its header write may or may not have landed).
  std::vector<uint64_t> legal = {sizes_.front()};
  for (size_t j = 0; j < workload_.ops.size() && j < timings_.size(); ++j) {
    if (workload_.ops[j].kind != WorkloadOpKind::kResize) continue;
    const OpTiming& t = timings_[j];
    if (t.begin == kNever || t.begin >= crash_point) continue;
    if (t.durable != kNever && t.durable < crash_point) legal.clear();
    AddAll(legal, {workload_.ops[j].new_size});
  }
  return legal;
}

std::optional<DataViolation> GuestOracle::CheckSize(uint64_t crash_point,
                                                    uint64_t virtual_size) const {
  const std::vector<uint64_t> legal = LegalSizes(crash_point);
  if (std::find(legal.begin(), legal.end(), virtual_size) != legal.end()) return std::nullopt;
  std::string sizes;
  for (uint64_t size : legal) sizes += fmt::format("{}{}", sizes.empty() ? "" : " or ", size);
  return DataViolation{virtual_size,
                       fmt::format("the guest disk is {} bytes, but at crash point {} it may only "
                                   "be {} bytes",
                                   virtual_size, crash_point, sizes)};
}

bool GuestOracle::ImpliedMatches(const std::vector<int64_t>& candidates, uint64_t begin,
                                 uint64_t end, ImpliedContent content) const {
  auto has = [&](int64_t source) {
    return std::find(candidates.begin(), candidates.end(), source) != candidates.end();
  };
  const int64_t same = content == ImpliedContent::kZero ? kZero : kInitial;
  const int64_t other = content == ImpliedContent::kZero ? kInitial : kZero;
  // Zeros and the initial content are the same bytes where the initial content is zero.
  return has(same) || (has(other) && initial_.ZeroIn(begin, end));
}

bool GuestOracle::ImpliedLegal(uint64_t crash_point, uint64_t begin, uint64_t end,
                               ImpliedContent content) const {
  if (content == ImpliedContent::kRead) return false;
  std::vector<int64_t> candidates;
  bool legal = true;
  // Untouched pieces must read as the initial content.
  const std::vector<int64_t> untouched = {kInitial};
  ForEachUntouched(begin, end, [&](uint64_t b, uint64_t e) {
    legal = legal && ImpliedMatches(untouched, b, e, content);
  });
  auto it = std::upper_bound(segments_.begin(), segments_.end(), std::make_pair(begin, UINT64_MAX));
  if (it != segments_.begin() && std::prev(it)->second > begin) --it;
  for (; legal && it != segments_.end() && it->first < end; ++it) {
    Candidates(static_cast<size_t>(it - segments_.begin()), crash_point, candidates);
    legal =
        ImpliedMatches(candidates, std::max(begin, it->first), std::min(end, it->second), content);
  }
  return legal;
}

Result<std::optional<DataViolation>> GuestOracle::Check(uint64_t crash_point, uint64_t virtual_size,
                                                        const Reader& read,
                                                        const ImpliedRuns* implied) const {
  if (auto bad_size = CheckSize(crash_point, virtual_size)) return bad_size;
  return CheckSegments(
      virtual_size,
      [&](size_t segment, std::vector<int64_t>& out) { Candidates(segment, crash_point, out); },
      fmt::format("at crash point {}", crash_point), read, implied);
}

std::optional<uint64_t> GuestOracle::SnapshotOpNamed(const std::string& name) const {
  auto it = snapshot_ops_.find(name);
  if (it == snapshot_ops_.end()) return std::nullopt;
  return it->second;
}

Result<std::optional<DataViolation>> GuestOracle::CheckSnapshot(uint64_t snapshot_op,
                                                                uint64_t virtual_size,
                                                                const Reader& read,
                                                                const ImpliedRuns* implied) const {
  INVARIANT(snapshot_op < workload_.ops.size() &&
            workload_.ops[snapshot_op].kind == WorkloadOpKind::kSnapshot);
  const std::string where = fmt::format("in the snapshot op #{} took", snapshot_op);
  if (virtual_size != sizes_[snapshot_op]) {
    return std::optional<DataViolation>(DataViolation{
        virtual_size, fmt::format("the guest disk {} is {} bytes, but it was {} bytes then", where,
                                  virtual_size, sizes_[snapshot_op])});
  }
  return CheckSegments(
      virtual_size,
      [&](size_t segment, std::vector<int64_t>& out) {
        out = ContentAt(segment, static_cast<uint32_t>(snapshot_op));
      },
      where, read, implied);
}

Result<std::optional<DataViolation>> GuestOracle::CheckSegments(uint64_t virtual_size,
                                                                const SegmentSources& sources,
                                                                const std::string& where,
                                                                const Reader& read,
                                                                const ImpliedRuns* implied) const {
  // Reads go a chunk at a time: a segment can be most of the disk (a resize's).
  constexpr uint64_t kChunk = 1 << 20;
  std::vector<int64_t> candidates;
  std::vector<uint8_t> buf;
  for (size_t s = 0; s < segments_.size(); ++s) {
    const uint64_t start = segments_[s].first;
    const uint64_t end = std::min(segments_[s].second, virtual_size);
    if (start >= end) break;  // past the end of this disk
    sources(s, candidates);
    uint64_t pos = start;
    // Chunks end on piece boundaries, so a piece is never split.
    auto chunk_end = [&](uint64_t from) { return (from + kChunk) / kPiece * kPiece; };
    while (pos < end) {
      uint64_t stop = std::min(end, chunk_end(pos));
      if (implied != nullptr) {
        const ImpliedRun run = (*implied)(pos);
        INVARIANT(run.end > pos);
        stop = std::min(end, run.end);
        if (run.content != ImpliedContent::kRead &&
            ImpliedMatches(candidates, pos, stop, run.content)) {
          pos = stop;
          continue;
        }
        stop = std::min(stop, chunk_end(pos));
      }
      buf.resize(stop - pos);
      RETURN_IF_ERROR(read(pos, buf));
      for (uint64_t at = pos; at < stop;) {
        const uint64_t piece_end = std::min(stop, (at / kPiece + 1) * kPiece);
        std::span<const uint8_t> got(&buf[at - pos], piece_end - at);
        bool ok = std::any_of(candidates.begin(), candidates.end(),
                              [&](int64_t c) { return PieceMatches(c, at, got); });
        if (!ok) {
          std::string allowed;
          for (int64_t c : candidates) allowed += (allowed.empty() ? "" : ", ") + DescribeSource(c);
          return std::optional<DataViolation>(
              DataViolation{at, fmt::format("guest bytes {:#x}..{:#x} match none of the legal "
                                            "sources {}: {}",
                                            at, piece_end, where, allowed)});
        }
        at = piece_end;
      }
      pos = stop;
    }
  }
  return std::optional<DataViolation>();
}

void GuestOracle::ForEachUntouched(uint64_t begin, uint64_t end,
                                   const std::function<void(uint64_t, uint64_t)>& fn) const {
  auto it = std::upper_bound(segments_.begin(), segments_.end(), std::make_pair(begin, UINT64_MAX));
  if (it != segments_.begin() && std::prev(it)->second > begin) --it;
  uint64_t pos = begin;
  for (; it != segments_.end() && it->first < end && pos < end; ++it) {
    if (it->first > pos) fn(pos, it->first);
    pos = std::max(pos, it->second);
  }
  if (pos < end) fn(pos, end);
}

std::optional<DataViolation> GuestOracle::CheckUntouched(uint64_t offset,
                                                         std::span<const uint8_t> got) const {
  for (uint64_t pos = offset; pos < offset + got.size();) {
    const uint64_t piece_end = std::min(offset + got.size(), (pos / kPiece + 1) * kPiece);
    if (!initial_.Matches(pos, got.subspan(pos - offset, piece_end - pos))) {
      return DataViolation{pos, fmt::format("guest bytes {:#x}..{:#x}, which no operation "
                                            "wrote, do not read as the initial content",
                                            pos, piece_end)};
    }
    pos = piece_end;
  }
  return std::nullopt;
}

void GuestOracle::ForEachIllegalPiece(
    uint64_t crash_point, uint64_t offset, std::span<const uint8_t> got,
    const std::function<void(uint64_t, uint64_t)>& illegal) const {
  const uint64_t end = offset + got.size();
  auto check_pieces = [&](uint64_t begin, uint64_t stop, const std::vector<int64_t>* candidates) {
    for (uint64_t pos = begin; pos < stop;) {
      const uint64_t piece_end = std::min(stop, (pos / kPiece + 1) * kPiece);
      const auto piece = got.subspan(pos - offset, piece_end - pos);
      const bool ok = candidates == nullptr
                          ? initial_.Matches(pos, piece)
                          : std::any_of(candidates->begin(), candidates->end(),
                                        [&](int64_t c) { return PieceMatches(c, pos, piece); });
      if (!ok) illegal(pos, piece_end);
      pos = piece_end;
    }
  };
  auto it =
      std::upper_bound(segments_.begin(), segments_.end(), std::make_pair(offset, UINT64_MAX));
  if (it != segments_.begin() && std::prev(it)->second > offset) --it;
  std::vector<int64_t> candidates;
  uint64_t pos = offset;
  for (; it != segments_.end() && it->first < end; ++it) {
    if (it->first > pos) check_pieces(pos, it->first, nullptr);
    const uint64_t from = std::max(pos, it->first);
    const uint64_t to = std::min(end, it->second);
    Candidates(static_cast<size_t>(it - segments_.begin()), crash_point, candidates);
    check_pieces(from, to, &candidates);
    pos = to;
  }
  if (pos < end) check_pieces(pos, end, nullptr);
}

DataWindow GuestOracle::WindowAt(uint64_t crash_point) const {
  // Without monotone timings counts would not say which ops: the crash point itself does.
  if (!monotone_timings_) return {crash_point, UINT64_MAX};
  auto begun = std::partition_point(timings_.begin(), timings_.end(),
                                    [&](const OpTiming& t) { return t.begin < crash_point; });
  auto durable = std::partition_point(timings_.begin(), timings_.end(),
                                      [&](const OpTiming& t) { return t.durable < crash_point; });
  return {static_cast<uint64_t>(begun - timings_.begin()),
          static_cast<uint64_t>(durable - timings_.begin())};
}

std::unique_ptr<GuestOracle> OracleForRun(const Workload& workload, CacheMode mode,
                                          simdisk::CrashKind crash,
                                          const simdisk::Recording& recording,
                                          InitialContent initial, bool snapshots) {
  // The oracle sees the close as a flush: it makes everything before it durable.
  Workload with_close = workload;
  with_close.ops.push_back({.kind = WorkloadOpKind::kFlush});
  std::vector<OpTiming> timings(with_close.ops.size());
  for (const simdisk::GuestOp& g : recording.guest_ops()) {
    if (g.id < timings.size()) timings[g.id] = {g.begin_seq, g.ack_seq, kNever};
  }
  AssignDurability(with_close, mode, crash, timings);
  return std::make_unique<GuestOracle>(with_close, std::move(timings), std::move(initial),
                                       snapshots);
}

}  // namespace crashsim
