// The text and SVG explanations of a trace (explain.h).
#include "traces/explain.h"

#include <fmt/format.h>

#include <map>
#include <memory>

#include "engine/check/check.h"
#include "engine/coding.h"
#include "engine/format/header.h"
#include "engine/protocol.h"
#include "simdisk/materialise.h"
#include "traces/embedded.h"
#include "traces/replay.h"

namespace crashsim::traces {
namespace {

using simdisk::OpKind;

enum class Fate : uint8_t {
  kDurable,    // flushed before the crash's barrier, or an honoured FUA write
  kKeptWhole,  // pending at the crash and persisted whole
  kTorn,
  kDropped,
  kAfterCrash,  // issued after the crash point: never happened
  kFailed,      // the op failed: no effect
  kNotAWrite,
};

const char* FateText(Fate f) {
  switch (f) {
    case Fate::kDurable:
      return "durable";
    case Fate::kKeptWhole:
      return "pending, persisted whole";
    case Fate::kTorn:
      return "TORN";
    case Fate::kDropped:
      return "DROPPED";
    case Fate::kAfterCrash:
      return "after the crash";
    case Fate::kFailed:
      return "failed, no effect";
    case Fate::kNotAWrite:
      return "";
  }
  return "";
}

const char* TagColor(IoTag tag) {
  switch (tag) {
    case IoTag::kHeader:
      return "#9467bd";
    case IoTag::kL1Table:
      return "#1f77b4";
    case IoTag::kL2Table:
      return "#17becf";
    case IoTag::kRefcountTable:
      return "#ff7f0e";
    case IoTag::kRefcountBlock:
      return "#e6a23c";
    case IoTag::kData:
      return "#2ca02c";
    case IoTag::kCowData:
      return "#98df8a";
    case IoTag::kSnapshotTable:
      return "#8c564b";
    case IoTag::kBitmap:
      return "#e377c2";
    case IoTag::kUnknown:
      return "#7f7f7f";
  }
  return "#7f7f7f";
}

std::string Xml(std::string_view s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '&':
        out += "&amp;";
        break;
      case '"':
        out += "&quot;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

// What the crash did to each op, from the trace alone (simdisk/README.md, "Crash states").
struct Analysis {
  uint64_t barrier = 0;  // ops before this were durable at the crash
  std::vector<Fate> fates;
  std::vector<const simdisk::WriteFate*> write_fates;  // per op, the crash state's entry
  uint64_t pending = 0, dropped = 0, torn = 0;
};

Analysis Analyse(const Trace& t) {
  Analysis a;
  const auto& ops = t.device_ops;
  const uint64_t point = t.state.point;
  a.fates.assign(ops.size(), Fate::kNotAWrite);
  a.write_fates.assign(ops.size(), nullptr);
  for (const simdisk::WriteFate& f : t.state.fates) a.write_fates[f.op] = &f;
  const bool power_loss = t.state.kind == simdisk::CrashKind::kPowerLoss;
  for (uint64_t i = 0; i < point; ++i) {
    if (ops[i].kind == OpKind::kFlush && ops[i].status == StatusCode::kOk && ops[i].honoured) {
      a.barrier = i + 1;
    }
  }
  for (uint64_t i = 0; i < ops.size(); ++i) {
    const TraceOp& op = ops[i];
    if (op.kind != OpKind::kWrite && op.kind != OpKind::kResize) continue;
    if (i >= point) {
      a.fates[i] = Fate::kAfterCrash;
    } else if (op.status != StatusCode::kOk) {
      a.fates[i] = Fate::kFailed;
    } else if (!power_loss || i < a.barrier || (op.fua && op.honoured)) {
      a.fates[i] = Fate::kDurable;
    } else {
      ++a.pending;
      const simdisk::WriteFate* f = a.write_fates[i];
      a.fates[i] = f == nullptr ? Fate::kKeptWhole : f->dropped() ? Fate::kDropped : Fate::kTorn;
      a.dropped += a.fates[i] == Fate::kDropped;
      a.torn += a.fates[i] == Fate::kTorn;
    }
  }
  return a;
}

std::string TearText(const TraceOp& op, const simdisk::WriteFate& f, uint64_t unit) {
  const uint64_t first = op.offset / unit;
  const uint64_t units = op.length == 0 ? 0 : (op.offset + op.length - 1) / unit - first + 1;
  std::string s =
      fmt::format("{} of {} units kept (mask {})", f.kept.Count(), units, f.kept.ToHex());
  if (!f.garbage.empty()) s += fmt::format(", {} garbage", f.garbage.Count());
  return s;
}

std::string OpLabel(const TraceOp& op) {
  switch (op.kind) {
    case OpKind::kWrite:
      return fmt::format("write {:#x}+{}{}{}", op.offset, op.length, op.fua ? " fua" : "",
                         op.honoured ? "" : " (fua ignored)");
    case OpKind::kRead:
      return fmt::format("read {:#x}+{}", op.offset, op.length);
    case OpKind::kFlush:
      return op.honoured ? "flush" : "flush (ignored)";
    case OpKind::kResize:
      return fmt::format("resize to {:#x}", op.offset);
    case OpKind::kGuestBegin:
      return fmt::format("guest op {} begins", op.guest_op);
    case OpKind::kGuestAck:
      return fmt::format("guest op {} acknowledged", op.guest_op);
  }
  return "?";
}

std::string Structure(const TraceOp& op) {
  if (op.kind != OpKind::kWrite) return "";
  std::string s = IoTagName(op.tag);
  if (op.step != 0) s += fmt::format(" ({})", DurableStepName(DurableStep{op.step}));
  return s;
}

std::string GuestLabel(const Trace& t, uint64_t g) {
  if (g < t.workload.ops.size()) return fmt::format("#{} {}", g, t.workload.ops[g].ToText());
  if (g == t.workload.ops.size()) return "close";
  return fmt::format("#{}", g);
}

std::string PointText(const Trace& t) {
  const PortablePoint& p = t.portable_point;
  std::string anchor = p.anchor == PortablePoint::Anchor::kStart
                           ? std::string("the image was opened")
                       : p.anchor == PortablePoint::Anchor::kBegin
                           ? fmt::format("guest op {} began", GuestLabel(t, p.guest))
                           : fmt::format("guest op {} was acknowledged", GuestLabel(t, p.guest));
  return fmt::format("after {} and {} more device write/flush/resize op{} (device op {} of {})",
                     anchor, p.changes, p.changes == 1 ? "" : "s", t.state.point,
                     t.device_ops.size());
}

struct LiveFacts {
  bool have = false;
  std::string log_note;
  std::string dirty;    // "set" / "clear" with the field
  std::string checker;  // summary + findings
  StateResult result;
};

LiveFacts Live(const Trace& t) {
  LiveFacts live;
  std::shared_ptr<const simdisk::Recording> recording;
  std::unique_ptr<Explorer> explorer_holder;
  if (t.embedded) {  // a third-party run: rebuilt from the trace's own data
    auto rebuilt = RecordingOf(t);
    if (!rebuilt.ok()) {
      live.log_note =
          "cannot rebuild the run from the trace's data: " + rebuilt.status().ToString();
      return live;
    }
    recording = *rebuilt;
  } else {
    auto explorer = Explorer::Record(t.workload, ExploreOptionsFor(t.settings));
    if (!explorer.ok()) {
      live.log_note = "this build cannot re-run the workload: " + explorer.status().ToString();
      return live;
    }
    std::string diff = CompareDeviceLog(t, (*explorer)->recording());
    if (!diff.empty()) {
      live.log_note = "this build issues different device ops (" + diff +
                      "); the dirty bit, checker and verdict below are the trace's";
      return live;
    }
    explorer_holder = std::move(*explorer);
    recording = std::make_shared<const simdisk::Recording>(explorer_holder->recording());
  }
  auto medium = simdisk::Materialise(*recording, t.state);
  if (!medium.ok()) {
    live.log_note = "cannot rebuild the crash state: " + medium.status().ToString();
    return live;
  }
  live.have = true;
  if ((*medium)->size() >= kIncompatibleFeaturesOffset + 8) {
    uint8_t field[8];
    (*medium)->ReadAt(kIncompatibleFeaturesOffset, field);
    const uint64_t incompat = LoadBE64(field);
    live.dirty = fmt::format("{} (incompatible_features = {:#x} at header offset 72)",
                             incompat & kIncompatDirty ? "SET" : "clear", incompat);
  } else {
    live.dirty = "unreadable (the image is shorter than its header)";
  }
  CheckReport report = Check(**medium);
  live.checker =
      fmt::format("{} corruptions, {} leaks, {} check errors{}", report.corruptions, report.leaks,
                  report.check_errors, report.status.ok() ? "" : "; " + report.status.ToString());
  size_t shown = 0;
  for (const Finding& f : report.findings) {
    if (f.severity == FindingSeverity::kInfo) continue;
    if (shown++ == 12) {
      live.checker += "\n    ...";
      break;
    }
    live.checker +=
        fmt::format("\n    {}{}", f.message, f.structure.empty() ? "" : " [" + f.structure + "]");
  }
  if (explorer_holder) {
    live.result = explorer_holder->CheckState(t.state);
  } else {
    auto oracle = OracleFor(t.workload, t.settings.cache_mode, t.settings.crash, *recording);
    live.result = CheckEmbeddedState(*recording, *oracle, t.state);
  }
  return live;
}

std::string TextOf(const Trace& t, const Analysis& a, const LiveFacts& live,
                   const ExplainOptions& options) {
  const auto& ops = t.device_ops;
  std::string out =
      fmt::format("Trace (format {}, written by crashsim {}): {} at {}\n", t.format_version,
                  t.crashsim_version, VerdictName(t.verdict), t.state.ToText());
  for (const std::string& c : t.comments) out += "  # " + c + "\n";
  if (t.embedded) {
    out += fmt::format(
        "Target: {} ({}); the device writes' data is in the trace (initial medium "
        "{} bytes), so the crash state is rebuilt from it without a re-run\n",
        t.embedded->target, t.embedded->target_version, t.embedded->medium_size);
  }
  out += fmt::format("Image: {}\nCache mode: {}; crash: {}; atomic unit {} bytes\n",
                     t.settings.image.ToString(), CacheModeName(t.settings.cache_mode),
                     simdisk::CrashKindName(t.settings.crash), t.settings.atomic_unit);
  out += fmt::format("Crash point: {}\n", PointText(t));

  out += "\nGuest ops (device ops in brackets):\n";
  std::map<uint64_t, std::pair<uint64_t, uint64_t>> spans;  // guest -> begin, ack seq
  for (uint64_t i = 0; i < ops.size(); ++i) {
    if (ops[i].kind == OpKind::kGuestBegin) spans[ops[i].guest_op] = {i, UINT64_MAX};
    if (ops[i].kind == OpKind::kGuestAck) spans[ops[i].guest_op].second = i;
  }
  for (uint64_t g = 0; g <= t.workload.ops.size(); ++g) {
    auto it = spans.find(g);
    std::string when = "never began";
    if (it != spans.end()) {
      auto [b, k] = it->second;
      when = b >= t.state.point   ? fmt::format("[{}..] not begun at the crash", b)
             : k >= t.state.point ? fmt::format("[{}..{}] IN PROGRESS at the crash", b,
                                                k == UINT64_MAX ? ops.size() : k)
                                  : fmt::format("[{}..{}] acknowledged before the crash", b, k);
    }
    out += fmt::format("  {:<36} {}\n", GuestLabel(t, g), when);
  }

  out += fmt::format("\nDevice ops{}:\n  {:>5} {:>5}  {:<30} {:<30} {}\n",
                     options.reads ? "" : " (reads omitted)", "seq", "guest", "op", "structure",
                     "at the crash");
  for (uint64_t i = 0; i <= ops.size(); ++i) {
    if (i == t.state.point) {
      out += fmt::format("  ===== CRASH: {} after op {} =====\n",
                         simdisk::CrashKindName(t.state.kind), i == 0 ? 0 : i - 1);
    }
    if (i == ops.size()) break;
    const TraceOp& op = ops[i];
    if (op.kind == OpKind::kRead && !options.reads) continue;
    if (op.kind == OpKind::kGuestBegin || op.kind == OpKind::kGuestAck) continue;
    std::string fate = FateText(a.fates[i]);
    if (op.kind == OpKind::kFlush) {
      fate = i >= t.state.point             ? "after the crash"
             : op.status != StatusCode::kOk ? "failed, no effect"
             : op.honoured                  ? "barrier"
                                            : "ignored by the cache mode";
    }
    if (a.fates[i] == Fate::kDurable && op.fua && op.honoured) fate = "durable (FUA)";
    if (a.fates[i] == Fate::kTorn)
      fate += ": " + TearText(op, *a.write_fates[i], t.settings.atomic_unit);
    out += fmt::format(
        "  {:>5} {:>5}  {:<30} {:<30} {}\n", i,
        op.guest_op == simdisk::kNoGuestOp ? std::string("open") : std::to_string(op.guest_op),
        OpLabel(op), Structure(op), fate);
    if (op.kind == OpKind::kFlush && op.honoured && op.status == StatusCode::kOk &&
        i < t.state.point) {
      out += fmt::format("  ----- barrier: ops before {} are durable -----\n", i + 1);
    }
  }
  out += fmt::format(
      "\nCrash state: {} writes pending at the crash: {} dropped, {} torn, {} "
      "persisted whole\n",
      a.pending, a.dropped, a.torn, a.pending - a.dropped - a.torn);
  if (!live.log_note.empty()) out += "Note: " + live.log_note + "\n";
  if (live.have) {
    out += fmt::format("Dirty bit at the crash: {}\n", live.dirty);
    out += fmt::format("Checker on the crashed image (read-only): {}\n", live.checker);
    out += fmt::format("Verdict now: {}{}\n", VerdictName(live.result.outcome),
                       live.result.detail.empty() ? "" : ": " + live.result.detail);
  } else {
    out += fmt::format("Dirty bit at the crash (recorded): {}\n", t.dirty ? "SET" : "clear");
  }
  out += fmt::format("Verdict recorded: {}{}\n", VerdictName(t.verdict),
                     t.detail.empty() ? "" : ": " + t.detail);
  return out;
}

std::string SvgOf(const Trace& t, const Analysis& a, const LiveFacts& live) {
  const auto& ops = t.device_ops;
  // Columns: writes, flushes and resizes; everything else sits between them.
  std::vector<int64_t> column(ops.size() + 1, 0);
  int64_t cols = 0;
  for (uint64_t i = 0; i < ops.size(); ++i) {
    column[i] = cols;
    if (ops[i].ChangesOrOrders()) ++cols;
  }
  column[ops.size()] = cols;
  std::vector<IoTag> lanes;
  bool resize = false;
  for (const TraceOp& op : ops) {
    if (op.kind == OpKind::kResize) resize = true;
    if (op.kind != OpKind::kWrite) continue;
    bool seen = false;
    for (IoTag l : lanes) seen |= l == op.tag;
    if (!seen) lanes.push_back(op.tag);
  }
  std::sort(lanes.begin(), lanes.end());
  const int cw = 14, left = 130, top = 92, lane_h = 30, guest_h = 34;
  const int lanes_n = static_cast<int>(lanes.size()) + (resize ? 1 : 0);
  const int width = left + static_cast<int>(cols) * cw + 40;
  const int plot_bottom = top + guest_h + lanes_n * lane_h;
  const int height = plot_bottom + 150;
  auto x_of = [&](uint64_t seq) { return left + static_cast<int>(column[seq]) * cw; };
  auto lane_y = [&](const TraceOp& op) {
    int idx = static_cast<int>(lanes.size());
    for (size_t l = 0; l < lanes.size(); ++l) {
      if (op.kind == OpKind::kWrite && lanes[l] == op.tag) idx = static_cast<int>(l);
    }
    return top + guest_h + idx * lane_h;
  };
  std::string s = fmt::format(
      "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{}\" height=\"{}\" "
      "font-family=\"sans-serif\" font-size=\"11\">\n<rect width=\"100%\" height=\"100%\" "
      "fill=\"white\"/>\n",
      std::max(width, 1000), height);
  s +=
      fmt::format("<text x=\"10\" y=\"20\" font-size=\"15\" font-weight=\"bold\">{} at {}</text>\n",
                  Xml(VerdictName(t.verdict)), Xml(t.state.ToText()));
  s += fmt::format("<text x=\"10\" y=\"36\">image {}</text>\n", Xml(t.settings.image.ToString()));
  s += fmt::format("<text x=\"10\" y=\"50\">cache={}, {}; crash {}</text>\n",
                   CacheModeName(t.settings.cache_mode), simdisk::CrashKindName(t.settings.crash),
                   Xml(PointText(t)));
  std::string detail = live.have ? live.result.detail : t.detail;
  if (live.have) detail = "dirty bit " + live.dirty.substr(0, live.dirty.find(' ')) + "; " + detail;
  for (int line = 0; line < 2 && !detail.empty(); ++line) {
    size_t cut = detail.size() <= 150 ? detail.size() : detail.rfind(' ', 150);
    if (cut == std::string::npos || cut == 0) cut = std::min<size_t>(150, detail.size());
    if (line == 1 && cut < detail.size()) {  // the second line is the last: clip it
      detail = detail.substr(0, 147) + "...";
      cut = detail.size();
    }
    s += fmt::format("<text x=\"10\" y=\"{}\" fill=\"#b00\">{}</text>\n", 64 + 13 * line,
                     Xml(detail.substr(0, cut)));
    detail = cut < detail.size() ? detail.substr(cut + 1) : "";
  }
  // Lane labels.
  s += fmt::format("<text x=\"8\" y=\"{}\">guest ops</text>\n", top + 20);
  for (size_t l = 0; l < lanes.size(); ++l) {
    s += fmt::format("<text x=\"8\" y=\"{}\">{}</text>\n",
                     top + guest_h + static_cast<int>(l) * lane_h + 18, IoTagName(lanes[l]));
  }
  if (resize) {
    s += fmt::format("<text x=\"8\" y=\"{}\">resize</text>\n",
                     top + guest_h + static_cast<int>(lanes.size()) * lane_h + 18);
  }
  // Guest op spans.
  std::map<uint64_t, uint64_t> begins;
  for (uint64_t i = 0; i < ops.size(); ++i) {
    if (ops[i].kind == OpKind::kGuestBegin) begins[ops[i].guest_op] = i;
    if (ops[i].kind != OpKind::kGuestAck) continue;
    const uint64_t b = begins[ops[i].guest_op];
    const int x0 = x_of(b), x1 = std::max(x_of(i), x0 + 4);
    s += fmt::format(
        "<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"22\" rx=\"3\" fill=\"#ddd\" "
        "stroke=\"#888\" opacity=\"{}\"><title>{}</title></rect>\n",
        x0, top + 4, x1 - x0 - 1, b >= t.state.point ? 0.3 : 1.0,
        Xml(GuestLabel(t, ops[i].guest_op)));
    const uint64_t g = ops[i].guest_op;
    s += fmt::format("<text x=\"{}\" y=\"{}\" font-size=\"9\">{}</text>\n", x0 + 2, top + 19,
                     g < t.workload.ops.size() ? std::to_string(g) : std::string("close"));
  }
  // Flush barriers.
  for (uint64_t i = 0; i < ops.size(); ++i) {
    if (ops[i].kind != OpKind::kFlush) continue;
    const int x = x_of(i) + cw / 2;
    s += fmt::format(
        "<line x1=\"{}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"#555\" "
        "stroke-width=\"1.5\"{}{}><title>op {}: {}</title></line>\n",
        x, top, x, plot_bottom, ops[i].honoured ? "" : " stroke-dasharray=\"2,3\"",
        i >= t.state.point ? " opacity=\"0.3\"" : "", i, Xml(OpLabel(ops[i])));
  }
  // Writes and resizes.
  for (uint64_t i = 0; i < ops.size(); ++i) {
    const TraceOp& op = ops[i];
    if (op.kind != OpKind::kWrite && op.kind != OpKind::kResize) continue;
    const int x = x_of(i) + 1, y = lane_y(op) + 4, w = cw - 2, h = lane_h - 8;
    const char* color = op.kind == OpKind::kWrite ? TagColor(op.tag) : "#444";
    std::string tip =
        fmt::format("op {}: {} {} - {}", i, OpLabel(op), Structure(op), FateText(a.fates[i]));
    switch (a.fates[i]) {
      case Fate::kDropped:
        s += fmt::format(
            "<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"white\" "
            "stroke=\"{}\" stroke-width=\"2\" stroke-dasharray=\"3,2\"><title>{}"
            "</title></rect>\n<text x=\"{}\" y=\"{}\" fill=\"#c00\" "
            "font-weight=\"bold\">x</text>\n",
            x, y, w, h, color, Xml(tip), x + 3, y + h - 6);
        break;
      case Fate::kTorn: {
        const simdisk::WriteFate& f = *a.write_fates[i];
        tip += ": " + TearText(op, f, t.settings.atomic_unit);
        s += fmt::format(
            "<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"white\" "
            "stroke=\"{}\" stroke-width=\"2\"><title>{}</title></rect>\n",
            x, y, w, h, color, Xml(tip));
        s += fmt::format("<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"{}\"/>\n", x,
                         y + h / 2, w, h - h / 2, color);
        s += fmt::format("<text x=\"{}\" y=\"{}\" fill=\"#c00\" font-weight=\"bold\">T</text>\n",
                         x + 2, y + h / 2 - 1);
        break;
      }
      default: {
        const double opacity = a.fates[i] == Fate::kAfterCrash  ? 0.2
                               : a.fates[i] == Fate::kKeptWhole ? 0.75
                                                                : 1.0;
        s += fmt::format(
            "<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"{}\" "
            "opacity=\"{}\"{}><title>{}</title></rect>\n",
            x, y, w, h, a.fates[i] == Fate::kFailed ? "#bbb" : color, opacity,
            a.fates[i] == Fate::kKeptWhole ? " stroke=\"#000\" stroke-dasharray=\"1,1\"" : "",
            Xml(tip));
      }
    }
    if (op.fua) {
      s +=
          fmt::format("<circle cx=\"{}\" cy=\"{}\" r=\"2.5\" fill=\"black\"/>\n", x + w / 2, y - 1);
    }
  }
  // The crash.
  const int cx = x_of(t.state.point) - 1 + (t.state.point < ops.size() ? 0 : cw / 2);
  s += fmt::format(
      "<line x1=\"{}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"red\" "
      "stroke-width=\"3\"/>\n<text x=\"{}\" y=\"{}\" fill=\"red\" "
      "font-weight=\"bold\">crash ({})</text>\n",
      cx, top - 6, cx, plot_bottom + 6, cx + 3, plot_bottom + 18, Xml(t.state.ToText()));
  // Legend.
  int ly = plot_bottom + 44, lx = 10;
  s += fmt::format("<text x=\"10\" y=\"{}\" font-weight=\"bold\">legend</text>\n", ly - 10);
  auto swatch = [&](const std::string& shape, const std::string& label) {
    s += shape;
    s += fmt::format("<text x=\"{}\" y=\"{}\">{}</text>\n", lx + 18, ly + 10, Xml(label));
    lx += 30 + static_cast<int>(label.size()) * 6;
    if (lx > std::max(width, 1000) - 160) {
      lx = 10;
      ly += 22;
    }
  };
  for (IoTag tag : lanes) {
    swatch(fmt::format("<rect x=\"{}\" y=\"{}\" width=\"12\" height=\"12\" fill=\"{}\"/>\n", lx, ly,
                       TagColor(tag)),
           IoTagName(tag));
  }
  ly += 22;
  lx = 10;
  swatch(
      fmt::format("<rect x=\"{}\" y=\"{}\" width=\"12\" height=\"12\" fill=\"#888\"/>\n", lx, ly),
      "durable");
  swatch(fmt::format("<rect x=\"{}\" y=\"{}\" width=\"12\" height=\"12\" fill=\"#888\" "
                     "opacity=\"0.75\" stroke=\"#000\" stroke-dasharray=\"1,1\"/>\n",
                     lx, ly),
         "pending, persisted whole");
  swatch(fmt::format("<rect x=\"{}\" y=\"{}\" width=\"12\" height=\"12\" fill=\"white\" "
                     "stroke=\"#888\" stroke-width=\"2\"/><rect x=\"{}\" y=\"{}\" width=\"12\" "
                     "height=\"6\" fill=\"#888\"/>\n",
                     lx, ly, lx, ly + 6),
         "torn (T)");
  swatch(fmt::format("<rect x=\"{}\" y=\"{}\" width=\"12\" height=\"12\" fill=\"white\" "
                     "stroke=\"#888\" stroke-width=\"2\" stroke-dasharray=\"3,2\"/>\n",
                     lx, ly),
         "dropped (x)");
  swatch(fmt::format("<rect x=\"{}\" y=\"{}\" width=\"12\" height=\"12\" fill=\"#888\" "
                     "opacity=\"0.2\"/>\n",
                     lx, ly),
         "after the crash");
  swatch(fmt::format("<line x1=\"{}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"#555\" "
                     "stroke-width=\"1.5\"/>\n",
                     lx + 6, ly - 2, lx + 6, ly + 14),
         "flush barrier (dashed: ignored)");
  swatch(fmt::format("<circle cx=\"{}\" cy=\"{}\" r=\"3\" fill=\"black\"/>\n", lx + 6, ly + 6),
         "FUA");
  s += "</svg>\n";
  return s;
}

}  // namespace

Result<Explanation> Explain(const Trace& trace, const ExplainOptions& options) {
  Explanation e;
  const Analysis a = Analyse(trace);
  const LiveFacts live = Live(trace);
  e.reproduced_log = live.have;
  e.text = TextOf(trace, a, live, options);
  e.svg = SvgOf(trace, a, live);
  return e;
}

}  // namespace crashsim::traces
