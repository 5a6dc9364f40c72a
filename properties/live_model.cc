#include "properties/live_model.h"

#include <fmt/format.h>

#include <algorithm>
#include <vector>

#include "engine/all_zero.h"
#include "engine/coding.h"

namespace crashsim {

void LiveModel::Apply(const WorkloadOp& op) {
  const uint64_t end = op.offset + op.length;
  switch (op.kind) {
    case WorkloadOpKind::kWrite:
      content_.Assign(op.offset, end, {{Source::kPattern, op.pattern}});
      break;
    case WorkloadOpKind::kZero:
      content_.Assign(op.offset, end, {{Source::kZero, 0}});
      break;
    case WorkloadOpKind::kDiscard: {
      // Whole clusters may read as anything the discard allows; partial ones are untouched.
      const uint64_t start = AlignUp(op.offset, cluster_size_);
      const uint64_t stop =
          end == disk_size_ ? end : std::max(start, AlignDown(end, cluster_size_));
      content_.Assign(start, stop, {{Source::kUnknown, 0}});
      break;
    }
    case WorkloadOpKind::kResize:
      // Grown: the new area reads as zeros. Shrunk: the cut-off part reads as zeros if it ever
      // comes back, so the model holds zeros there too.
      content_.Assign(std::min(disk_size_, op.new_size), std::max(disk_size_, op.new_size),
                      {{Source::kZero, 0}});
      disk_size_ = op.new_size;
      break;
    case WorkloadOpKind::kSnapshot:
      if (snapshots_supported_) snapshots_.Take(disk_size_, content_);
      break;
    case WorkloadOpKind::kDeleteSnapshot:
      snapshots_.DeleteOldest();
      break;
    case WorkloadOpKind::kApplySnapshot:
      if (const auto* then = snapshots_.RevertTarget(disk_size_)) content_ = *then;
      break;
    default:
      break;
  }
}

LiveModel::Sources LiveModel::SourcesOf(const WorkloadOp& op) {
  switch (op.kind) {
    case WorkloadOpKind::kWrite:
      return {{Source::kPattern, op.pattern}};
    case WorkloadOpKind::kZero:
      return {{Source::kZero, 0}};
    default:
      return {{Source::kZero, 0}, {Source::kInitial, 0}};  // a discard
  }
}

void LiveModel::Widen(uint64_t begin, uint64_t end, const Sources& more) {
  std::vector<std::pair<std::pair<uint64_t, uint64_t>, Sources>> pieces;
  content_.Visit(begin, end, [&](uint64_t b, uint64_t e, const Sources* now) {
    Sources merged = now != nullptr ? *now : Sources{{Source::kInitial, 0}};
    for (const Source& s : more) {
      if (std::find(merged.begin(), merged.end(), s) == merged.end()) merged.push_back(s);
    }
    pieces.push_back({{b, e}, std::move(merged)});
  });
  for (auto& [range, sources] : pieces) content_.Assign(range.first, range.second, sources);
}

void LiveModel::Forget(const WorkloadOp& op) {
  if (op.TouchesData()) Widen(op.offset, op.offset + op.length, SourcesOf(op));
  if (op.kind == WorkloadOpKind::kResize) {
    // The disk may have either size now; the range between reads as before or as zeros.
    Widen(std::min(disk_size_, op.new_size), std::max(disk_size_, op.new_size),
          {{Source::kZero, 0}});
    disk_size_ = std::max(disk_size_, op.new_size);
  }
  if (op.kind == WorkloadOpKind::kApplySnapshot) {
    // Reverted or not: every range any op touched may read as anything a snapshot held. (Ranges
    // no op touched hold the initial content in every snapshot alike.)
    std::vector<std::pair<uint64_t, uint64_t>> touched;
    content_.Visit(0, UINT64_MAX, [&](uint64_t b, uint64_t e, const Sources* now) {
      if (now != nullptr) touched.push_back({b, e});
    });
    for (const auto& [b, e] : touched) Widen(b, e, {{Source::kUnknown, 0}});
  }
}

void LiveModel::LoseUnflushed(const std::vector<WorkloadOp>& ops) {
  for (const WorkloadOp& op : ops) {
    if (!op.TouchesData()) continue;
    const uint64_t end = op.offset + op.length;
    std::vector<std::pair<std::pair<uint64_t, uint64_t>, Sources>> before;
    durable_.Visit(op.offset, end, [&](uint64_t b, uint64_t e, const Sources* then) {
      before.push_back({{b, e}, then != nullptr ? *then : Sources{{Source::kInitial, 0}}});
    });
    for (const auto& [range, sources] : before) Widen(range.first, range.second, sources);
    Widen(op.offset, end, SourcesOf(op));
  }
}

bool LiveModel::Matches(const Source& source, uint64_t offset, std::span<const uint8_t> got) const {
  switch (source.kind) {
    case Source::kInitial:
      return initial_.Matches(offset, got);
    case Source::kPattern:
      return PatternMismatch(source.pattern, offset, got) == got.size();
    case Source::kZero:
      return AllZero(got);
    case Source::kUnknown:
      return true;
  }
  return false;
}

Status LiveModel::Verify(uint64_t offset, std::span<const uint8_t> got) const {
  Status result = Status::Ok();
  content_.Visit(offset, offset + got.size(), [&](uint64_t begin, uint64_t end, const Sources* s) {
    if (!result.ok()) return;
    const Sources sources = s != nullptr ? *s : Sources{{Source::kInitial, 0}};
    // Sector by sector (guest-aligned), each piece must be one of the sources.
    for (uint64_t pos = begin; pos < end;) {
      const uint64_t piece_end = std::min(end, AlignDown(pos, 512) + 512);
      const auto part = got.subspan(pos - offset, piece_end - pos);
      if (std::none_of(sources.begin(), sources.end(),
                       [&](const Source& src) { return Matches(src, pos, part); })) {
        // Name the first differing byte against the newest source, as the guest would see it.
        std::vector<uint8_t> expect(part.size());
        const Source& want = sources.back();
        if (want.kind == Source::kPattern) {
          FillPattern(want.pattern, pos, expect);
        } else if (want.kind == Source::kInitial) {
          initial_.Fill(pos, expect);
        }
        auto [a, b] = std::mismatch(part.begin(), part.end(), expect.begin());
        const uint64_t byte = pos + static_cast<uint64_t>(a - part.begin());
        result = Status::Corruption(fmt::format(
            "live read: guest byte {:#x} reads {:#04x}, the workload left {:#04x} there{}", byte,
            a == part.end() ? 0 : *a, a == part.end() ? 0 : *b,
            sources.size() > 1 ? " (or another of the values a failed op allows)" : ""));
        return;
      }
      pos = piece_end;
    }
  });
  return result;
}

}  // namespace crashsim
