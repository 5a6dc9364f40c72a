#include "properties/workload.h"

#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>

#include "properties/random_workload.h"
#include "properties/workload_gen.h"

namespace crashsim {
namespace {

RC_GTEST_PROP(WorkloadTest, TextRoundTrips, ()) {
  Workload w = *GenWorkload(1 << 20, 4096, 20);
  auto parsed = Workload::Parse(w.ToText());
  RC_ASSERT(parsed.ok());
  RC_ASSERT(*parsed == w);
}

TEST(WorkloadTest, ParseErrorsNameTheLine) {
  struct Case {
    const char* text;
    const char* message;
  } cases[] = {
      {"", "empty"},
      {"write 0 512 p=1\n", "line 1: expected 'disk SIZE' first"},
      {"disk 4096\nwrite 0 8192 p=1\n", "line 2: range 0x0+8192"},
      {"disk 4096\nfrobnicate\n", "line 2: unknown operation 'frobnicate'"},
      {"disk 4096\nwrite 0x zz\n", "line 2: offset '0x' is not a number"},
      {"disk 4096\nzero 0 512 p=3\n", "line 2: unexpected 'p=3'"},
      {"disk 4096\nflush\nwrite 0\n", "line 3: 'write' needs 2 arguments"},
      // A second disk line used to shrink the disk under earlier ops, which then wrote past
      // the live model's buffers (issue 13, finding 1).
      {"disk 9\nread 0 7\ndisk 1\n", "line 1: disk size 9 is not a positive multiple of 512"},
      {"disk 4096\nread 0 7\ndisk 512\n", "line 3: a second 'disk' line"},
      {"disk 0\n", "line 1: disk size 0"},
      {"disk 4096 7\n", "line 1: unexpected '7'"},
      {"disk 4096\nflush now\n", "line 2: unexpected 'now'"},
      {"disk 4096\nwrite 0 512 p=4294967296\n", "line 2: pattern 4294967296 is more than 32"},
  };
  for (const Case& c : cases) {
    auto w = Workload::Parse(c.text);
    ASSERT_FALSE(w.ok()) << c.text;
    EXPECT_NE(w.status().message().find(c.message), std::string::npos) << w.status().message();
  }
}

// Whatever the reader accepts, its text form reads back as the same workload: a workload file
// and the trace that records it can never disagree.
RC_GTEST_PROP(WorkloadTest, AcceptedTextRoundTrips, ()) {
  // Mostly lines the reader accepts, so that a case gets far; now and then one it must refuse
  // or one that changes what earlier lines meant (a second disk line).
  const auto line = rc::gen::weightedElement<std::string>({{8, "write 0 512 p=1"},
                                                           {8, "read 4000 96"},
                                                           {8, "zero 512 512 unmap"},
                                                           {8, "discard 0 4096"},
                                                           {4, "flush"},
                                                           {2, "reopen"},
                                                           {2, "snapshot"},
                                                           {2, "# comment"},
                                                           {2, ""},
                                                           {3, "disk 512"},
                                                           {3, "disk 4096"},
                                                           {1, "disk 9"},
                                                           {1, "disk 0"},
                                                           {1, "disk 4096 1"},
                                                           {1, "write 0x200 7 p=4294967295"},
                                                           {1, "write 0 512 p=4294967296"},
                                                           {1, "write 0 512 p=1 p=2"},
                                                           {1, "flush 1"},
                                                           {1, "snapshot x"},
                                                           {1, "write 0 512 junk"},
                                                           {1, "discard 0x 1"}});
  std::string text = "disk 4096\n";
  for (const std::string& l : *rc::gen::container<std::vector<std::string>>(line)) text += l + "\n";
  auto parsed = Workload::Parse(text);
  if (!parsed.ok()) return;
  auto again = Workload::Parse(parsed->ToText());
  RC_ASSERT(again.ok());
  RC_ASSERT(*again == *parsed);
}

TEST(WorkloadTest, PatternIsPositionDependent) {
  std::vector<uint8_t> a(4096), b(4096);
  FillPattern(7, 0, a);
  FillPattern(7, 4096, b);
  EXPECT_NE(a, b);
  for (uint64_t i = 0; i < 4096; ++i) ASSERT_EQ(a[i], PatternByte(7, i));
  // Unaligned starts produce the same bytes as aligned ones.
  std::vector<uint8_t> c(100);
  FillPattern(7, 13, c);
  EXPECT_TRUE(std::equal(c.begin(), c.end(), a.begin() + 13));
}

RC_GTEST_PROP(WorkloadTest, PatternMismatchFindsTheFirstChangedByte, ()) {
  const auto pattern = *rc::gen::inRange<uint32_t>(0, 1000);
  const auto offset = *rc::gen::inRange<uint64_t>(0, 1 << 20);
  const auto length = *rc::gen::inRange<size_t>(0, 200);
  std::vector<uint8_t> bytes(length);
  FillPattern(pattern, offset, bytes);
  for (size_t i = 0; i < length; ++i) RC_ASSERT(bytes[i] == PatternByte(pattern, offset + i));
  RC_ASSERT(PatternMismatch(pattern, offset, bytes) == length);
  if (length == 0) return;
  const auto at = *rc::gen::inRange<size_t>(0, length);
  bytes[at] ^= *rc::gen::inRange<uint8_t>(1, 255);
  RC_ASSERT(PatternMismatch(pattern, offset, bytes) == at);
}

TEST(WorkloadTest, ResizeChangesWhereLaterOpsMayReach) {
  auto w = Workload::Parse("disk 4096\nresize 8192\nwrite 0x1800 2048 p=1\n");
  ASSERT_TRUE(w.ok()) << w.status().ToString();
  EXPECT_EQ(w->Sizes(), std::vector<uint64_t>({4096, 8192, 8192}));
  EXPECT_EQ(w->ToText(), "disk 4096\nresize 8192\nwrite 0x1800 2048 p=1\n");
  auto outside = Workload::Parse("disk 8192\nresize 4096\nwrite 0x1800 2048 p=1\n");
  ASSERT_FALSE(outside.ok());
  EXPECT_NE(outside.status().message().find("line 3"), std::string::npos)
      << outside.status().message();
  auto odd = Workload::Parse("disk 4096\nresize 1000\n");
  ASSERT_FALSE(odd.ok());
  EXPECT_NE(odd.status().message().find("multiple of 512"), std::string::npos);
  Workload stale = *w;
  stale.ops.erase(stale.ops.begin());  // as minimize might: the write is now outside the disk
  EXPECT_FALSE(stale.Validate().ok());
  EXPECT_EQ(w->MinSize(), 4096u);
  auto snapshots = Workload::Parse("disk 4096\nsnapshot\ndelete-snapshot\n");
  ASSERT_TRUE(snapshots.ok()) << snapshots.status().ToString();
  EXPECT_EQ(snapshots->ops[1].kind, WorkloadOpKind::kDeleteSnapshot);
  EXPECT_EQ(snapshots->ToText(), "disk 4096\nsnapshot\ndelete-snapshot\n");
  EXPECT_FALSE(Workload::Parse("disk 4096\ndelete-snapshot 1\n").ok());
}

// The built-in workloads resize the disk, and every op stays inside the disk it meets.
TEST(WorkloadTest, RandomWorkloadsResizeAndStayInsideTheDisk) {
  uint64_t resizes = 0, grown_past = 0, shrunk_below_half = 0;
  for (uint64_t seed = 1; seed <= 20; ++seed) {
    const Workload w = RandomWorkload(seed, kDefaultWorkloadOps, kDefaultDiskSize, 65536);
    ASSERT_TRUE(w.Validate().ok()) << "seed " << seed << ": " << w.Validate().ToString();
    for (const WorkloadOp& op : w.ops) {
      if (op.kind != WorkloadOpKind::kResize) continue;
      ++resizes;
      grown_past += op.new_size > kDefaultDiskSize;
      shrunk_below_half += op.new_size <= kDefaultDiskSize / 2;
    }
  }
  // Past the disk's size the L1 table grows; at or below half an L1 entry is cleared.
  EXPECT_GT(resizes, 40u);
  EXPECT_GT(grown_past, 0u);
  EXPECT_GT(shrunk_below_half, 0u);
}

}  // namespace
}  // namespace crashsim
