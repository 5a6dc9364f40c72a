// Building and checking traces that embed a third-party run's data (embedded.h).
#include "traces/embedded.h"

#include <fmt/format.h>

#include <set>

#include "engine/image.h"
#include "engine/snapshot.h"
#include "properties/crash_check.h"
#include "simdisk/materialise.h"
#include "traces/capture.h"

namespace crashsim::traces {

Result<std::shared_ptr<const simdisk::Recording>> RecordingOf(const Trace& trace) {
  if (!trace.embedded) {
    return Status::InvalidArgument(
        "the trace carries no device data (it is not a version 2 "
        "trace of a third-party run)");
  }
  const EmbeddedRun& run = *trace.embedded;
  auto initial = std::make_shared<simdisk::Medium>(run.medium_size);
  for (const auto& [offset, bytes] : run.medium) initial->WriteAt(offset, bytes);
  // The validate run's disk honours every flush and FUA (simdisk writeback); the ops carry it.
  auto rec = std::make_shared<simdisk::Recording>(CacheConfigFor(CacheMode::kWriteback),
                                                  trace.settings.atomic_unit, std::move(initial));
  std::set<uint64_t> open;
  for (size_t seq = 0; seq < trace.device_ops.size(); ++seq) {
    const TraceOp& t = trace.device_ops[seq];
    simdisk::OpRecord op;
    op.kind = t.kind;
    op.offset = t.offset;
    op.length = t.length;
    op.fua = t.fua;
    op.honoured = t.honoured;
    op.tag = t.tag;
    op.step = t.step;
    op.data_hash = t.data_hash;
    op.guest_op = t.guest_op;
    op.status = t.status;
    if (t.kind == simdisk::OpKind::kWrite) {
      op.data = std::make_shared<const simdisk::Bytes>(
          seq < run.write_data.size() ? run.write_data[seq] : simdisk::Bytes{});
      if (op.ok() && op.data->size() != op.length) {
        return Status::Corruption(fmt::format("device op {}: {} data bytes for a write of {}", seq,
                                              op.data->size(), op.length));
      }
    }
    const uint64_t at = rec->Append(std::move(op));
    if (t.kind == simdisk::OpKind::kGuestBegin) {
      if (!open.insert(t.guest_op).second) {
        return Status::Corruption(
            fmt::format("device op {}: guest op {} begins twice", seq, t.guest_op));
      }
      rec->BeginGuestOp(t.guest_op,
                        t.guest_op < trace.workload.ops.size()
                            ? trace.workload.ops[t.guest_op].ToText()
                            : std::string("close"),
                        at);
    } else if (t.kind == simdisk::OpKind::kGuestAck) {
      if (open.erase(t.guest_op) == 0) {
        return Status::Corruption(
            fmt::format("device op {}: guest op {} is acknowledged but "
                        "never began",
                        seq, t.guest_op));
      }
      rec->AckGuestOp(t.guest_op, at);
    }
  }
  return std::shared_ptr<const simdisk::Recording>(std::move(rec));
}

std::unique_ptr<GuestOracle> OracleFor(const Workload& workload, CacheMode mode,
                                       simdisk::CrashKind crash,
                                       const simdisk::Recording& recording) {
  // Snapshot ops act (and reverts restore content) only where the image the target created
  // can hold snapshots: the rule validate follows when it drives the target.
  bool snapshots = false;
  if (recording.initial() != nullptr) {
    simdisk::Medium created = *recording.initial();
    Result<QcowHeader> header = ReadImageHeader(created, /*for_check=*/true);
    snapshots = header.ok() && CanHoldSnapshots(header->version, header->refcount_bits());
  }
  return OracleForRun(workload, mode, crash, recording, {}, snapshots);
}

StateResult CheckEmbeddedState(const simdisk::Recording& recording, const GuestOracle& oracle,
                               const simdisk::CrashState& state) {
  StateResult out;
  out.state = state;
  if (Status st = simdisk::ValidateCrashState(recording, state); !st.ok()) {
    out.outcome = Outcome::kFailure;
    out.detail = "invalid crash state: " + st.ToString();
    return out;
  }
  auto medium = simdisk::Materialise(recording, state);
  if (!medium.ok()) {
    out.outcome = Outcome::kFailure;
    out.detail = "cannot materialise the crash state: " + medium.status().ToString();
    return out;
  }
  OpenOptions ro;
  ro.read_only = true;
  CrashCheckResult r = CheckCrashedImage(**medium, oracle, ro, state.point);
  out.outcome = r.failure.empty() ? r.outcome : Outcome::kFailure;
  out.dirty = r.dirty;
  out.detail = r.failure;
  for (const simdisk::WriteFate& f : state.fates) {
    const simdisk::OpRecord& op = recording.ops()[f.op];
    out.torn_metadata |= op.kind == simdisk::OpKind::kWrite && op.tag != IoTag::kData;
  }
  return out;
}

Trace MakeEmbeddedTrace(const std::string& target, const std::string& target_version,
                        const Workload& workload, const ExploreSettings& settings,
                        const simdisk::Recording& recording, const StateResult& result) {
  Trace t = MakeTrace(workload, settings, recording, result);
  t.format_version = kTraceFormatVersionEmbedded;
  EmbeddedRun run;
  run.target = target;
  run.target_version = target_version;
  const simdisk::Medium& initial = *recording.initial();
  run.medium_size = initial.size();
  std::vector<uint8_t> piece(kTraceDataPiece);
  for (uint64_t at = 0; at < initial.size(); at += kTraceDataPiece) {
    const size_t n = static_cast<size_t>(std::min<uint64_t>(kTraceDataPiece, initial.size() - at));
    initial.ReadAt(at, std::span<uint8_t>(piece.data(), n));
    bool zero = true;
    for (size_t i = 0; i < n && zero; ++i) zero = piece[i] == 0;
    if (zero) continue;
    // One extent per nonzero piece: the text form's lines, so a parsed trace compares equal.
    run.medium.emplace_back(
        at, std::vector<uint8_t>(piece.begin(), piece.begin() + static_cast<ptrdiff_t>(n)));
  }
  run.write_data.resize(recording.op_count());
  for (const simdisk::OpRecord& op : recording.ops()) {
    if (op.kind == simdisk::OpKind::kWrite && op.ok() && op.data) {
      run.write_data[op.seq] = *op.data;
    }
  }
  t.embedded = std::move(run);
  return t;
}

}  // namespace crashsim::traces
