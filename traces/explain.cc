// The text and SVG explanations of a trace (explain.h).
#include "traces/explain.h"

#include <fmt/format.h>

#include <map>
#include <memory>

#include "engine/check/check.h"
#include "engine/coding.h"
#include "engine/format/header.h"
#include "engine/protocol.h"
#include "engine/xml_escape.h"
#include "properties/explorer.h"
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
    auto explorer = Explorer::Record(t.workload, t.settings);
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
    auto oracle =
        OracleFor(t.workload, t.settings.cache_mode, t.settings.selection.kind, *recording);
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
                     simdisk::CrashKindName(t.settings.selection.kind), t.settings.atomic_unit);
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

// ---- the SVG timeline -----------------------------------------------------------------------
// Device ops top to bottom, one row each (reads left out, as in the text form): sequence number,
// the guest op, a swatch coloured by the structure written and drawn by its fate, and the op in
// words, so the picture says the same printed or converted to PNG as on screen. Every label has
// a row (or a legend cell) of its own, so nothing overlaps however long the trace.

constexpr int kSvgRow = 16;     // px per row
constexpr int kSvgChar = 7;     // px per character of the 11 px monospace text (6.6, rounded up)
constexpr int kSvgSeqX = 48;    // right edge of the sequence numbers
constexpr int kSvgGuestX = 60;  // guest op labels
constexpr size_t kSvgGuestChars = 34;
constexpr int kSvgSwatchX = kSvgGuestX + static_cast<int>(kSvgGuestChars) * kSvgChar + 10;
constexpr int kSvgDetailX = kSvgSwatchX + 22;
constexpr double kSvgSansChar = 6.2;  // px per character of the 11 px sans-serif headline

std::string Clip(std::string text, size_t chars) {
  if (text.size() > chars) text = text.substr(0, chars - 3) + "...";
  return text;
}

// Splits at spaces into lines of at most `width` characters (longer words are cut).
std::vector<std::string> Wrap(const std::string& text, size_t width) {
  std::vector<std::string> lines;
  std::string rest = text;
  while (!rest.empty()) {
    size_t cut = rest.size() <= width ? rest.size() : rest.rfind(' ', width);
    if (cut == std::string::npos || cut == 0) cut = std::min(width, rest.size());
    lines.push_back(rest.substr(0, cut));
    rest = cut < rest.size() ? rest.substr(cut + (rest[cut] == ' ')) : "";
  }
  return lines;
}

// What the trace shows, in its first line: a failure, or a passing (regression) replay.
std::string SvgHeadline(const Trace& t, const LiveFacts& live, int width, int* y) {
  const bool failure = t.verdict == Outcome::kFailure;
  std::string head =
      failure ? fmt::format("FAILURE at {}: the crash property does not hold", t.state.ToText())
              : fmt::format("Passing at {}: {}; the crash property holds", t.state.ToText(),
                            VerdictName(t.verdict));
  if (live.have && live.result.outcome != t.verdict) {
    head += fmt::format(" (recorded); this build says {}", VerdictName(live.result.outcome));
  }
  std::string s = fmt::format(
      "<text x=\"10\" y=\"{}\" font-size=\"15\" font-weight=\"bold\" fill=\"{}\">{}</text>\n", *y,
      failure ? "#b00" : "#060", XmlEscape(head));
  *y += 20;
  // Image options break after their commas, like any other words.
  std::string image = t.settings.image.ToString();
  for (size_t at = 0; (at = image.find(',', at)) != std::string::npos; at += 2) {
    image.insert(at + 1, " ");
  }
  const auto wrap = static_cast<size_t>((width - 20) / kSvgSansChar);
  std::vector<std::string> lines = {
      "image " + image,
      fmt::format("cache {}; crash {} {}", CacheModeName(t.settings.cache_mode),
                  simdisk::CrashKindName(t.settings.selection.kind), PointText(t))};
  std::string detail = live.have ? live.result.detail : t.detail;
  if (live.have) {
    detail = "dirty bit " + live.dirty.substr(0, live.dirty.find(' ')) +
             (detail.empty() ? "" : "; " + detail);
  }
  for (const std::string& line : lines) {
    for (const std::string& part : Wrap(line, wrap)) {
      s += fmt::format("<text x=\"10\" y=\"{}\">{}</text>\n", *y, XmlEscape(part));
      *y += 14;
    }
  }
  for (const std::string& part : Wrap(detail, wrap)) {
    s += fmt::format("<text x=\"10\" y=\"{}\" fill=\"#b00\">{}</text>\n", *y, XmlEscape(part));
    *y += 14;
  }
  return s;
}

// The 12 px swatch of a write or resize at (x, y): its structure's colour, drawn by its fate.
std::string SvgSwatch(const TraceOp& op, Fate fate, int x, int y) {
  const char* color = op.kind == OpKind::kWrite ? TagColor(op.tag) : "#444";
  std::string s;
  switch (fate) {
    case Fate::kDropped:
      s = fmt::format(
          "<rect x=\"{}\" y=\"{}\" width=\"12\" height=\"12\" fill=\"white\" stroke=\"{}\" "
          "stroke-width=\"2\" stroke-dasharray=\"3,2\"/>\n",
          x, y, color);
      break;
    case Fate::kTorn:
      s = fmt::format(
          "<rect x=\"{0}\" y=\"{1}\" width=\"12\" height=\"12\" fill=\"white\" stroke=\"{2}\" "
          "stroke-width=\"2\"/><rect x=\"{0}\" y=\"{3}\" width=\"12\" height=\"6\" "
          "fill=\"{2}\"/>\n",
          x, y, color, y + 6);
      break;
    default: {
      const double opacity = fate == Fate::kAfterCrash ? 0.2 : fate == Fate::kKeptWhole ? 0.75 : 1;
      s = fmt::format(
          "<rect x=\"{}\" y=\"{}\" width=\"12\" height=\"12\" fill=\"{}\" opacity=\"{}\"{}/>\n", x,
          y, fate == Fate::kFailed ? "#bbb" : color, opacity,
          fate == Fate::kKeptWhole ? " stroke=\"#000\" stroke-dasharray=\"1,1\"" : "");
    }
  }
  if (op.fua)
    s += fmt::format("<circle cx=\"{}\" cy=\"{}\" r=\"2.5\" fill=\"black\"/>\n", x + 16, y + 6);
  return s;
}

// The legend: one cell per entry, cells in a grid so no two share a place.
std::string SvgLegend(const std::vector<IoTag>& tags, int width, int* cursor_y) {
  std::vector<std::pair<std::string, std::string>> cells;  // swatch, label
  auto rect = [](const std::string& fill, const std::string& extra) {
    return fmt::format("<rect x=\"{{x}}\" y=\"{{y}}\" width=\"12\" height=\"12\" fill=\"{}\"{}/>",
                       fill, extra);
  };
  for (IoTag tag : tags) cells.emplace_back(rect(TagColor(tag), ""), IoTagName(tag));
  cells.emplace_back(rect("#888", ""), "durable");
  cells.emplace_back(rect("#888", " opacity=\"0.75\" stroke=\"#000\" stroke-dasharray=\"1,1\""),
                     "pending, persisted whole");
  cells.emplace_back(rect("white", " stroke=\"#888\" stroke-width=\"2\"") +
                         "<rect x=\"{x}\" y=\"{y6}\" width=\"12\" height=\"6\" fill=\"#888\"/>",
                     "torn");
  cells.emplace_back(rect("white", " stroke=\"#888\" stroke-width=\"2\" stroke-dasharray=\"3,2\""),
                     "dropped");
  cells.emplace_back(rect("#888", " opacity=\"0.2\""), "after the crash (never issued)");
  cells.emplace_back(rect("#bbb", ""), "failed, no effect");
  cells.emplace_back("<circle cx=\"{x16}\" cy=\"{y6}\" r=\"2.5\" fill=\"black\"/>", "FUA");
  constexpr int kCell = 240;
  const int per_line = std::max(1, (width - 20) / kCell);
  std::string s =
      fmt::format("<text x=\"10\" y=\"{}\" font-weight=\"bold\">legend</text>\n", *cursor_y);
  *cursor_y += 8;
  for (size_t i = 0; i < cells.size(); ++i) {
    const int x = 10 + static_cast<int>(i % per_line) * kCell;
    const int y = *cursor_y + static_cast<int>(i / per_line) * kSvgRow;
    std::string shape = cells[i].first;
    for (auto [key, value] :
         {std::pair<std::string, int>{"{x16}", x + 16}, {"{x}", x}, {"{y6}", y + 6}, {"{y}", y}}) {
      for (size_t at; (at = shape.find(key)) != std::string::npos;) {
        shape.replace(at, key.size(), std::to_string(value));
      }
    }
    s += shape + fmt::format("<text x=\"{}\" y=\"{}\">{}</text>\n", x + 24, y + 10,
                             XmlEscape(Clip(cells[i].second, (kCell - 30) / kSvgChar)));
  }
  *cursor_y += static_cast<int>((cells.size() + per_line - 1) / per_line) * kSvgRow;
  return s;
}

std::string SvgOf(const Trace& t, const Analysis& a, const LiveFacts& live) {
  const auto& ops = t.device_ops;
  // The rows: device ops other than reads and guest markers, plus a row for each barrier and
  // one for the crash, each with its text.
  struct Row {
    uint64_t seq;  // the op, or the op after the marker
    enum Kind : uint8_t { kOp, kBarrier, kCrash } kind;
  };
  std::vector<Row> rows;
  std::vector<IoTag> tags;
  size_t widest = 60;
  bool crash_drawn = false;
  for (uint64_t i = 0; i <= ops.size(); ++i) {
    if (!crash_drawn && i == t.state.point) {
      rows.push_back({i, Row::kCrash});
      crash_drawn = true;
    }
    if (i == ops.size()) break;
    const TraceOp& op = ops[i];
    if (op.kind == OpKind::kRead || op.kind == OpKind::kGuestBegin ||
        op.kind == OpKind::kGuestAck) {
      continue;
    }
    rows.push_back({i, Row::kOp});
    if (op.kind == OpKind::kWrite && std::find(tags.begin(), tags.end(), op.tag) == tags.end()) {
      tags.push_back(op.tag);
    }
    widest = std::max(widest, OpLabel(op).size() + Structure(op).size() + 30);
    if (op.kind == OpKind::kFlush && op.honoured && op.status == StatusCode::kOk &&
        i < t.state.point) {
      rows.push_back({i + 1, Row::kBarrier});
    }
  }
  std::sort(tags.begin(), tags.end());
  const int width = std::max(1000, kSvgDetailX + static_cast<int>(widest) * kSvgChar + 20);

  int y = 24;
  std::string body = SvgHeadline(t, live, width, &y);
  y += 10;
  body += fmt::format(
      "<text x=\"{}\" y=\"{}\" text-anchor=\"end\" font-weight=\"bold\">op</text><text x=\"{}\" "
      "y=\"{}\" font-weight=\"bold\">guest op</text><text x=\"{}\" y=\"{}\" "
      "font-weight=\"bold\">device op, the structure it wrote, its fate at the crash</text>\n",
      kSvgSeqX, y, kSvgGuestX, y, kSvgDetailX, y);
  y += 6;
  uint64_t last_guest = simdisk::kNoGuestOp - 1;  // matches no guest op
  for (const Row& row : rows) {
    const int top = y, base = y + 12;
    y += kSvgRow;
    if (row.kind == Row::kCrash) {
      body += fmt::format(
          "<line x1=\"10\" y1=\"{0}\" x2=\"{1}\" y2=\"{0}\" stroke=\"red\" stroke-width=\"3\"/>"
          "<text x=\"{2}\" y=\"{3}\" fill=\"red\" font-weight=\"bold\">crash ({4}): the ops "
          "below were never issued</text>\n",
          top + 2, width - 10, kSvgDetailX, base + 2, XmlEscape(t.state.ToText()));
      continue;
    }
    if (row.kind == Row::kBarrier) {
      body += fmt::format(
          "<line x1=\"{0}\" y1=\"{1}\" x2=\"{2}\" y2=\"{1}\" stroke=\"#555\" "
          "stroke-width=\"1.5\"/><text x=\"{3}\" y=\"{4}\" fill=\"#555\">barrier: ops before "
          "{5} are durable</text>\n",
          kSvgSwatchX, top + 1, width - 10, kSvgDetailX, base, row.seq);
      continue;
    }
    const TraceOp& op = ops[row.seq];
    const bool after = row.seq >= t.state.point;
    std::string line = fmt::format("<g{}>", after ? " opacity=\"0.45\"" : "");
    line += fmt::format(
        "<text x=\"{}\" y=\"{}\" text-anchor=\"end\" font-family=\"monospace\">{}</text>", kSvgSeqX,
        base, row.seq);
    if (op.guest_op != last_guest) {
      last_guest = op.guest_op;
      if (op.guest_op != simdisk::kNoGuestOp) {
        line +=
            fmt::format("<text x=\"{}\" y=\"{}\" font-family=\"monospace\">{}</text>", kSvgGuestX,
                        base, XmlEscape(Clip(GuestLabel(t, op.guest_op), kSvgGuestChars)));
      }
    }
    std::string detail = OpLabel(op);
    if (!Structure(op).empty()) detail += "  " + Structure(op);
    if (a.fates[row.seq] != Fate::kNotAWrite)
      detail += "  " + std::string(FateText(a.fates[row.seq]));
    if (a.fates[row.seq] == Fate::kTorn) {
      detail += ": " + TearText(op, *a.write_fates[row.seq], t.settings.atomic_unit);
    }
    if (op.status != StatusCode::kOk) detail += "  (failed)";
    if (op.kind == OpKind::kWrite || op.kind == OpKind::kResize) {
      line += SvgSwatch(op, a.fates[row.seq], kSvgSwatchX, top + 2);
    }
    line += fmt::format("<text x=\"{}\" y=\"{}\" font-family=\"monospace\">{}</text></g>\n",
                        kSvgDetailX, base, XmlEscape(detail));
    body += line;
  }
  y += 20;
  body += SvgLegend(tags, width, &y);
  return fmt::format(
             "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{}\" height=\"{}\" "
             "font-family=\"sans-serif\" font-size=\"11\">\n<rect width=\"100%\" height=\"100%\" "
             "fill=\"white\"/>\n",
             width, y + 10) +
         body + "</svg>\n";
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
