// Tests of version 2 traces, which embed a third-party run's device data (traces/embedded.h):
// the text form round-trips and stays small, a synthetic failing third-party run replays to its
// verdict from the trace alone, corrupt data is rejected with the line named, and minimize
// shrinks the crash state of such a trace.
#include "traces/embedded.h"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <regex>

#include "engine/image.h"
#include "properties/explorer.h"
#include "simdisk/sim_disk.h"
#include "traces/explain.h"
#include "traces/minimize.h"
#include "traces/replay.h"

namespace crashsim::traces {
namespace {

constexpr uint64_t kJunkOffset = 512 * 1024;

Workload BuggyWorkload() {
  return *Workload::Parse("disk 262144\nwrite 0x0 4096 p=7\nwrite 0x9000 8192 p=9\nflush\n");
}

ExploreSettings BuggySettings() {
  ExploreSettings s;
  s.image.cluster_size = 4096;
  s.image.size = BuggyWorkload().disk_size;
  s.cache_mode = CacheMode::kWritethrough;
  return s;
}

// A "third-party writer" run: the image is created by crashsim's engine, then the writer
// acknowledges guest op 0 without writing anything, writes guest op 1's data raw into unused
// space past the image and "flushes" with a stray write. Guest op 0 was promised durable at its
// acknowledgement (writethrough), so every crash state after it fails the data check.
std::shared_ptr<const simdisk::Recording> BuggyRun(uint64_t* stray_write) {
  auto created = std::make_shared<simdisk::Medium>();
  EXPECT_TRUE(Image::Create(*created, BuggySettings().image).ok());
  created->SetSize(1 << 20);
  simdisk::SimDisk disk({}, created);
  const Workload w = BuggyWorkload();
  disk.BeginGuestOp(0, w.ops[0].ToText());
  disk.AckGuestOp();
  disk.BeginGuestOp(1, w.ops[1].ToText());
  std::vector<uint8_t> data(8192);
  FillPattern(9, 0x9000, data);
  EXPECT_TRUE(disk.Write(kJunkOffset, data, {}).ok());
  disk.AckGuestOp();
  disk.BeginGuestOp(2, w.ops[2].ToText());
  std::vector<uint8_t> junk(512, 0xa5);
  EXPECT_TRUE(disk.Write(kJunkOffset + 65536, junk, {}).ok());
  *stray_write = disk.recording().op_count() - 1;
  disk.AckGuestOp();
  disk.BeginGuestOp(3, "close");
  EXPECT_TRUE(disk.Flush().ok());
  disk.AckGuestOp();
  return disk.SnapshotRecording();
}

Trace BuggyTrace(const simdisk::CrashState& state) {
  uint64_t stray = 0;
  auto rec = BuggyRun(&stray);
  auto oracle =
      OracleFor(BuggyWorkload(), CacheMode::kWritethrough, simdisk::CrashKind::kPowerLoss, *rec);
  StateResult r = CheckEmbeddedState(*rec, *oracle, state);
  return MakeEmbeddedTrace("buggy", "1.0 (test writer)", BuggyWorkload(), BuggySettings(), *rec, r);
}

simdisk::CrashState StrayDropped() {
  uint64_t stray = 0;
  BuggyRun(&stray);
  simdisk::CrashState s;
  s.point = stray + 2;  // past the stray write and the ack of guest op 2, before the close
  simdisk::WriteFate drop;
  drop.op = stray;
  s.fates.push_back(drop);
  return s;
}

TEST(EmbeddedTrace, RoundTripsAndStaysSmall) {
  Trace t = BuggyTrace(StrayDropped());
  ASSERT_TRUE(t.embedded.has_value());
  EXPECT_EQ(t.verdict, Outcome::kFailure) << t.detail;
  const std::string text = t.ToText();
  EXPECT_TRUE(text.starts_with("crashsim-trace 2\n"));
  EXPECT_NE(text.find("\ntarget buggy 1.0 (test writer)\n"), std::string::npos);
  auto parsed = Trace::Parse(text, "t.cstrace");
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
  EXPECT_TRUE(*parsed == t);
  EXPECT_EQ(parsed->ToText(), text);
  // A 1 MiB medium and 8.5 KiB of (incompressible) pattern writes: about 12 KiB of text.
  EXPECT_LT(text.size(), 16000u);
}

TEST(EmbeddedTrace, FailingThirdPartyTraceReplaysToItsVerdict) {
  Trace t = BuggyTrace(StrayDropped());
  ASSERT_EQ(t.verdict, Outcome::kFailure);
  auto parsed = Trace::Parse(t.ToText(), "t.cstrace");
  ASSERT_TRUE(parsed.ok());
  auto r = Replay(*parsed);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->code, kReplayMatch) << r->message;
  EXPECT_EQ(r->actual.outcome, Outcome::kFailure);
  EXPECT_EQ(FailureClass(r->actual.detail), FailureClass(t.detail));
  EXPECT_EQ(r->explorer, nullptr);  // no engine re-run
  ASSERT_NE(r->recording, nullptr);

  // A recorded "clean" verdict for the same state no longer reproduces.
  Trace wrong = *parsed;
  wrong.verdict = Outcome::kClean;
  wrong.detail.clear();
  auto r2 = Replay(wrong);
  ASSERT_TRUE(r2.ok());
  EXPECT_EQ(r2->code, kReplayVerdictDiffers);

  // Before guest op 0's acknowledgement nothing was promised: the state passes.
  simdisk::CrashState early;
  early.point = 1;  // after guest op 0 began
  Trace before = BuggyTrace(early);
  EXPECT_NE(before.verdict, Outcome::kFailure) << before.detail;
  auto r3 = Replay(*Trace::Parse(before.ToText()));
  ASSERT_TRUE(r3.ok());
  EXPECT_EQ(r3->code, kReplayMatch) << r3->message;

  // --portable does not apply.
  EXPECT_FALSE(Replay(*parsed, {.portable = true}).ok());
}

// A <text> of the SVG and the box it covers, from its position, anchor and font size (0.6 em
// a character: as wide as common sans-serif and monospace faces set these labels).
struct TextBox {
  double x0, x1, y0, y1;
  std::string content;
};

std::vector<TextBox> SvgTexts(const std::string& svg) {
  static const std::regex text(R"re(<text x="(\d+)" y="(\d+)"([^>]*)>([^<]*)</text>)re");
  std::vector<TextBox> out;
  for (auto it = std::sregex_iterator(svg.begin(), svg.end(), text); it != std::sregex_iterator();
       ++it) {
    const std::string attrs = (*it)[3];
    const double size = attrs.find("font-size=\"15\"") != std::string::npos ? 15 : 11;
    std::string content = (*it)[4];
    for (const std::string entity : {"&lt;", "&gt;", "&amp;", "&quot;"}) {
      for (size_t at; (at = content.find(entity)) != std::string::npos;) {
        content.replace(at, entity.size(), "x");
      }
    }
    const double x = std::stod((*it)[1]), y = std::stod((*it)[2]);
    const double w = 0.6 * size * static_cast<double>(content.size());
    const bool end = attrs.find("text-anchor=\"end\"") != std::string::npos;
    out.push_back({end ? x - w : x, end ? x : x + w, y - size, y + 0.25 * size, content});
  }
  return out;
}

TEST(EmbeddedTrace, ShowExplainsItWithoutARerun) {
  const Trace t = BuggyTrace(StrayDropped());
  auto e = Explain(t);
  ASSERT_TRUE(e.ok()) << e.status().ToString();
  EXPECT_TRUE(e->reproduced_log);
  EXPECT_NE(e->text.find("Target: buggy"), std::string::npos) << e->text;

  // The SVG says what the trace shows, lists every write and flush by sequence number with its
  // details in words (not in tooltips, lost in print), and no two labels overlap.
  const std::string& svg = e->svg;
  ASSERT_EQ(svg.rfind("<svg", 0), 0u) << svg.substr(0, 200);
  EXPECT_NE(svg.find(">FAILURE at " + t.state.ToText() + ": the crash property does not hold<"),
            std::string::npos);
  EXPECT_EQ(svg.find("<title>"), std::string::npos) << "details are printed, not tooltips";
  const std::vector<TextBox> texts = SvgTexts(svg);
  auto has_text = [&](const std::string& content) {
    return std::any_of(texts.begin(), texts.end(),
                       [&](const TextBox& b) { return b.content.starts_with(content); });
  };
  size_t rows = 0;
  for (size_t i = 0; i < t.device_ops.size(); ++i) {
    const TraceOp& op = t.device_ops[i];
    if (op.kind != simdisk::OpKind::kWrite && op.kind != simdisk::OpKind::kFlush) continue;
    ++rows;
    EXPECT_TRUE(has_text(std::to_string(i))) << "no sequence number for op " << i;
    const std::string label = op.kind == simdisk::OpKind::kFlush
                                  ? "flush"
                                  : fmt::format("write {:#x}+{}", op.offset, op.length);
    EXPECT_TRUE(has_text(label)) << "no details for op " << i << ": " << label;
  }
  EXPECT_GE(rows, 3u);
  EXPECT_TRUE(std::any_of(texts.begin(), texts.end(), [](const TextBox& b) {
    return b.content.find("DROPPED") != std::string::npos;
  })) << "the dropped write is not named";
  for (size_t i = 0; i < texts.size(); ++i) {
    for (size_t j = i + 1; j < texts.size(); ++j) {
      const TextBox& a = texts[i];
      const TextBox& b = texts[j];
      const bool overlap = a.x0 < b.x1 && b.x0 < a.x1 && a.y0 < b.y1 && b.y0 < a.y1;
      EXPECT_FALSE(overlap) << "'" << a.content << "' overlaps '" << b.content << "'";
    }
  }
}

// The line number (1-based) of the first line starting with `prefix`.
size_t LineOf(const std::string& text, const std::string& prefix) {
  size_t line = 1;
  for (size_t at = 0; at < text.size();) {
    if (text.compare(at, prefix.size(), prefix) == 0) return line;
    at = text.find('\n', at);
    if (at == std::string::npos) break;
    ++at;
    ++line;
  }
  return 0;
}

TEST(EmbeddedTrace, CorruptDataIsRejectedNamingTheLine) {
  const std::string text = BuggyTrace(StrayDropped()).ToText();
  const size_t d_line = LineOf(text, "d ");
  ASSERT_GT(d_line, 0u);
  const size_t d_at = text.find("\nd ") + 1;
  const size_t eol = text.find('\n', d_at);
  // Every change to a character of the payload is caught at that line (bad base64, a frame
  // that does not decompress, or bytes that do not hash to the op's hash=), before the
  // checksum at the end is even looked at.
  const size_t payload = text.rfind(' ', eol) + 1;
  size_t tried = 0;
  for (size_t at = payload; at < eol; at += std::max<size_t>(1, (eol - payload) / 40)) {
    std::string bad = text;
    bad[at] = bad[at] == 'A' ? 'B' : 'A';
    auto parsed = Trace::Parse(bad, "t.cstrace");
    ASSERT_FALSE(parsed.ok()) << "byte " << at;
    EXPECT_NE(parsed.status().message().find(fmt::format("t.cstrace:{} ", d_line)),
              std::string::npos)
        << parsed.status().message();
    ++tried;
  }
  EXPECT_GT(tried, 10u);
  // A missing data line is named too.
  std::string missing = text;
  missing.erase(d_at, eol + 1 - d_at);
  auto parsed = Trace::Parse(missing, "t.cstrace");
  ASSERT_FALSE(parsed.ok());
  EXPECT_NE(parsed.status().message().find("data"), std::string::npos) << parsed.status().message();
  // A medium extent too.
  std::string medium = text;
  const size_t m_at = text.find("\nm ") + 1;
  medium[text.find('\n', m_at) - 3] ^= 0x01;
  parsed = Trace::Parse(medium, "t.cstrace");
  ASSERT_FALSE(parsed.ok());
  EXPECT_NE(parsed.status().message().find(fmt::format("t.cstrace:{} ", LineOf(text, "m "))),
            std::string::npos)
      << parsed.status().message();
  // Version 1 traces cannot carry data.
  std::string v1 = text;
  v1[15] = '1';
  EXPECT_FALSE(Trace::Parse(v1).ok());
}

TEST(EmbeddedTrace, MinimizeShrinksTheCrashState) {
  Trace t = BuggyTrace(StrayDropped());
  ASSERT_EQ(t.state.fates.size(), 1u);
  auto report = Minimize(t);
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  EXPECT_TRUE(report->trace.state.fates.empty()) << report->trace.state.ToText();
  EXPECT_EQ(report->trace.verdict, Outcome::kFailure);
  EXPECT_EQ(report->trace.workload.ops.size(), t.workload.ops.size());
  EXPECT_TRUE(report->trace.embedded.has_value());
  auto r = Replay(*Trace::Parse(report->trace.ToText()));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->code, kReplayMatch) << r->message;
}

}  // namespace
}  // namespace crashsim::traces
