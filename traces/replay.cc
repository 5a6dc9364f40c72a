// Exact and portable replay of a trace (replay.h).
#include "traces/replay.h"

#include <fmt/format.h>

#include <cctype>

#include "properties/explorer.h"
#include "simdisk/crash_enumerator.h"
#include "simdisk/materialise.h"
#include "traces/capture.h"
#include "traces/embedded.h"

namespace crashsim::traces {
namespace {

bool Passes(Outcome o) { return o != Outcome::kFailure; }

std::string Describe(const StateResult& r) {
  std::string s = fmt::format("{} (dirty={})", VerdictName(r.outcome), r.dirty ? "yes" : "no");
  if (!r.detail.empty()) s += ": " + r.detail;
  return s;
}

// Sets the code and message of an exact replay that checked `trace.state` once.
void Conclude(const Trace& trace, const std::string& head, ReplayResult& out) {
  out.states_checked = 1;
  const bool same = out.actual.outcome == trace.verdict;
  out.code = same ? kReplayMatch : kReplayVerdictDiffers;
  out.message = fmt::format("{}\ncrash state: {}\nexpected: {}\ngot:      {}", head,
                            trace.state.ToText(), VerdictName(trace.verdict), Describe(out.actual));
  if (same && trace.verdict == Outcome::kFailure &&
      FailureClass(trace.detail) != FailureClass(out.actual.detail)) {
    out.message += "\nnote: the failure reproduced, with a different description than recorded";
  }
}

Result<ReplayResult> ReplayExact(const Trace& trace, std::unique_ptr<Explorer> explorer) {
  ReplayResult out;
  out.state = trace.state;
  std::string diff = CompareDeviceLog(trace, explorer->recording());
  out.recording = std::make_shared<const simdisk::Recording>(explorer->recording());
  out.explorer = std::move(explorer);
  if (!diff.empty()) {
    out.code = kReplayDeviceLogDiffers;
    out.message = diff +
                  "\nthis engine build does not issue the device ops the trace recorded; "
                  "replay --portable replays the guest workload alone";
    return out;
  }
  out.actual = out.explorer->CheckState(trace.state);
  Conclude(trace, fmt::format("device log: {} ops identical", trace.device_ops.size()), out);
  return out;
}

Result<ReplayResult> ReplayPortable(const Trace& trace, const ReplayOptions& options,
                                    std::unique_ptr<Explorer> explorer) {
  ReplayResult out;
  const std::vector<TraceOp> ops = TraceOpsOf(explorer->recording());
  ASSIGN_OR_RETURN(MappedPoint point, MapPoint(ops, trace.portable_point));
  std::string head = fmt::format(
      "portable replay: crash point '{}' is device op {} of {} on "
      "this build{}{}",
      trace.portable_point.ToText(), point.point, ops.size(), point.exact ? "" : "; ", point.note);
  // First the trace's own state, carried over.
  out.state = MapState(trace.device_ops, trace.state, explorer->recording(),
                       trace.settings.atomic_unit, trace.settings.selection.model.order)
                  .value_or(simdisk::CrashState{});
  out.state.kind = trace.settings.selection.kind;
  out.state.point = point.point;
  if (!simdisk::ValidateCrashState(explorer->recording(), out.state).ok()) out.state.fates.clear();
  out.actual = explorer->CheckState(out.state);
  out.states_checked = 1;
  const bool want_failure = trace.verdict == Outcome::kFailure;
  if (Passes(out.actual.outcome) == !want_failure) {
    out.recording = std::make_shared<const simdisk::Recording>(explorer->recording());
    out.explorer = std::move(explorer);
    out.code = kReplayMatch;
    out.message =
        fmt::format("{}\ncrash state (carried over): {}\nexpected: {}\ngot:      {}", head,
                    out.state.ToText(), VerdictName(trace.verdict), Describe(out.actual));
    return out;
  }
  // Then every state at the point within the trace's bounds: for a failure, any failing state
  // reproduces it; for a pass, every state must pass.
  simdisk::EnumerationOptions eo = explorer->EnumerationFor();
  eo.points = {point.point};
  auto rec = std::make_shared<const simdisk::Recording>(explorer->recording().Fork());
  simdisk::CrashEnumerator states(rec, eo);
  std::optional<StateResult> decisive;
  while (auto s = states.Next()) {
    if (out.states_checked >= options.max_states) break;
    StateResult r = explorer->CheckState(*s);
    ++out.states_checked;
    if (!Passes(r.outcome)) {
      decisive = std::move(r);
      break;
    }
  }
  out.recording = std::make_shared<const simdisk::Recording>(explorer->recording());
  out.explorer = std::move(explorer);
  if (decisive) {
    out.state = decisive->state;
    out.actual = std::move(*decisive);
  }
  const bool failed = decisive.has_value();
  out.code = failed == want_failure ? kReplayMatch : kReplayVerdictDiffers;
  out.message = fmt::format(
      "{}\nthe carried-over state {} gave {}; checked {} states at the point: {}\nexpected: {}\n"
      "got:      {}",
      head, out.state.ToText(), VerdictName(out.actual.outcome), out.states_checked,
      failed ? "one fails" : "all pass", VerdictName(trace.verdict),
      failed ? Describe(out.actual) : std::string("no failure"));
  return out;
}

Result<ReplayResult> ReplayEmbedded(const Trace& trace) {
  ReplayResult out;
  ASSIGN_OR_RETURN(out.recording, RecordingOf(trace));
  auto oracle = OracleFor(trace.workload, trace.settings.cache_mode, trace.settings.selection.kind,
                          *out.recording);
  out.state = trace.state;
  out.actual = CheckEmbeddedState(*out.recording, *oracle, trace.state);
  Conclude(
      trace,
      fmt::format("target {} ({}): {} device ops rebuilt from the trace's data",
                  trace.embedded->target, trace.embedded->target_version, trace.device_ops.size()),
      out);
  return out;
}

}  // namespace

ReplayResult::ReplayResult() = default;
ReplayResult::~ReplayResult() = default;
ReplayResult::ReplayResult(ReplayResult&&) noexcept = default;
ReplayResult& ReplayResult::operator=(ReplayResult&&) noexcept = default;

std::string CompareDeviceLog(const Trace& trace, const simdisk::Recording& recording) {
  const std::vector<simdisk::OpRecord>& got = recording.ops();
  const size_t n = std::min(got.size(), trace.device_ops.size());
  for (size_t i = 0; i < n; ++i) {
    TraceOp g = TraceOpFrom(got[i]);
    const TraceOp& want = trace.device_ops[i];
    if (want.step == 0) g.step = 0;  // the recorder may not know steps
    if (!(g == want)) {
      return fmt::format("device op {} differs: expected {}, got {}", i, TraceOpToText(want),
                         TraceOpToText(g));
    }
  }
  if (got.size() != trace.device_ops.size()) {
    return fmt::format(
        "the device log has {} ops, the trace {}; first extra op: {}", got.size(),
        trace.device_ops.size(),
        got.size() > n ? TraceOpToText(TraceOpFrom(got[n])) : TraceOpToText(trace.device_ops[n]));
  }
  return "";
}

std::string FailureClass(const std::string& detail) {
  size_t end = 0;
  while (end < detail.size() && detail[end] != ':' &&
         !std::isdigit(static_cast<unsigned char>(detail[end]))) {
    ++end;
  }
  std::string s = detail.substr(0, end);
  while (!s.empty() && s.back() == ' ') s.pop_back();
  return s;
}

Result<ReplayResult> Replay(const Trace& trace, const ReplayOptions& options) {
  if (trace.embedded) {
    if (options.portable) {
      return Status::InvalidArgument(fmt::format(
          "this trace records a run of {}, with its device data: it replays exactly, and "
          "--portable (which re-runs the workload on crashsim's engine) does not apply",
          trace.embedded->target));
    }
    return ReplayEmbedded(trace);
  }
  auto explorer = Explorer::Record(trace.workload, trace.settings);
  if (!explorer.ok()) {
    return explorer.status().WithContext("re-running the trace's workload on this engine");
  }
  if (options.portable) return ReplayPortable(trace, options, std::move(*explorer));
  return ReplayExact(trace, std::move(*explorer));
}

}  // namespace crashsim::traces
