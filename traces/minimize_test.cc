// Minimisation on a real failure of this build: with the garbage tear model, a pending guest
// write torn into garbage units makes the guest read garbage, which the oracle rejects. The
// minimiser must keep that failure while removing the guest ops and fates that do not matter.
#include "traces/minimize.h"

#include <gtest/gtest.h>

#include <iostream>

#include "properties/explorer.h"
#include "simdisk/crash_enumerator.h"
#include "traces/capture.h"
#include "traces/replay.h"

namespace crashsim::traces {
namespace {

std::optional<Trace> GarbageFailure() {
  ExploreOptions o;
  o.settings.image.cluster_size = 4096;
  o.settings.cache_mode = CacheMode::kWriteback;
  o.settings.selection.model.content = simdisk::TearContent::kGarbage;
  o.settings.selection.k = 2;
  o.settings.selection.samples = 8;
  o.settings.metadata_first = false;
  o.settings.writes_after_repair = false;
  Workload w = *Workload::Parse(
      "disk 69632\nwrite 0x0 4096 p=1\nflush\nwrite 0x2000 2048 p=2\nzero 0x8000 4096\n"
      "write 0x4000 8192 p=3\nwrite 0x9000 512 p=4\n");
  auto explorer = Explorer::Record(w, o);
  EXPECT_TRUE(explorer.ok());
  auto rec = std::make_shared<const simdisk::Recording>((*explorer)->recording().Fork());
  simdisk::CrashEnumerator states(rec, (*explorer)->EnumerationFor());
  while (auto s = states.Next()) {
    StateResult r = (*explorer)->CheckState(*s);
    if (r.outcome == Outcome::kFailure && s->fates.size() >= 2) {
      return MakeTrace(w, o.settings, (*explorer)->recording(), r);
    }
  }
  return std::nullopt;
}

TEST(Minimize, ShrinksARealFailureAndKeepsItsClass) {
  std::optional<Trace> t = GarbageFailure();
  ASSERT_TRUE(t.has_value());
  ASSERT_EQ(Replay(*t)->code, kReplayMatch);
  auto report = Minimize(*t);
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  const Trace& m = report->trace;
  std::cout << report->Summary() << m.ToText();
  EXPECT_EQ(m.verdict, Outcome::kFailure);
  EXPECT_EQ(FailureClass(m.detail), FailureClass(t->detail));
  EXPECT_LT(m.workload.ops.size(), t->workload.ops.size());
  EXPECT_LE(m.state.fates.size(), t->state.fates.size());
  EXPECT_FALSE(report->steps.empty());
  // The result is a trace like any other: it round-trips and replays in a fresh run.
  auto back = Trace::Parse(m.ToText());
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  auto replayed = Replay(*back);
  ASSERT_TRUE(replayed.ok());
  EXPECT_EQ(replayed->code, kReplayMatch) << replayed->message;
  // Deterministic: the same input gives the same output.
  EXPECT_EQ(Minimize(*t)->trace.ToText(), m.ToText());
}

TEST(Minimize, RefusesPassingTraces) {
  std::optional<Trace> t = GarbageFailure();
  ASSERT_TRUE(t.has_value());
  t->verdict = Outcome::kClean;
  auto report = Minimize(*t);
  ASSERT_FALSE(report.ok());
  EXPECT_NE(report.status().message().find("only failures"), std::string::npos);
}

}  // namespace
}  // namespace crashsim::traces
