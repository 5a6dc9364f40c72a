// Delta debugging over a failing trace (minimize.h).
#include "traces/minimize.h"

#include <fmt/format.h>

#include <memory>

#include "properties/explorer.h"
#include "simdisk/crash_enumerator.h"
#include "simdisk/materialise.h"
#include "simdisk/write_cache.h"
#include "traces/capture.h"
#include "traces/embedded.h"
#include "traces/replay.h"

namespace crashsim::traces {
namespace {

class Minimizer {
 public:
  Minimizer(const Trace& trace, const MinimizeOptions& options)
      : best_(trace), options_(options), failure_class_(FailureClass(trace.detail)) {}

  Status Init() {
    if (best_.verdict != Outcome::kFailure) {
      return Status::InvalidArgument(fmt::format(
          "the trace's verdict is {}: only failures are minimised", VerdictName(best_.verdict)));
    }
    ASSIGN_OR_RETURN(ReplayResult r, Replay(best_));
    ++runs_;
    ++checks_;
    if (r.code != kReplayMatch) {
      return Status::InvalidArgument(
          "the trace does not reproduce on this build, so there is "
          "nothing to minimise against:\n" +
          r.message);
    }
    explorer_ = std::move(r.explorer);
    recording_ = r.recording;
    if (best_.embedded) {
      oracle_ = OracleFor(best_.workload, best_.settings.cache_mode, best_.settings.selection.kind,
                          *recording_);
    }
    return Status::Ok();
  }

  void GuestOps() {
    size_t granularity = 2;
    while (!best_.workload.ops.empty() && Budget()) {
      const size_t n = best_.workload.ops.size();
      const size_t chunk = (n + granularity - 1) / granularity;
      bool removed = false;
      for (size_t start = 0; start < n && !removed && Budget(); start += chunk) {
        const size_t end = std::min(n, start + chunk);
        Workload w = best_.workload;
        w.ops.erase(w.ops.begin() + static_cast<ptrdiff_t>(start),
                    w.ops.begin() + static_cast<ptrdiff_t>(end));
        GuestMap map = [start, end](uint64_t g) -> std::optional<uint64_t> {
          if (g < start) return g;
          if (g < end) return std::nullopt;
          return g - (end - start);
        };
        std::string what;
        for (size_t i = start; i < end; ++i) {
          what +=
              fmt::format("{}#{} {}", what.empty() ? "" : ", ", i, best_.workload.ops[i].ToText());
        }
        removed = TryWorkload(
            w, map, fmt::format("removed guest op{} {}", end - start > 1 ? "s" : "", what));
      }
      if (removed) {
        granularity = std::max<size_t>(granularity - 1, 2);
        continue;
      }
      if (granularity >= n) break;
      granularity = std::min(n, granularity * 2);
    }
  }

  void Fates() {
    for (size_t i = 0; i < best_.state.fates.size() && Budget();) {
      simdisk::CrashState s = best_.state;
      const simdisk::WriteFate f = s.fates[i];
      s.fates.erase(s.fates.begin() + static_cast<ptrdiff_t>(i));
      if (!TryState(s, fmt::format("{} {} now persists whole", Describe(f.op),
                                   f.dropped() ? "(was dropped)" : "(was torn)"))) {
        ++i;
      }
    }
    for (size_t i = 0; i < best_.state.fates.size() && Budget(); ++i) {
      if (!best_.state.fates[i].garbage.empty()) {
        simdisk::CrashState s = best_.state;
        s.fates[i].garbage = {};
        TryState(s,
                 fmt::format("{}: garbage units now hold the old bytes", Describe(s.fates[i].op)));
      }
      GrowKept(i);
    }
  }

  void Lengths() {
    bool progress = true;
    while (progress && Budget()) {
      progress = false;
      for (size_t i = 0; i < best_.workload.ops.size() && Budget(); ++i) {
        const WorkloadOp& op = best_.workload.ops[i];
        if (!op.TouchesData()) continue;
        const uint64_t shorter = (op.length / 2 + 511) / 512 * 512;
        if (op.length > 512 && shorter < op.length) {
          Workload w = best_.workload;
          w.ops[i].length = shorter;
          if (TryWorkload(w, {},
                          fmt::format("guest op #{} ({}): length {} -> {}", i, op.ToText(),
                                      op.length, shorter))) {
            progress = true;
            continue;
          }
        }
        // Lower offsets, at 512-byte granules: first 0, then half way down.
        const WorkloadOp& now = best_.workload.ops[i];
        for (uint64_t lower : {uint64_t{0}, now.offset / 2 / 512 * 512}) {
          if (lower >= now.offset || !Budget()) continue;
          Workload w = best_.workload;
          w.ops[i].offset = lower;
          if (TryWorkload(w, {},
                          fmt::format("guest op #{} ({}): offset {:#x} -> {:#x}", i, now.ToText(),
                                      now.offset, lower))) {
            progress = true;
            break;
          }
        }
      }
    }
  }

  MinimizeReport Finish(const Trace& original) {
    MinimizeReport report;
    report.before = CountsOf(original);
    report.after = CountsOf(best_);
    report.checks = checks_;
    report.runs = runs_;
    report.steps = steps_;
    report.trace = best_;
    report.trace.comments = original.comments;
    report.trace.comments.push_back(fmt::format("minimised by crashsim minimize: {} -> {}",
                                                report.before.ToText(), report.after.ToText()));
    return report;
  }

 private:
  bool Budget() const { return checks_ < options_.max_checks; }

  bool Reproduces(const StateResult& r) const {
    return r.outcome == Outcome::kFailure &&
           (options_.any_failure || FailureClass(r.detail) == failure_class_);
  }

  std::string Describe(uint64_t seq) const {
    const TraceOp& op = best_.device_ops[seq];
    return fmt::format("device op {} ({} {:#x}+{} {})", seq, simdisk::OpKindName(op.kind),
                       op.offset, op.length, IoTagName(op.tag));
  }

  // The state's result on the current run: this build's engine, or an embedded run's data.
  StateResult CheckCurrent(const simdisk::CrashState& s) {
    if (best_.embedded) return CheckEmbeddedState(*recording_, *oracle_, s);
    return explorer_->CheckState(s);
  }

  void Accept(std::unique_ptr<Explorer> explorer, const StateResult& r, std::string step) {
    if (best_.embedded) {  // the run is fixed: only the crash state changes
      best_.state = r.state;
      best_.portable_point = DescribePoint(best_.device_ops, r.state.point);
      best_.verdict = r.outcome;
      best_.dirty = r.dirty;
      best_.detail = r.detail;
      if (options_.log) options_.log(step);
      steps_.push_back(std::move(step));
      return;
    }
    recording_ = std::make_shared<const simdisk::Recording>(explorer->recording());
    best_ = MakeTrace(explorer->workload(), explorer->options().settings, explorer->recording(), r);
    explorer_ = std::move(explorer);
    if (options_.log) options_.log(step);
    steps_.push_back(std::move(step));
  }

  bool TryState(const simdisk::CrashState& s, std::string step) {
    if (!Budget() || !simdisk::ValidateCrashState(*recording_, s).ok()) return false;
    ++checks_;
    StateResult r = CheckCurrent(s);
    if (!Reproduces(r)) return false;
    Accept(std::move(explorer_), r, std::move(step));
    return true;
  }

  // Keeps more units of torn write i, in halving chunks of the units it lost.
  void GrowKept(size_t i) {
    const simdisk::WriteFate f0 = best_.state.fates[i];
    if (f0.kept.empty()) return;  // dropped (or all garbage): not a tear to shrink
    const uint64_t units = simdisk::UnitsOf(recording_->ops()[f0.op], best_.settings.atomic_unit);
    for (uint64_t chunk = units / 2; chunk >= 1 && Budget(); chunk /= 2) {
      for (uint64_t begin = 0; begin < units && Budget(); begin += chunk) {
        const simdisk::WriteFate& f = best_.state.fates[i];
        simdisk::CrashState s = best_.state;
        simdisk::WriteFate& g = s.fates[i];
        uint64_t added = 0;
        for (uint64_t u = begin; u < std::min(units, begin + chunk); ++u) {
          if (!f.kept.Test(u)) {
            g.kept.Set(u);
            ++added;
          }
        }
        if (added == 0 || g.kept.Count() == units || g.kept.Intersects(g.garbage)) continue;
        TryState(s, fmt::format("{}: {} more of its {} units kept", Describe(f.op), added, units));
      }
    }
  }

  bool TryWorkload(const Workload& w, const GuestMap& map, std::string step) {
    if (!Budget()) return false;
    ++runs_;
    auto recorded = Explorer::Record(w, best_.settings);
    if (!recorded.ok()) return false;
    std::unique_ptr<Explorer> e = std::move(*recorded);
    const simdisk::Recording& rec = e->recording();
    std::optional<simdisk::CrashState> mapped =
        MapState(best_.device_ops, best_.state, rec, best_.settings.atomic_unit,
                 best_.settings.selection.model.order, map);
    if (!mapped) return false;
    if (simdisk::ValidateCrashState(rec, *mapped).ok()) {
      ++checks_;
      StateResult r = e->CheckState(*mapped);
      if (Reproduces(r)) {
        Accept(std::move(e), r, std::move(step));
        return true;
      }
    }
    simdisk::EnumerationOptions eo = e->EnumerationFor();
    eo.points = {mapped->point};
    simdisk::CrashEnumerator states(std::make_shared<const simdisk::Recording>(rec.Fork()), eo);
    for (uint64_t n = 0; n < options_.states_per_candidate && Budget(); ++n) {
      std::optional<simdisk::CrashState> s = states.Next();
      if (!s) break;
      if (*s == *mapped) continue;
      ++checks_;
      StateResult r = e->CheckState(*s);
      if (Reproduces(r)) {
        Accept(std::move(e), r, step + " (crash state re-derived at the carried-over point)");
        return true;
      }
    }
    return false;
  }

  Trace best_;
  MinimizeOptions options_;
  std::string failure_class_;
  std::unique_ptr<Explorer> explorer_;                   // null for embedded traces
  std::shared_ptr<const simdisk::Recording> recording_;  // the current run
  std::unique_ptr<GuestOracle> oracle_;                  // embedded traces
  uint64_t checks_ = 0;
  uint64_t runs_ = 0;
  std::vector<std::string> steps_;
};

}  // namespace

std::string TraceCounts::ToText() const {
  return fmt::format("{} guest ops ({} bytes), {} device ops ({} writes), {} dropped, {} torn",
                     guest_ops, guest_bytes, device_ops, device_writes, dropped, torn);
}

TraceCounts CountsOf(const Trace& trace) {
  TraceCounts c;
  c.guest_ops = trace.workload.ops.size();
  for (const WorkloadOp& op : trace.workload.ops) {
    if (op.TouchesData()) c.guest_bytes += op.length;
  }
  c.device_ops = trace.device_ops.size();
  for (const TraceOp& op : trace.device_ops) c.device_writes += op.kind == simdisk::OpKind::kWrite;
  for (const simdisk::WriteFate& f : trace.state.fates) {
    if (f.dropped()) {
      ++c.dropped;
    } else {
      ++c.torn;
    }
  }
  return c;
}

std::string MinimizeReport::Summary() const {
  std::string out = fmt::format("before: {}\nafter:  {}\n", before.ToText(), after.ToText());
  out += fmt::format("{} steps accepted; {} workloads re-recorded, {} crash states checked\n",
                     steps.size(), runs, checks);
  for (const std::string& s : steps) out += "  - " + s + "\n";
  return out;
}

Result<MinimizeReport> Minimize(const Trace& trace, const MinimizeOptions& options) {
  Minimizer m(trace, options);
  RETURN_IF_ERROR(m.Init());
  if (trace.embedded) {  // a third-party run cannot be re-run: only the crash state shrinks
    m.Fates();
    return m.Finish(trace);
  }
  m.GuestOps();
  m.Fates();
  m.Lengths();
  m.GuestOps();
  m.Fates();
  return m.Finish(trace);
}

}  // namespace crashsim::traces
