#include "properties/workload.h"

#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>

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

}  // namespace
}  // namespace crashsim
