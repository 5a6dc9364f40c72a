#include "properties/oracle.h"

#include <fmt/format.h>

#include <algorithm>

namespace crashsim {
namespace {

// Tears happen at atomic units of at least 512 bytes, and a guest offset keeps its alignment
// within a host cluster, so each 512-byte guest piece of a segment comes from one source.
constexpr uint64_t kPiece = 512;

}  // namespace

void AssignDurability(const Workload& workload, CacheMode mode, CrashKindForOracle crash,
                      std::vector<OpTiming>& timings) {
  const bool through = CacheModeWritesThrough(mode);
  const bool nothing = mode == CacheMode::kUnsafe && crash == CrashKindForOracle::kPowerLoss;
  // Walk backwards: the next flush (or reopen) acknowledgement makes everything before durable.
  uint64_t next_flush_ack = kNever;
  for (size_t i = timings.size(); i-- > 0;) {
    const WorkloadOp& op = workload.ops[i];
    bool is_flush = op.kind == WorkloadOpKind::kFlush || op.kind == WorkloadOpKind::kReopen;
    if (is_flush) next_flush_ack = timings[i].ack;
    if (nothing) {
      timings[i].durable = kNever;
    } else if (through || is_flush) {
      timings[i].durable = timings[i].ack;
    } else {
      timings[i].durable = next_flush_ack;
    }
  }
}

GuestOracle::GuestOracle(const Workload& workload, std::vector<OpTiming> timings,
                         std::vector<uint8_t> initial)
    : workload_(workload), timings_(std::move(timings)), initial_(std::move(initial)) {
  initial_.resize(workload_.disk_size, 0);
  std::vector<uint64_t> cuts = {0, workload_.disk_size};
  for (const WorkloadOp& op : workload_.ops) {
    if (!op.TouchesData()) continue;
    cuts.push_back(op.offset);
    cuts.push_back(op.offset + op.length);
  }
  std::sort(cuts.begin(), cuts.end());
  cuts.erase(std::unique(cuts.begin(), cuts.end()), cuts.end());
  for (size_t i = 0; i + 1 < cuts.size(); ++i) {
    segments_.push_back({cuts[i], cuts[i + 1]});
    std::vector<uint32_t> ops;
    for (uint32_t j = 0; j < workload_.ops.size(); ++j) {
      const WorkloadOp& op = workload_.ops[j];
      if (op.TouchesData() && op.offset <= cuts[i] && cuts[i + 1] <= op.offset + op.length) {
        ops.push_back(j);
      }
    }
    segment_ops_.push_back(std::move(ops));
  }
}

void GuestOracle::Candidates(size_t segment, uint64_t crash_point,
                             std::vector<int64_t>& out) const {
  out.assign(1, kInitial);
  for (uint32_t j : segment_ops_[segment]) {
    const OpTiming& t = timings_[j];
    if (t.begin == kNever || t.begin >= crash_point) break;  // not issued before the crash
    const WorkloadOp& op = workload_.ops[j];
    std::vector<int64_t> values;
    switch (op.kind) {
      case WorkloadOpKind::kWrite: values = {static_cast<int64_t>(j)}; break;
      case WorkloadOpKind::kZero: values = {kZero}; break;
      default:  // discard: the old value, zeros, or what lies beneath (the initial content)
        values = out;
        values.push_back(kZero);
        values.push_back(kInitial);
        break;
    }
    bool durable = t.durable != kNever && t.durable < crash_point;
    if (durable) out.clear();
    for (int64_t v : values) {
      if (std::find(out.begin(), out.end(), v) == out.end()) out.push_back(v);
    }
  }
}

bool GuestOracle::PieceMatches(int64_t source, uint64_t offset,
                               std::span<const uint8_t> got) const {
  if (source == kZero) {
    return std::all_of(got.begin(), got.end(), [](uint8_t b) { return b == 0; });
  }
  if (source == kInitial) {
    return std::equal(got.begin(), got.end(),
                      initial_.begin() + static_cast<std::ptrdiff_t>(offset));
  }
  uint8_t expect[kPiece];
  FillPattern(workload_.ops[static_cast<size_t>(source)].pattern, offset,
              std::span<uint8_t>(expect, got.size()));
  return std::equal(got.begin(), got.end(), expect);
}

std::string GuestOracle::DescribeSource(int64_t source) const {
  if (source == kZero) return "zeros";
  if (source == kInitial) return "the initial content";
  return fmt::format("op #{} ({})", source, workload_.ops[static_cast<size_t>(source)].ToText());
}

Result<std::optional<DataViolation>> GuestOracle::Check(uint64_t crash_point,
                                                        const Reader& read) const {
  std::vector<int64_t> candidates;
  std::vector<uint8_t> buf;
  for (size_t s = 0; s < segments_.size(); ++s) {
    auto [start, end] = segments_[s];
    Candidates(s, crash_point, candidates);
    buf.resize(end - start);
    RETURN_IF_ERROR(read(start, buf));
    uint64_t pos = start;
    while (pos < end) {
      uint64_t piece_end = std::min(end, (pos / kPiece + 1) * kPiece);
      std::span<const uint8_t> got(&buf[pos - start], piece_end - pos);
      bool ok = std::any_of(candidates.begin(), candidates.end(),
                            [&](int64_t c) { return PieceMatches(c, pos, got); });
      if (!ok) {
        std::string allowed;
        for (int64_t c : candidates) allowed += (allowed.empty() ? "" : ", ") + DescribeSource(c);
        return std::optional<DataViolation>(DataViolation{
            pos, fmt::format("guest bytes {:#x}..{:#x} match none of the legal sources at crash "
                             "point {}: {}", pos, piece_end, crash_point, allowed)});
      }
      pos = piece_end;
    }
  }
  return std::optional<DataViolation>();
}

}  // namespace crashsim
