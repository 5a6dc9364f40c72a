// Building traces from runs, portable crash points, and writing failing traces to a directory.
#include "traces/capture.h"

#include <fmt/format.h>

#include <cstdlib>
#include <filesystem>
#include <system_error>

#include "engine/version.h"
#include "properties/explorer.h"
#include "simdisk/materialise.h"
#include "simdisk/write_cache.h"

namespace crashsim::traces {
namespace {

using simdisk::OpKind;

bool IsGuestEvent(const TraceOp& op) {
  return op.kind == OpKind::kGuestBegin || op.kind == OpKind::kGuestAck;
}

// The index of the anchor event of `p` in `ops`, or -1 for the start; nullopt if missing.
std::optional<int64_t> FindAnchor(const std::vector<TraceOp>& ops, const PortablePoint& p) {
  if (p.anchor == PortablePoint::Anchor::kStart) return -1;
  const OpKind want =
      p.anchor == PortablePoint::Anchor::kBegin ? OpKind::kGuestBegin : OpKind::kGuestAck;
  for (size_t i = 0; i < ops.size(); ++i) {
    if (ops[i].kind == want && ops[i].guest_op == p.guest) return static_cast<int64_t>(i);
  }
  return std::nullopt;
}

}  // namespace

std::vector<TraceOp> TraceOpsOf(const simdisk::Recording& recording) {
  std::vector<TraceOp> out;
  out.reserve(recording.ops().size());
  for (const simdisk::OpRecord& op : recording.ops()) out.push_back(TraceOpFrom(op));
  return out;
}

PortablePoint DescribePoint(const std::vector<TraceOp>& ops, uint64_t point) {
  INVARIANT(point <= ops.size());
  PortablePoint p;
  uint64_t i = point;
  std::optional<uint64_t> last;  // the last change op before the point
  while (i > 0 && !IsGuestEvent(ops[i - 1])) {
    if (ops[i - 1].ChangesOrOrders()) {
      ++p.changes;
      if (!last) last = i - 1;
    }
    --i;
  }
  if (i > 0) {
    const TraceOp& event = ops[i - 1];
    p.anchor = event.kind == OpKind::kGuestBegin ? PortablePoint::Anchor::kBegin
                                                 : PortablePoint::Anchor::kAck;
    p.guest = event.guest_op;
  }
  if (last) {
    p.last = ChangeClass(ops[*last]);
    for (uint64_t j = i; j <= *last; ++j) {
      if (ops[j].ChangesOrOrders() && ChangeClass(ops[j]) == p.last) ++p.last_index;
    }
  }
  return p;
}

Result<MappedPoint> MapPoint(const std::vector<TraceOp>& ops, const PortablePoint& p) {
  std::optional<int64_t> anchor = FindAnchor(ops, p);
  if (!anchor) {
    return Status::NotFound(
        fmt::format("the run has no guest event '{}' to crash after", p.ToText()));
  }
  MappedPoint m;
  uint64_t pos = static_cast<uint64_t>(*anchor + 1);
  if (!p.last.empty()) {
    // By structure first: just past the last_index-th op of class `last` since the anchor.
    uint64_t seen = 0;
    for (uint64_t i = pos; i < ops.size() && !IsGuestEvent(ops[i]); ++i) {
      if (ops[i].ChangesOrOrders() && ChangeClass(ops[i]) == p.last && ++seen == p.last_index) {
        uint64_t end = i + 1;
        while (end < ops.size() && ops[end].kind == OpKind::kRead) ++end;
        m.point = end;
        return m;
      }
    }
    m.exact = false;
    m.note = fmt::format(
        "this run has no {} #{} after the anchor; crashing after {} device "
        "changes instead",
        p.last, p.last_index, p.changes);
  }
  uint64_t count = 0;
  while (count < p.changes && pos < ops.size() && !IsGuestEvent(ops[pos])) {
    if (ops[pos].ChangesOrOrders()) ++count;
    ++pos;
  }
  while (pos < ops.size() && ops[pos].kind == OpKind::kRead) ++pos;
  m.point = pos;
  if (count < p.changes) {
    m.exact = false;
    m.note += m.note.empty() ? "" : "; ";
    m.note += fmt::format(
        "this run made only {} of the {} device writes/flushes/resizes after "
        "the anchor; crashing after the last of them",
        count, p.changes);
  }
  return m;
}

std::optional<simdisk::CrashState> MapState(const std::vector<TraceOp>& from,
                                            const simdisk::CrashState& state,
                                            const simdisk::Recording& to, uint64_t atomic_unit,
                                            simdisk::OrderModel order, const GuestMap& guest_map) {
  const std::vector<TraceOp> to_ops = TraceOpsOf(to);
  // A portable position of `from`, renamed for `to`; nullopt when its anchor op is gone.
  auto carry = [&](uint64_t point) -> std::optional<MappedPoint> {
    PortablePoint p = DescribePoint(from, point);
    if (p.anchor != PortablePoint::Anchor::kStart && guest_map) {
      std::optional<uint64_t> g = guest_map(p.guest);
      if (!g) return std::nullopt;
      p.guest = *g;
    }
    auto m = MapPoint(to_ops, p);
    if (!m.ok()) return std::nullopt;
    return *m;
  };
  simdisk::CrashState out;
  out.kind = state.kind;
  out.garbage_seed = state.garbage_seed;
  std::optional<MappedPoint> point = carry(state.point);
  if (!point) return std::nullopt;
  out.point = point->point;
  if (state.kind != simdisk::CrashKind::kPowerLoss) return out;
  const simdisk::PendingSet pending = simdisk::PendingAt(to, out.point, order);
  for (const simdisk::WriteFate& fate : state.fates) {
    std::optional<MappedPoint> where = carry(fate.op + 1);
    if (!where || !where->exact || where->point == 0) continue;
    // The mapped point is just past the op (and any reads after it): walk back to it.
    uint64_t seq = where->point;
    while (seq > 0 && !to_ops[seq - 1].ChangesOrOrders()) --seq;
    if (seq == 0) continue;
    --seq;
    const simdisk::PendingItem* item = nullptr;
    for (const simdisk::PendingItem& it : pending.items) {
      if (it.op == seq) item = &it;
    }
    if (item == nullptr || (!out.fates.empty() && out.fates.back().op >= seq)) continue;
    simdisk::WriteFate mapped;
    mapped.op = seq;
    if (!item->resize) {
      const uint64_t units = simdisk::UnitsOf(to.ops()[seq], atomic_unit);
      for (uint64_t u = 0; u < units; ++u) {
        if (fate.kept.Test(u)) mapped.kept.Set(u);
        if (fate.garbage.Test(u)) mapped.garbage.Set(u);
      }
      // A tear that now covers the whole write is no deviation at all.
      if (mapped.kept.Count() == units && units > 0) continue;
    } else if (!fate.dropped()) {
      continue;
    }
    out.fates.push_back(mapped);
  }
  if (!simdisk::ValidateCrashState(to, out).ok()) out.fates.clear();
  return out;
}

Trace MakeTrace(const Workload& workload, const ExploreSettings& settings,
                const simdisk::Recording& recording, const StateResult& result) {
  Trace t;
  t.crashsim_version = Version();
  t.settings = settings;
  t.settings.image.size = workload.disk_size;
  t.workload = workload;
  t.device_ops = TraceOpsOf(recording);
  t.state = result.state;
  t.portable_point = DescribePoint(t.device_ops, result.state.point);
  t.verdict = result.outcome;
  t.dirty = result.dirty;
  t.detail = result.detail;
  return t;
}

Result<std::string> WriteTraceToDir(const std::string& dir, const Trace& trace) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) {
    return Status::IoError(
        fmt::format("{}: cannot create the trace directory: {}", dir, ec.message()));
  }
  const std::string text = trace.ToText();
  const std::string path =
      (std::filesystem::path(dir) / fmt::format("trace-{:016x}.cstrace", TraceChecksum(text)))
          .string();
  RETURN_IF_ERROR(WriteTraceFile(path, trace));
  return path;
}

Result<std::string> WriteFailureTrace(const std::string& dir, const Workload& workload,
                                      const ExploreSettings& settings,
                                      const simdisk::Recording& recording,
                                      const StateResult& result) {
  Trace t = MakeTrace(workload, settings, recording, result);
  t.comments.push_back(fmt::format("found by crashsim {}: {} at {}", Version(),
                                   VerdictName(result.outcome), result.state.ToText()));
  return WriteTraceToDir(dir, t);
}

Result<std::string> WriteFailureTrace(const std::string& dir, const Explorer& explorer,
                                      const StateResult& result) {
  return WriteFailureTrace(dir, explorer.workload(), explorer.options().settings,
                           explorer.recording(), result);
}

std::optional<std::string> TraceDirFromEnv() {
  const char* dir = std::getenv(kTraceDirEnv);
  if (dir == nullptr || *dir == '\0') return std::nullopt;
  return std::string(dir);
}

}  // namespace crashsim::traces
