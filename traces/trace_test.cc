// The trace format: write/read round trips, and the reader on damaged input (every truncation,
// every flipped byte, a newer version, huge counts and sizes) giving an error that says where.
#include "traces/trace.h"

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>

#include "properties/explorer.h"
#include "properties/workload_gen.h"
#include "simdisk/crash_enumerator.h"
#include "traces/capture.h"
#include "traces/replay.h"

namespace crashsim::traces {
namespace {

ExploreOptions SmallOptions(CacheMode mode = CacheMode::kWriteback) {
  ExploreOptions o;
  o.settings.image.cluster_size = 4096;
  o.settings.image.lazy_refcounts = true;
  o.settings.cache_mode = mode;
  o.settings.selection.seed = 77;
  return o;
}

Workload SmallWorkload() {
  return *Workload::Parse(
      "disk 69632\nwrite 0x0 4096 p=1\nwrite 0x3000 5000 p=2\nflush\n"
      "zero 0x0 4096 unmap\nwrite 0x8000 512 p=3\n");
}

// The trace of the `index`-th enumerated crash state of a small run.
Trace SampleTrace(uint64_t index = 5) {
  auto explorer = Explorer::Record(SmallWorkload(), SmallOptions());
  EXPECT_TRUE(explorer.ok()) << explorer.status().ToString();
  auto rec = std::make_shared<const simdisk::Recording>((*explorer)->recording().Fork());
  simdisk::CrashEnumerator states(rec, (*explorer)->EnumerationFor());
  std::optional<simdisk::CrashState> s;
  for (uint64_t i = 0; i <= index; ++i) s = states.Next();
  EXPECT_TRUE(s.has_value());
  StateResult r = (*explorer)->CheckState(*s);
  Trace t = MakeTrace((*explorer)->workload(), (*explorer)->options().settings,
                      (*explorer)->recording(), r);
  t.comments.push_back("a sample");
  return t;
}

void ExpectErrorMentions(std::string_view text, const std::vector<std::string>& needles) {
  auto parsed = Trace::Parse(text, "t.cstrace");
  ASSERT_FALSE(parsed.ok());
  for (const std::string& n : needles) {
    EXPECT_NE(parsed.status().message().find(n), std::string::npos)
        << "'" << n << "' not in: " << parsed.status().message();
  }
}

std::string Replace(std::string text, std::string_view from, std::string_view to) {
  size_t at = text.find(from);
  EXPECT_NE(at, std::string::npos) << from;
  text.replace(at, from.size(), to);
  return text;
}

// Re-seals an edited trace body (everything before "end ") with a fresh checksum.
std::string Reseal(std::string text) {
  size_t end = text.rfind("end ");
  text.resize(end);
  return text + fmt::format("end {:016x}\n", TraceChecksum(text));
}

TEST(TraceFormat, RoundTrip) {
  Trace t = SampleTrace();
  std::string text = t.ToText();
  auto back = Trace::Parse(text);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(*back, t);
  EXPECT_EQ(back->ToText(), text);
}

TEST(TraceFormat, RoundTripWithDetailAndFates) {
  Trace t = SampleTrace();
  t.verdict = Outcome::kFailure;
  t.detail = "two\nlines with a \\ backslash";
  t.state.fates.clear();
  auto back = Trace::Parse(t.ToText());
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(*back, t);
}

TEST(TraceFormat, EveryTruncationIsRejectedWithALocation) {
  const std::string text = SampleTrace().ToText();
  for (size_t n = 0; n < text.size(); ++n) {
    auto parsed = Trace::Parse(std::string_view(text).substr(0, n), "t.cstrace");
    ASSERT_FALSE(parsed.ok()) << "prefix of " << n << " bytes parsed";
    ASSERT_NE(parsed.status().message().find("t.cstrace:"), std::string::npos);
    ASSERT_NE(parsed.status().message().find("(byte "), std::string::npos);
  }
  ExpectErrorMentions(text.substr(0, text.find("device-ops")),
                      {"end of input", "expected 'device-ops COUNT'", "truncated"});
}

TEST(TraceFormat, EveryFlippedByteIsRejected) {
  const std::string text = SampleTrace().ToText();
  for (size_t i = 0; i < text.size(); ++i) {
    for (uint8_t bit : {0x01, 0x20}) {
      std::string bad = text;
      bad[i] = static_cast<char>(bad[i] ^ bit);
      auto parsed = Trace::Parse(bad, "t.cstrace");
      ASSERT_FALSE(parsed.ok()) << "flip at byte " << i << " accepted";
      ASSERT_NE(parsed.status().message().find("t.cstrace:"), std::string::npos);
    }
  }
}

// An edit with a fresh checksum may be accepted (it is a different, valid trace), but what the
// reader accepts must write back to text that reads as the same trace: replay, minimise and
// the regression suite all rewrite traces.
TEST(TraceFormat, EveryResealedEditThatParsesRoundTrips) {
  const std::string text = SampleTrace().ToText();
  const size_t body = text.rfind("end ");
  size_t accepted = 0;
  for (size_t i = 0; i < body; ++i) {
    for (uint8_t bit : {0x01, 0x02, 0x10, 0x20}) {
      std::string bad = text;
      bad[i] = static_cast<char>(bad[i] ^ bit);
      auto parsed = Trace::Parse(Reseal(bad), "t.cstrace");
      if (!parsed.ok()) continue;
      ++accepted;
      auto again = Trace::Parse(parsed->ToText(), "rewritten.cstrace");
      ASSERT_TRUE(again.ok()) << "flip " << int{bit} << " at byte " << i << ": "
                              << again.status().ToString();
      ASSERT_EQ(*again, *parsed) << "flip " << int{bit} << " at byte " << i;
    }
  }
  EXPECT_GT(accepted, 0u);  // the edits do reach the round trip
}

TEST(TraceFormat, ChecksumMismatchSaysSo) {
  std::string text = SampleTrace().ToText();
  text = Replace(text, "p=2", "p=3");
  ExpectErrorMentions(text, {"checksum mismatch", "edited or corrupted"});
}

// A trace of a workload that resizes the disk reads back as written and replays: ops after a
// grow address the grown disk.
TEST(TraceFormat, ResizeOpsRoundTripAndReplay) {
  auto w = Workload::Parse(
      "disk 65536\nwrite 0x0 4096 p=1\nresize 200704\nwrite 0x30000 4096 p=2\n"
      "resize 12800\nresize 65536\n");
  ASSERT_TRUE(w.ok()) << w.status().ToString();
  auto explorer = Explorer::Record(*w, SmallOptions());
  ASSERT_TRUE(explorer.ok()) << explorer.status().ToString();
  auto rec = std::make_shared<const simdisk::Recording>((*explorer)->recording().Fork());
  simdisk::CrashEnumerator states(rec, (*explorer)->EnumerationFor());
  std::optional<simdisk::CrashState> s;
  for (int i = 0; i < 40; ++i) s = states.Next();
  ASSERT_TRUE(s.has_value());
  Trace t = MakeTrace(*w, (*explorer)->options().settings, (*explorer)->recording(),
                      (*explorer)->CheckState(*s));
  auto back = Trace::Parse(t.ToText(), "resize.cstrace");
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(back->workload, *w);
  EXPECT_EQ(back->ToText(), t.ToText());
  auto replayed = Replay(*back);
  ASSERT_TRUE(replayed.ok()) << replayed.status().ToString();
  EXPECT_EQ(replayed->code, kReplayMatch) << replayed->message;
}

TEST(TraceFormat, NewerVersionIsRefused) {
  std::string text = Replace(SampleTrace().ToText(), "crashsim-trace 1", "crashsim-trace 3");
  ExpectErrorMentions(
      text, {"t.cstrace:1 (byte 0)", "version 3 is not supported", "reads versions 1 to 2"});
  ExpectErrorMentions("GIF89a\n", {"t.cstrace:1", "crashsim-trace VERSION"});
}

// Found by fuzz/fuzz_trace_parse (docs/fuzzing.md): a version 2 header on a trace with no
// embedded run was accepted, and its ToText() wrote version 1: not the same trace read back.
TEST(TraceFormat, VersionTwoWithoutAnEmbeddedRunIsRefused) {
  std::string text =
      Reseal(Replace(SampleTrace().ToText(), "crashsim-trace 1", "crashsim-trace 2"));
  ExpectErrorMentions(text, {"t.cstrace:", "version 2", "'target NAME VERSION'"});
}

TEST(TraceFormat, HugeNumbersAreRefusedBeforeAllocating) {
  const std::string text = SampleTrace().ToText();
  size_t at = text.find("device-ops ");
  size_t eol = text.find('\n', at);
  std::string bad =
      Reseal(text.substr(0, at) + "device-ops 18446744073709551615" + text.substr(eol));
  ExpectErrorMentions(bad, {"device op count", "out of range"});
  bad = Reseal(text.substr(0, at) + "device-ops 99999999999999999999999" + text.substr(eol));
  ExpectErrorMentions(bad, {"out of range"});
  bad = Reseal(Replace(text, "disk 69632", "disk 1099511627776"));
  ExpectErrorMentions(bad, {"disk size", "out of range"});
  bad = Reseal(Replace(text, "write 0x8000 512 p=3", "write 0x8000 999999999999 p=3"));
  ExpectErrorMentions(bad, {"workload op 4 of 5", "outside"});
  bad = Reseal(Replace(text, "flush\n", "resize 2199023255552\n"));
  ExpectErrorMentions(bad, {"workload op 2 of 5", "resize to 2199023255552 bytes", "limit"});
  // A shrink before a write makes the write fall outside: the disk each op meets is checked.
  bad = Reseal(Replace(text, "flush\n", "resize 8192\n"));
  ExpectErrorMentions(bad, {"workload op 4 of 5", "outside the 8192-byte disk"});
  bad = Reseal(Replace(text, "unit=512", "unit=3"));
  ExpectErrorMentions(bad, {"unit 3", "512 or 4096"});
  bad = Reseal(Replace(text, "unit=512", "unit=1048576"));  // simdisk models 512 and 4096
  ExpectErrorMentions(bad, {"unit 1048576", "512 or 4096"});
  bad = Reseal(Replace(text, "unit=512", "unit=99999999999999999999"));
  ExpectErrorMentions(bad, {"unit", "out of range"});
  std::string long_line = Replace(text, "# a sample", "# " + std::string(100000, 'x'));
  ExpectErrorMentions(long_line, {"longer than"});
}

TEST(TraceFormat, StructuralErrorsNameTheLine) {
  const std::string text = SampleTrace().ToText();
  // A device-op line removed: the sequence numbers say which.
  size_t at = text.find("\n3 ");
  size_t eol = text.find('\n', at + 1);
  ExpectErrorMentions(Reseal(text.substr(0, at) + text.substr(eol)),
                      {"expected device op 3, got op 4"});
  ExpectErrorMentions(Reseal(Replace(text, "tag=", "tag=L9 x=")), {"unknown tag 'tag=L9'"});
  ExpectErrorMentions(Reseal(Replace(text, "cache writeback", "cache sometimes")),
                      {":5 (byte", "Invalid cache mode"});
  ExpectErrorMentions(Reseal(Replace(text, "crash-state power-loss@", "crash-state power-loss@9")),
                      {"crash point", "past the"});
  ExpectErrorMentions(text + "more\n", {"after the end line"});
}

TEST(TraceFormat, PortablePointRoundTripsThroughTheLog) {
  Trace t = SampleTrace();
  for (uint64_t p = 0; p <= t.device_ops.size(); ++p) {
    PortablePoint pp = DescribePoint(t.device_ops, p);
    auto m = MapPoint(t.device_ops, pp);
    ASSERT_TRUE(m.ok());
    EXPECT_TRUE(m->exact);
    EXPECT_EQ(DescribePoint(t.device_ops, m->point), pp) << p;
  }
}

// An engine that adds a write (here: a dirty-bit header write) before the crash still crashes
// "right after the first L1 write of guest op 0": the point maps by structure, not by count.
TEST(TraceFormat, PortablePointMapsByStructureAcrossEngines) {
  auto op = [](simdisk::OpKind kind, IoTag tag = IoTag::kUnknown) {
    TraceOp o;
    o.kind = kind;
    o.tag = tag;
    o.guest_op = 0;
    return o;
  };
  using K = simdisk::OpKind;
  std::vector<TraceOp> before = {op(K::kGuestBegin),
                                 op(K::kWrite, IoTag::kL2Table),
                                 op(K::kFlush),
                                 op(K::kWrite, IoTag::kL1Table),
                                 op(K::kWrite, IoTag::kData),
                                 op(K::kGuestAck)};
  std::vector<TraceOp> after = {op(K::kGuestBegin),
                                op(K::kWrite, IoTag::kHeader),
                                op(K::kFlush),
                                op(K::kRead),
                                op(K::kWrite, IoTag::kL2Table),
                                op(K::kFlush),
                                op(K::kWrite, IoTag::kL1Table),
                                op(K::kRead),
                                op(K::kWrite, IoTag::kData),
                                op(K::kGuestAck)};
  PortablePoint p = DescribePoint(before, 4);
  EXPECT_EQ(p.ToText(), "after=begin guest=0 changes=3 last=L1#1");
  auto m = MapPoint(after, p);
  ASSERT_TRUE(m.ok());
  EXPECT_TRUE(m->exact);
  EXPECT_EQ(m->point, 8u);  // past the L1 write and the read after it
  // Without the structure, the count alone lands earlier; that is the fallback.
  p.last.clear();
  EXPECT_EQ(MapPoint(after, p)->point, 5u);
}

TEST(TraceFormat, AnInjectedFaultRoundTripsAndReplays) {
  // A run whose 3rd device write fails with ENOSPC: the trace names the fault, and replaying it
  // re-runs the workload with the same error, to the same device log and verdict.
  ExploreOptions o = SmallOptions();
  o.settings.fault = *simdisk::ParseFault("write#2:ENOSPC");
  auto explorer = Explorer::Record(SmallWorkload(), o);
  ASSERT_TRUE(explorer.ok()) << explorer.status().ToString();
  ASSERT_TRUE((*explorer)->run().fault.has_value());
  simdisk::CrashState end;  // power loss at the end, every pending write kept
  end.point = (*explorer)->recording().op_count();
  StateResult r = (*explorer)->CheckState(end);
  Trace t = MakeTrace((*explorer)->workload(), o.settings, (*explorer)->recording(), r);
  const std::string text = t.ToText();
  EXPECT_NE(text.find(" fault=write#2:ENOSPC\n"), std::string::npos) << text;
  EXPECT_NE(text.find("failed=no-space"), std::string::npos) << text;
  auto back = Trace::Parse(text);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(*back, t);
  auto replayed = Replay(*back);
  ASSERT_TRUE(replayed.ok()) << replayed.status().ToString();
  EXPECT_EQ(replayed->code, kReplayMatch) << replayed->message;
  // Without the fault the run differs, and replay says so.
  Trace unfaulted = t;
  unfaulted.settings.fault.reset();
  auto differs = Replay(*Trace::Parse(unfaulted.ToText()));
  ASSERT_TRUE(differs.ok());
  EXPECT_EQ(differs->code, kReplayDeviceLogDiffers);
}

TEST(TraceFormat, MalformedFaultsAreRefused) {
  const std::string text = SampleTrace().ToText();
  for (const char* bad : {"fault=write", "fault=write#x:EIO", "fault=write#01:EIO",
                          "fault=guest-ack#1:EIO", "fault=write#1:EPERM", "fault=write#1"}) {
    std::string edited =
        Reseal(Replace(text, "repair-crash-states=0", std::string("repair-crash-states=0 ") + bad));
    ExpectErrorMentions(edited, {"fault"});
  }
}

TEST(TraceCapture, WritesFailureTraceIntoDirectory) {
  auto explorer = Explorer::Record(SmallWorkload(), SmallOptions());
  ASSERT_TRUE(explorer.ok());
  simdisk::CrashState state;
  state.point = 9;
  StateResult r = (*explorer)->CheckState(state);
  r.outcome = Outcome::kFailure;
  r.detail = "planted";
  const std::string dir = ::testing::TempDir() + "/crashsim-traces-test";
  auto path = WriteFailureTrace(dir, **explorer, r);
  ASSERT_TRUE(path.ok()) << path.status().ToString();
  auto back = ReadTraceFile(*path);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(back->detail, "planted");
  EXPECT_EQ(back->state.point, 9u);
}

// Every generated trace replays, in this process, to the verdict it recorded, both exactly and
// through its portable half.
RC_GTEST_PROP(TraceReplay, GeneratedTracesReplayToTheirVerdict, ()) {
  ExploreOptions o;
  o.settings = *GenImageSettings(ExploreSettings{}, /*allow_unsafe=*/false);
  o.settings.image.cluster_size = *rc::gen::element<uint64_t>(512, 4096);
  const uint64_t disk = 16 * o.settings.image.cluster_size + 4096;
  Workload workload = *GenWorkload(disk, o.settings.image.cluster_size, 5);
  o.settings.selection.kind =
      *rc::gen::element(simdisk::CrashKind::kPowerLoss, simdisk::CrashKind::kProcessKill);
  o.settings.selection.seed = *rc::gen::arbitrary<uint32_t>();
  auto explorer = Explorer::Record(workload, o);
  RC_ASSERT(explorer.ok());
  auto rec = std::make_shared<const simdisk::Recording>((*explorer)->recording().Fork());
  simdisk::CrashEnumerator states(rec, (*explorer)->EnumerationFor());
  const uint64_t pick = *rc::gen::inRange<uint64_t>(0, 40);
  std::optional<simdisk::CrashState> s;
  for (uint64_t i = 0; i <= pick; ++i) {
    auto next = states.Next();
    if (!next) break;
    s = next;
  }
  RC_ASSERT(s.has_value());
  StateResult r = (*explorer)->CheckState(*s);
  RC_CLASSIFY(!s->fates.empty(), "torn or dropped writes");
  Trace t = MakeTrace(workload, o.settings, (*explorer)->recording(), r);
  auto back = Trace::Parse(t.ToText());
  RC_ASSERT(back.ok());
  RC_ASSERT(*back == t);
  auto replayed = Replay(*back);
  RC_ASSERT(replayed.ok());
  RC_ASSERT(replayed->code == kReplayMatch);
  RC_ASSERT(replayed->actual.outcome == r.outcome);
  RC_ASSERT(replayed->actual.detail == r.detail);
  ReplayOptions portable;
  portable.portable = true;
  portable.max_states = 16;
  auto ported = Replay(*back, portable);
  RC_ASSERT(ported.ok());
  RC_ASSERT(ported->code == kReplayMatch);
}

}  // namespace
}  // namespace crashsim::traces
