// The trace text form: writer and validating reader (FORMAT.md). The reader walks the lines in
// the fixed order the writer emits them (line_reader.h: every error says where, numbers are
// bounded); the settings lines are trace_settings.cc's, data payloads blob.cc's.
#include "traces/trace.h"

#include <fmt/format.h>

#include <cstdio>
#include <memory>

#include "engine/atomic_output_file.h"
#include "engine/protocol.h"
#include "engine/version.h"
#include "simdisk/hash.h"
#include "traces/blob.h"
#include "traces/line_reader.h"

namespace crashsim::traces {
namespace {

using simdisk::OpKind;

// ---- names ---------------------------------------------------------------------------------

const char* StatusWord(StatusCode code) {
  switch (code) {
    case StatusCode::kOk:
      return "ok";
    case StatusCode::kIoError:
      return "io-error";
    case StatusCode::kNoSpace:
      return "no-space";
    case StatusCode::kCorruption:
      return "corruption";
    case StatusCode::kInvalidArgument:
      return "invalid-argument";
    case StatusCode::kNotSupported:
      return "not-supported";
    case StatusCode::kReadOnly:
      return "read-only";
    case StatusCode::kNotFound:
      return "not-found";
  }
  return "?";
}

std::optional<StatusCode> ParseStatusWord(std::string_view w) {
  for (int i = 1; i <= static_cast<int>(StatusCode::kNotFound); ++i) {
    if (w == StatusWord(static_cast<StatusCode>(i))) return static_cast<StatusCode>(i);
  }
  return std::nullopt;
}

std::optional<IoTag> ParseTag(std::string_view w) {
  for (int i = 0; i < kIoTagCount; ++i) {
    if (w == IoTagName(static_cast<IoTag>(i))) return static_cast<IoTag>(i);
  }
  return std::nullopt;
}

std::optional<uint8_t> ParseStep(std::string_view w) {
  for (int i = 1; i < kDurableStepCount; ++i) {
    if (w == DurableStepName(static_cast<DurableStep>(i))) return static_cast<uint8_t>(i);
  }
  return std::nullopt;
}

std::optional<OpKind> ParseOpKind(std::string_view w) {
  for (OpKind k : {OpKind::kRead, OpKind::kWrite, OpKind::kFlush, OpKind::kResize,
                   OpKind::kGuestBegin, OpKind::kGuestAck}) {
    if (w == simdisk::OpKindName(k)) return k;
  }
  return std::nullopt;
}

const char* AnchorWord(PortablePoint::Anchor a) {
  switch (a) {
    case PortablePoint::Anchor::kStart:
      return "start";
    case PortablePoint::Anchor::kBegin:
      return "begin";
    case PortablePoint::Anchor::kAck:
      return "ack";
  }
  return "?";
}

bool AllZero(std::span<const uint8_t> b) {
  for (uint8_t c : b) {
    if (c != 0) return false;
  }
  return true;
}

// ---- sections ------------------------------------------------------------------------------

Status ParseWorkload(LineReader& r, Workload& workload) {
  ASSIGN_OR_RETURN(auto w, r.Expect("workload", "workload OP_COUNT"));
  RETURN_IF_ERROR(ExpectCount(r, w, 1, "workload OP_COUNT"));
  ASSIGN_OR_RETURN(uint64_t count, Number(r, w[0], "workload op count", kMaxTraceOps));
  ASSIGN_OR_RETURN(auto d, r.Expect("disk", "disk SIZE"));
  RETURN_IF_ERROR(ExpectCount(r, d, 1, "disk SIZE"));
  ASSIGN_OR_RETURN(workload.disk_size, Number(r, d[0], "disk size", kMaxTraceDiskSize));
  if (workload.disk_size == 0) return r.Error("disk size 0");
  uint64_t size = workload.disk_size;  // as the ops before this one left it
  workload.ops.clear();
  for (uint64_t i = 0; i < count; ++i) {
    ASSIGN_OR_RETURN(std::string_view line, r.Line(fmt::format("workload op {} of {}", i, count)));
    auto parsed = Workload::Parse(fmt::format("disk {}\n", size) + std::string(line));
    if (!parsed.ok() || parsed->ops.size() != 1) {
      std::string why = parsed.ok() ? "expected one operation" : parsed.status().message();
      // Workload::Parse numbers lines of its own input; the location is ours.
      if (size_t colon = why.find(": "); why.starts_with("workload line") && colon != why.npos) {
        why = why.substr(colon + 2);
      }
      return r.Error(fmt::format("workload op {} of {}: {}", i, count, why));
    }
    const WorkloadOp& op = parsed->ops[0];
    if (op.kind == WorkloadOpKind::kResize) {
      if (op.new_size > kMaxTraceDiskSize) {
        return r.Error(fmt::format("workload op {} of {}: resize to {} bytes (the limit is {})", i,
                                   count, op.new_size, kMaxTraceDiskSize));
      }
      size = op.new_size;
    }
    workload.ops.push_back(op);
  }
  return Status::Ok();
}

Result<TraceOp> ParseDeviceOp(const LineReader& r, std::string_view line, uint64_t seq,
                              uint64_t count) {
  std::vector<std::string_view> w = Words(line);
  const std::string where = fmt::format("device op {} of {}", seq, count);
  if (w.size() < 2) return r.Error(fmt::format("{}: expected 'SEQ KIND ...'", where));
  ASSIGN_OR_RETURN(uint64_t got_seq, Number(r, w[0], where + " sequence number"));
  if (got_seq != seq) {
    return r.Error(
        fmt::format("expected device op {}, got op {} (a line is missing or "
                    "repeated)",
                    seq, got_seq));
  }
  TraceOp op;
  std::optional<OpKind> kind = ParseOpKind(w[1]);
  if (!kind) {
    return r.Error(
        fmt::format("{}: unknown kind '{}' (expected read, write, flush, resize, "
                    "guest-begin, guest-ack)",
                    where, LineReader::Clip(w[1])));
  }
  op.kind = *kind;
  size_t i = 2;
  if (op.kind == OpKind::kRead || op.kind == OpKind::kWrite) {
    if (w.size() <= i) return r.Error(where + ": expected OFFSET+LENGTH");
    size_t plus = w[i].find('+');
    if (plus == std::string_view::npos) {
      return r.Error(
          fmt::format("{}: expected OFFSET+LENGTH, got '{}'", where, LineReader::Clip(w[i])));
    }
    ASSIGN_OR_RETURN(op.offset, Number(r, w[i].substr(0, plus), where + " offset"));
    ASSIGN_OR_RETURN(op.length,
                     Number(r, w[i].substr(plus + 1), where + " length", UINT64_MAX - op.offset));
    ++i;
  } else if (op.kind == OpKind::kResize) {
    if (w.size() <= i) return r.Error(where + ": expected the new SIZE");
    ASSIGN_OR_RETURN(op.offset, Number(r, w[i], where + " size"));
    ++i;
  }
  bool have_hash = false, have_tag = false;
  for (; i < w.size(); ++i) {
    std::string_view word = w[i];
    if (word == "fua" && op.kind == OpKind::kWrite && !op.fua) {
      op.fua = true;
    } else if (word == "ignored" && (op.kind == OpKind::kWrite || op.kind == OpKind::kFlush) &&
               op.honoured) {
      op.honoured = false;
    } else if (word.starts_with("tag=") && op.kind == OpKind::kWrite && !have_tag) {
      std::optional<IoTag> tag = ParseTag(word.substr(4));
      if (!tag) return r.Error(fmt::format("{}: unknown tag '{}'", where, LineReader::Clip(word)));
      op.tag = *tag;
      have_tag = true;
    } else if (word.starts_with("step=") && op.kind == OpKind::kWrite && op.step == 0) {
      std::optional<uint8_t> step = ParseStep(word.substr(5));
      if (!step)
        return r.Error(fmt::format("{}: unknown step '{}'", where, LineReader::Clip(word)));
      op.step = *step;
    } else if (word.starts_with("hash=") && op.kind == OpKind::kWrite && !have_hash) {
      ASSIGN_OR_RETURN(op.data_hash, Hex64(r, word.substr(5), where + " hash"));
      have_hash = true;
    } else if (word.starts_with("guest=") && op.guest_op == simdisk::kNoGuestOp) {
      ASSIGN_OR_RETURN(op.guest_op, Number(r, word.substr(6), where + " guest", kMaxTraceOps));
    } else if (word.starts_with("failed=") && op.status == StatusCode::kOk) {
      std::optional<StatusCode> code = ParseStatusWord(word.substr(7));
      if (!code) {
        return r.Error(fmt::format("{}: unknown status '{}'", where, LineReader::Clip(word)));
      }
      op.status = *code;
    } else {
      return r.Error(fmt::format("{}: unexpected '{}' for a {}", where, LineReader::Clip(word),
                                 simdisk::OpKindName(op.kind)));
    }
  }
  if (op.kind == OpKind::kWrite && (!have_hash || !have_tag)) {
    return r.Error(fmt::format("{}: a write needs tag= and hash=", where));
  }
  if ((op.kind == OpKind::kGuestBegin || op.kind == OpKind::kGuestAck) &&
      op.guest_op == simdisk::kNoGuestOp) {
    return r.Error(fmt::format("{}: a guest event needs guest=", where));
  }
  return op;
}

Status ParseDeviceOps(LineReader& r, std::vector<TraceOp>& ops) {
  ASSIGN_OR_RETURN(auto w, r.Expect("device-ops", "device-ops COUNT"));
  RETURN_IF_ERROR(ExpectCount(r, w, 1, "device-ops COUNT"));
  ASSIGN_OR_RETURN(uint64_t count, Number(r, w[0], "device op count", kMaxTraceOps));
  ops.clear();
  for (uint64_t seq = 0; seq < count; ++seq) {
    ASSIGN_OR_RETURN(std::string_view line, r.Line(fmt::format("device op {} of {}", seq, count)));
    ASSIGN_OR_RETURN(TraceOp op, ParseDeviceOp(r, line, seq, count));
    ops.push_back(op);
  }
  return Status::Ok();
}

// The embedded data of a version 2 trace (FORMAT.md, "Embedded runs"): the initial medium's
// extents, then every successful write's bytes in pieces, each checked against the op's hash.
Status ParseEmbeddedData(LineReader& r, const std::vector<TraceOp>& ops, EmbeddedRun& run) {
  {
    constexpr std::string_view kShape = "medium SIZE EXTENTS";
    ASSIGN_OR_RETURN(auto w, r.Expect("medium", kShape));
    RETURN_IF_ERROR(ExpectCount(r, w, 2, kShape));
    ASSIGN_OR_RETURN(run.medium_size, Number(r, w[0], "medium size", kMaxTraceMediumSize));
    ASSIGN_OR_RETURN(uint64_t count, Number(r, w[1], "medium extent count", kMaxTraceOps));
    uint64_t end = 0;
    for (uint64_t i = 0; i < count; ++i) {
      const std::string shape =
          fmt::format("m OFFSET LENGTH DATA (medium extent {} of {})", i, count);
      ASSIGN_OR_RETURN(auto m, r.Expect("m", shape));
      RETURN_IF_ERROR(ExpectCount(r, m, 3, shape));
      ASSIGN_OR_RETURN(uint64_t offset, Number(r, m[0], "extent offset", run.medium_size));
      ASSIGN_OR_RETURN(uint64_t length, Number(r, m[1], "extent length", kTraceDataPiece));
      if (offset < end) {
        return r.Error(
            fmt::format("medium extent at {:#x} overlaps or precedes the one before "
                        "(ending at {:#x})",
                        offset, end));
      }
      if (length == 0 || offset + length > run.medium_size) {
        return r.Error(fmt::format("medium extent {:#x}+{} is empty or past the medium size {}",
                                   offset, length, run.medium_size));
      }
      std::string why;
      auto bytes = DecodeBlob(m[2], length, &why);
      if (!bytes) return r.Error(fmt::format("medium extent {:#x}+{}: {}", offset, length, why));
      end = offset + length;
      run.medium.emplace_back(offset, std::move(*bytes));
    }
  }
  constexpr std::string_view kShape = "data PIECES";
  ASSIGN_OR_RETURN(auto w, r.Expect("data", kShape));
  RETURN_IF_ERROR(ExpectCount(r, w, 1, kShape));
  ASSIGN_OR_RETURN(uint64_t count, Number(r, w[0], "data piece count", kMaxTraceOps));
  run.write_data.assign(ops.size(), {});
  auto needs_data = [&](uint64_t seq) {
    return ops[seq].kind == OpKind::kWrite && ops[seq].status == StatusCode::kOk &&
           ops[seq].length > 0;
  };
  uint64_t next_seq = 0;  // ops before this have all their data
  auto complete_up_to = [&](uint64_t seq) -> Status {
    for (; next_seq < seq; ++next_seq) {
      if (needs_data(next_seq) && run.write_data[next_seq].size() != ops[next_seq].length) {
        return r.Error(fmt::format("device op {} ({}) has {} of its {} data bytes", next_seq,
                                   TraceOpToText(ops[next_seq]), run.write_data[next_seq].size(),
                                   ops[next_seq].length));
      }
    }
    return Status::Ok();
  };
  for (uint64_t i = 0; i < count; ++i) {
    const std::string shape =
        fmt::format("d SEQ OFFSET LENGTH DATA (data piece {} of {})", i, count);
    ASSIGN_OR_RETURN(auto d, r.Expect("d", shape));
    RETURN_IF_ERROR(ExpectCount(r, d, 4, shape));
    ASSIGN_OR_RETURN(uint64_t seq, Number(r, d[0], "data op", kMaxTraceOps));
    if (seq >= ops.size() || !needs_data(seq)) {
      return r.Error(fmt::format("data for device op {}, which is not a successful write", seq));
    }
    if (seq < next_seq) {
      return r.Error(
          fmt::format("data for device op {} after data of op {} (out of order)", seq, next_seq));
    }
    RETURN_IF_ERROR(complete_up_to(seq));
    std::vector<uint8_t>& data = run.write_data[seq];
    ASSIGN_OR_RETURN(uint64_t offset, Number(r, d[1], "data offset", ops[seq].length));
    ASSIGN_OR_RETURN(uint64_t length, Number(r, d[2], "data length", kTraceDataPiece));
    if (offset != data.size()) {
      return r.Error(fmt::format("device op {}: data piece at {} but {} bytes came before it", seq,
                                 offset, data.size()));
    }
    if (length == 0 || offset + length > ops[seq].length) {
      return r.Error(
          fmt::format("device op {}: data piece {}+{} is empty or past the write's {} "
                      "bytes",
                      seq, offset, length, ops[seq].length));
    }
    std::string why;
    auto bytes = DecodeBlob(d[3], length, &why);
    if (!bytes) return r.Error(fmt::format("device op {}: {}", seq, why));
    data.insert(data.end(), bytes->begin(), bytes->end());
    if (data.size() == ops[seq].length) {
      const uint64_t hash = simdisk::HashBytes(data, 0);
      if (hash != ops[seq].data_hash) {
        return r.Error(
            fmt::format("device op {}: its {} data bytes hash to {:016x}, the op says "
                        "hash={:016x} (the data is corrupt)",
                        seq, data.size(), hash, ops[seq].data_hash));
      }
    }
  }
  return complete_up_to(ops.size());
}

// The crash state must name a point of the log and fates of pending writes before it.
Status ValidateState(const LineReader& r, const simdisk::CrashState& s,
                     const std::vector<TraceOp>& ops) {
  if (s.point > ops.size()) {
    return r.Error(fmt::format("crash point {} is past the {} device ops", s.point, ops.size()));
  }
  for (const simdisk::WriteFate& f : s.fates) {
    if (f.op >= s.point) {
      return r.Error(fmt::format("fate of op {} is not before the crash point {}", f.op, s.point));
    }
    OpKind k = ops[f.op].kind;
    if (k != OpKind::kWrite && k != OpKind::kResize) {
      return r.Error(
          fmt::format("fate of op {}, a {}, not a write or resize", f.op, simdisk::OpKindName(k)));
    }
  }
  return Status::Ok();
}

Result<PortablePoint> ParsePortablePoint(const LineReader& r, std::vector<std::string_view> w) {
  constexpr std::string_view kShape =
      "crash-point after=start|begin|ack [guest=N] changes=N [last=CLASS#N]";
  PortablePoint p;
  for (size_t i = 0; i < w.size(); ++i) {
    if (!w[i].starts_with("last=")) continue;
    std::string_view v = w[i].substr(5);
    size_t hash = v.find('#');
    if (hash == std::string_view::npos || hash == 0) {
      return r.Error(fmt::format("last: expected CLASS#N, got '{}'", LineReader::Clip(v)));
    }
    std::string_view cls = v.substr(0, hash);
    if (cls != "flush" && cls != "resize" && !ParseTag(cls)) {
      return r.Error(fmt::format("last: unknown class '{}' (a write's tag, flush or resize)",
                                 LineReader::Clip(cls)));
    }
    p.last = std::string(cls);
    ASSIGN_OR_RETURN(p.last_index, Number(r, v.substr(hash + 1), "last index", kMaxTraceOps));
    if (p.last_index == 0) return r.Error("last index 0 (it counts from 1)");
    w.erase(w.begin() + static_cast<ptrdiff_t>(i));
    break;
  }
  bool start = false;
  for (std::string_view word : w) start |= word == "after=start";
  if (start) {
    ASSIGN_OR_RETURN(KeyValues kv, KeyValues::Parse(r, w, {"after", "changes"}, kShape));
    ASSIGN_OR_RETURN(p.changes, Number(r, *kv.Get("changes"), "changes", kMaxTraceOps));
    return p;
  }
  ASSIGN_OR_RETURN(KeyValues kv, KeyValues::Parse(r, w, {"after", "guest", "changes"}, kShape));
  std::string_view after = *kv.Get("after");
  if (after == "begin") {
    p.anchor = PortablePoint::Anchor::kBegin;
  } else if (after == "ack") {
    p.anchor = PortablePoint::Anchor::kAck;
  } else {
    return r.Error(
        fmt::format("after: expected start, begin or ack, got '{}'", LineReader::Clip(after)));
  }
  ASSIGN_OR_RETURN(p.guest, Number(r, *kv.Get("guest"), "guest", kMaxTraceOps));
  ASSIGN_OR_RETURN(p.changes, Number(r, *kv.Get("changes"), "changes", kMaxTraceOps));
  return p;
}

}  // namespace

// ---- public --------------------------------------------------------------------------------

TraceOp TraceOpFrom(const simdisk::OpRecord& r) {
  TraceOp op;
  op.kind = r.kind;
  op.offset = r.offset;
  op.length = r.length;
  op.fua = r.kind == OpKind::kWrite && r.fua;
  op.honoured = (r.kind == OpKind::kFlush || op.fua) ? r.honoured : true;
  op.tag = r.kind == OpKind::kWrite ? r.tag : IoTag::kUnknown;
  op.data_hash = r.kind == OpKind::kWrite ? r.data_hash : 0;
  op.guest_op = r.guest_op;
  op.status = r.status;
  if (r.kind != OpKind::kRead && r.kind != OpKind::kWrite) op.length = 0;
  if (r.kind != OpKind::kRead && r.kind != OpKind::kWrite && r.kind != OpKind::kResize) {
    op.offset = 0;
  }
  return op;
}

std::string TraceOpToText(const TraceOp& op) {
  std::string text = simdisk::OpKindName(op.kind);
  switch (op.kind) {
    case OpKind::kRead:
      text += fmt::format(" {:#x}+{}", op.offset, op.length);
      break;
    case OpKind::kWrite:
      text += fmt::format(" {:#x}+{}{}{} tag={}", op.offset, op.length, op.fua ? " fua" : "",
                          op.honoured ? "" : " ignored", IoTagName(op.tag));
      if (op.step != 0) text += fmt::format(" step={}", DurableStepName(DurableStep{op.step}));
      text += fmt::format(" hash={:016x}", op.data_hash);
      break;
    case OpKind::kFlush:
      if (!op.honoured) text += " ignored";
      break;
    case OpKind::kResize:
      text += fmt::format(" {:#x}", op.offset);
      break;
    case OpKind::kGuestBegin:
    case OpKind::kGuestAck:
      break;
  }
  if (op.guest_op != simdisk::kNoGuestOp) text += fmt::format(" guest={}", op.guest_op);
  if (op.status != StatusCode::kOk) text += fmt::format(" failed={}", StatusWord(op.status));
  return text;
}

std::string PortablePoint::ToText() const {
  std::string s = anchor == Anchor::kStart ? fmt::format("after=start changes={}", changes)
                                           : fmt::format("after={} guest={} changes={}",
                                                         AnchorWord(anchor), guest, changes);
  if (!last.empty()) s += fmt::format(" last={}#{}", last, last_index);
  return s;
}

std::string ChangeClass(const TraceOp& op) {
  switch (op.kind) {
    case OpKind::kWrite:
      return IoTagName(op.tag);
    case OpKind::kFlush:
      return "flush";
    case OpKind::kResize:
      return "resize";
    default:
      return "";
  }
}

const char* VerdictName(Outcome outcome) {
  switch (outcome) {
    case Outcome::kClean:
      return "clean";
    case Outcome::kLeaksOnly:
      return "leaks-only";
    case Outcome::kDirtyRepaired:
      return "dirty-repaired";
    case Outcome::kFailure:
      return "failure";
  }
  return "?";
}

std::optional<Outcome> ParseVerdict(std::string_view word) {
  for (int i = 0; i < kOutcomeCount; ++i) {
    if (word == VerdictName(static_cast<Outcome>(i))) return static_cast<Outcome>(i);
  }
  return std::nullopt;
}

uint64_t TraceChecksum(std::string_view text) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (char c : text) {
    h ^= static_cast<uint8_t>(c);
    h *= 0x100000001b3ull;
  }
  return h;
}

std::string Trace::ToText() const {
  const ExploreSettings& s = settings;
  const uint32_t version = embedded ? kTraceFormatVersionEmbedded : 1;
  std::string out = fmt::format("crashsim-trace {}\ncrashsim-version {}\n", version,
                                crashsim_version.empty() ? Version() : crashsim_version);
  for (const std::string& c : comments) out += fmt::format("# {}\n", Escape(c));
  out += TraceSettingsText(s, workload.disk_size);
  if (embedded) {
    out += fmt::format("target {} {}\n", embedded->target, Escape(embedded->target_version));
  }
  out += fmt::format("workload {}\n", workload.ops.size());
  out += workload.ToText();
  out += fmt::format("device-ops {}\n", device_ops.size());
  for (size_t i = 0; i < device_ops.size(); ++i) {
    out += fmt::format("{} {}\n", i, TraceOpToText(device_ops[i]));
  }
  if (embedded) {
    std::string lines;
    uint64_t n = 0;
    for (const auto& [offset, bytes] : embedded->medium) {
      for (size_t at = 0; at < bytes.size(); at += kTraceDataPiece) {
        const size_t len = std::min<size_t>(kTraceDataPiece, bytes.size() - at);
        std::span<const uint8_t> piece(bytes.data() + at, len);
        if (AllZero(piece)) continue;
        lines += fmt::format("m {:#x} {} {}\n", offset + at, len, EncodeBlob(piece));
        ++n;
      }
    }
    out += fmt::format("medium {} {}\n", embedded->medium_size, n) + lines;
    lines.clear();
    n = 0;
    for (size_t seq = 0; seq < embedded->write_data.size(); ++seq) {
      const std::vector<uint8_t>& bytes = embedded->write_data[seq];
      for (size_t at = 0; at < bytes.size(); at += kTraceDataPiece) {
        const size_t len = std::min<size_t>(kTraceDataPiece, bytes.size() - at);
        lines += fmt::format("d {} {} {} {}\n", seq, at, len,
                             EncodeBlob(std::span<const uint8_t>(bytes.data() + at, len)));
        ++n;
      }
    }
    out += fmt::format("data {}\n", n) + lines;
  }
  out += fmt::format("crash-state {}\n", state.ToText());
  out += fmt::format("crash-point {}\n", portable_point.ToText());
  out += fmt::format("verdict {} dirty={}\n", VerdictName(verdict), dirty ? "yes" : "no");
  if (!detail.empty()) out += fmt::format("detail {}\n", Escape(detail));
  out += fmt::format("end {:016x}\n", TraceChecksum(out));
  return out;
}

Result<Trace> Trace::Parse(std::string_view text, std::string_view name) {
  LineReader r(text, name);
  Trace t;
  {
    ASSIGN_OR_RETURN(auto w, r.Expect("crashsim-trace",
                                      "crashsim-trace VERSION (not a crashsim "
                                      "trace?)"));
    RETURN_IF_ERROR(ExpectCount(r, w, 1, "crashsim-trace VERSION"));
    ASSIGN_OR_RETURN(uint64_t v, Number(r, w[0], "format version"));
    if (v == 0 || v > kTraceFormatVersion) {
      return r.Error(
          fmt::format("trace format version {} is not supported: this crashsim ({}) "
                      "reads versions 1 to {}",
                      v, Version(), kTraceFormatVersion));
    }
    t.format_version = static_cast<uint32_t>(v);
  }
  {
    ASSIGN_OR_RETURN(auto w, r.Expect("crashsim-version", "crashsim-version VERSION"));
    RETURN_IF_ERROR(ExpectCount(r, w, 1, "crashsim-version VERSION"));
    t.crashsim_version = std::string(w[0]);
  }
  RETURN_IF_ERROR(ParseTraceSettings(r, t.settings, t.comments));
  if (t.format_version >= kTraceFormatVersionEmbedded && r.PeekKeyword() == "target") {
    ASSIGN_OR_RETURN(std::string_view line, r.Line("target NAME VERSION"));
    std::vector<std::string_view> w = Words(line);
    if (w.size() < 3) return r.Error("expected 'target NAME VERSION'");
    t.embedded.emplace();
    t.embedded->target = std::string(w[1]);
    const size_t at = line.find(w[2], line.find(w[1]) + w[1].size());
    t.embedded->target_version = Unescape(line.substr(at));
  }
  // ToText() writes version 2 exactly when a run is embedded: a version 2 trace without one
  // would read back as version 1, and the reader accepts only what round-trips.
  if (t.format_version >= kTraceFormatVersionEmbedded && !t.embedded) {
    return r.Error(
        fmt::format("a version {} trace carries an embedded run, starting with a "
                    "'target NAME VERSION' line (without one it is version 1)",
                    t.format_version));
  }
  RETURN_IF_ERROR(ParseWorkload(r, t.workload));
  if (t.settings.image.size != t.workload.disk_size) {
    return r.Error(fmt::format("the image size {} differs from the workload's disk size {}",
                               t.settings.image.size, t.workload.disk_size));
  }
  RETURN_IF_ERROR(ParseDeviceOps(r, t.device_ops));
  if (t.embedded) RETURN_IF_ERROR(ParseEmbeddedData(r, t.device_ops, *t.embedded));
  {
    ASSIGN_OR_RETURN(auto w, r.Expect("crash-state", "crash-state STATE"));
    std::string joined;
    for (std::string_view word : w) {
      if (!joined.empty()) joined += ' ';
      joined += word;
    }
    auto state = simdisk::CrashState::Parse(joined);
    if (!state.ok()) return r.Error("crash-state: " + state.status().message());
    if (state->kind != t.settings.selection.kind) {
      return r.Error(fmt::format("crash-state is a {} but the header says crash {}",
                                 simdisk::CrashKindName(state->kind),
                                 simdisk::CrashKindName(t.settings.selection.kind)));
    }
    RETURN_IF_ERROR(ValidateState(r, *state, t.device_ops));
    t.state = *state;
  }
  {
    ASSIGN_OR_RETURN(auto w, r.Expect("crash-point", "crash-point after=... changes=N"));
    ASSIGN_OR_RETURN(t.portable_point, ParsePortablePoint(r, w));
  }
  {
    constexpr std::string_view kShape =
        "verdict clean|leaks-only|dirty-repaired|failure dirty=yes|no";
    ASSIGN_OR_RETURN(auto w, r.Expect("verdict", kShape));
    if (w.size() != 2 || (w[1] != "dirty=yes" && w[1] != "dirty=no")) {
      return r.Error(fmt::format("expected '{}'", kShape));
    }
    std::optional<Outcome> v = ParseVerdict(w[0]);
    if (!v)
      return r.Error(
          fmt::format("unknown verdict '{}' (expected '{}')", LineReader::Clip(w[0]), kShape));
    t.verdict = *v;
    t.dirty = w[1] == "dirty=yes";
  }
  ASSIGN_OR_RETURN(std::string_view line, r.Line("'detail TEXT' or 'end CHECKSUM'"));
  if (line.starts_with("detail ")) {
    t.detail = Unescape(line.substr(7));
    ASSIGN_OR_RETURN(line, r.Line("'end CHECKSUM'"));
  }
  const size_t end_start = r.line_start();
  std::vector<std::string_view> w = Words(line);
  if (w.size() != 2 || w[0] != "end") {
    return r.Error(fmt::format("expected 'end CHECKSUM', got '{}'", LineReader::Clip(line)));
  }
  ASSIGN_OR_RETURN(uint64_t sum, Hex64(r, w[1], "checksum"));
  const uint64_t computed = TraceChecksum(text.substr(0, end_start));
  if (sum != computed) {
    return r.Error(
        fmt::format("checksum mismatch: the end line says {:016x}, the {} bytes "
                    "before it hash to {:016x} (the trace was edited or corrupted)",
                    sum, end_start, computed));
  }
  if (text.size() == end_start + line.size() || text[end_start + line.size()] != '\n') {
    return r.Error("the end line has no newline: the trace is truncated");
  }
  if (!r.AtEnd()) {
    r.Next();
    return r.Error("unexpected data after the end line");
  }
  return t;
}

Result<Trace> ReadTraceFile(const std::string& path) {
  std::unique_ptr<FILE, int (*)(FILE*)> f(std::fopen(path.c_str(), "rb"), &std::fclose);
  if (!f) return Status::NotFound(fmt::format("{}: cannot open the trace", path));
  std::string text;
  char buf[65536];
  size_t n = 0;
  while ((n = std::fread(buf, 1, sizeof buf, f.get())) > 0) {
    text.append(buf, n);
    if (text.size() > kMaxTraceOps * 256) {
      return Status::InvalidArgument(
          fmt::format("{}: larger than any trace ({} bytes read)", path, text.size()));
    }
  }
  if (std::ferror(f.get())) return Status::IoError(fmt::format("{}: read error", path));
  return Trace::Parse(text, path);
}

Status WriteTraceFile(const std::string& path, const Trace& trace) {
  return WriteFileAtomically(path, trace.ToText());
}

}  // namespace crashsim::traces
