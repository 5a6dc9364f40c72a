#include "properties/oracle.h"

#include <gtest/gtest.h>

namespace crashsim {
namespace {

// Timeline: op0 write A [0,1024) acked at 2; op1 flush acked at 4; op2 write B [512,1536) at 6.
Workload TwoWrites() {
  auto w = Workload::Parse("disk 4096\nwrite 0 1024 p=1\nflush\nwrite 512 1024 p=2\n");
  EXPECT_TRUE(w.ok());
  return *w;
}

std::vector<OpTiming> Timings() { return {{1, 2, kNever}, {3, 4, kNever}, {5, 6, kNever}}; }

std::vector<uint8_t> Disk(
    std::initializer_list<std::pair<uint32_t, std::pair<uint64_t, uint64_t>>> writes) {
  std::vector<uint8_t> d(4096, 0);
  for (auto& [p, range] : writes) {
    FillPattern(p, range.first, std::span(d).subspan(range.first, range.second - range.first));
  }
  return d;
}

std::optional<DataViolation> Violation(const GuestOracle& o, uint64_t point,
                                       const std::vector<uint8_t>& disk) {
  auto r = o.Check(point, [&](uint64_t off, std::span<uint8_t> out) {
    std::copy_n(disk.begin() + static_cast<ptrdiff_t>(off), out.size(), out.begin());
    return Status::Ok();
  });
  EXPECT_TRUE(r.ok());
  return *r;
}

TEST(OracleTest, WritebackPromisesOnlyFlushedData) {
  Workload w = TwoWrites();
  auto t = Timings();
  AssignDurability(w, CacheMode::kWriteback, simdisk::CrashKind::kPowerLoss, t);
  EXPECT_EQ(t[0].durable, 4u);
  EXPECT_EQ(t[2].durable, kNever);
  GuestOracle o(w, t, {});
  // Before the flush completes, losing A is legal.
  EXPECT_FALSE(Violation(o, 3, Disk({})));
  // After it, losing A is not.
  auto v = Violation(o, 5, Disk({}));
  ASSERT_TRUE(v);
  EXPECT_EQ(v->guest_offset, 0u);
  // B may or may not have landed, sector by sector.
  EXPECT_FALSE(Violation(o, 7, Disk({{1, {0, 1024}}, {2, {1024, 1536}}})));
  EXPECT_FALSE(Violation(o, 7, Disk({{1, {0, 1024}}, {2, {512, 1536}}})));
}

TEST(OracleTest, WritethroughPromisesEveryAcknowledgedWrite) {
  Workload w = TwoWrites();
  auto t = Timings();
  AssignDurability(w, CacheMode::kWritethrough, simdisk::CrashKind::kPowerLoss, t);
  GuestOracle o(w, t, {});
  EXPECT_TRUE(Violation(o, 3, Disk({})));  // A acked at 2: must be there
  EXPECT_FALSE(Violation(o, 3, Disk({{1, {0, 1024}}})));
  EXPECT_TRUE(Violation(o, 7, Disk({{1, {0, 1024}}})));  // B acked at 6: must be there
}

TEST(OracleTest, AFailedOpIsNeverPromisedAndALaterFlushStillPromisesTheRest) {
  // op0 write A acked at 2; op1 write B failed (never acked); op2 flush failed; op3 write C acked
  // at 8; op4 flush acked at 10.
  auto w = Workload::Parse(
      "disk 4096\nwrite 0 1024 p=1\nwrite 1024 1024 p=2\nflush\n"
      "write 2048 1024 p=3\nflush\n");
  ASSERT_TRUE(w.ok());
  std::vector<OpTiming> t = {
      {1, 2, kNever}, {3, kNever, kNever}, {5, kNever, kNever}, {7, 8, kNever}, {9, 10, kNever}};
  auto writeback = t;
  AssignDurability(*w, CacheMode::kWriteback, simdisk::CrashKind::kPowerLoss, writeback);
  // The failed flush promised nothing, but the engine took no restart: the flush that succeeded
  // promises A and C alike.
  EXPECT_EQ(writeback[0].durable, 10u);
  EXPECT_EQ(writeback[1].durable, kNever);
  EXPECT_EQ(writeback[2].durable, kNever);
  EXPECT_EQ(writeback[3].durable, 10u);
  EXPECT_EQ(writeback[4].durable, 10u);
  auto through = t;
  AssignDurability(*w, CacheMode::kWritethrough, simdisk::CrashKind::kPowerLoss, through);
  // Write-through: A was durable at its acknowledgement, before anything failed.
  EXPECT_EQ(through[0].durable, 2u);
  EXPECT_EQ(through[1].durable, kNever);
  EXPECT_EQ(through[3].durable, 8u);
  GuestOracle o(*w, through, {});
  // B failed: its bytes may read old or new, at any crash point.
  EXPECT_FALSE(Violation(o, 11, Disk({{1, {0, 1024}}, {3, {2048, 3072}}})));
  EXPECT_FALSE(Violation(o, 11, Disk({{1, {0, 1024}}, {2, {1024, 2048}}, {3, {2048, 3072}}})));
  EXPECT_TRUE(Violation(o, 11, Disk({{1, {0, 1024}}})));  // C lost
}

TEST(OracleTest, AFailedReopenVoidsWhatWasNotYetDurable) {
  // op0 write A acked at 2; op1 reopen failed (the engine dropped); op2 write C acked at 6; op3
  // flush acked at 8.
  auto w = Workload::Parse("disk 4096\nwrite 0 1024 p=1\nreopen\nwrite 2048 1024 p=3\nflush\n");
  ASSERT_TRUE(w.ok());
  std::vector<OpTiming> t = {{1, 2, kNever}, {3, kNever, kNever}, {5, 6, kNever}, {7, 8, kNever}};
  AssignDurability(*w, CacheMode::kWriteback, simdisk::CrashKind::kPowerLoss, t);
  EXPECT_EQ(t[0].durable, kNever);
  EXPECT_EQ(t[2].durable, 8u);
}

TEST(OracleTest, AFailedReadVoidsNothing) {
  auto w = Workload::Parse("disk 4096\nwrite 0 1024 p=1\nread 0 512\nflush\n");
  ASSERT_TRUE(w.ok());
  std::vector<OpTiming> t = {{1, 2, kNever}, {3, kNever, kNever}, {5, 6, kNever}};
  AssignDurability(*w, CacheMode::kWriteback, simdisk::CrashKind::kPowerLoss, t);
  EXPECT_EQ(t[0].durable, 6u);
}

TEST(OracleTest, BytesFromAnotherOffsetAreCaught) {
  Workload w = TwoWrites();
  auto t = Timings();
  AssignDurability(w, CacheMode::kWriteback, simdisk::CrashKind::kPowerLoss, t);
  GuestOracle o(w, t, {});
  auto disk = Disk({{1, {0, 1024}}});
  // Pattern 1 shifted by one sector: right data, wrong place.
  FillPattern(1, 0, std::span(disk).subspan(512, 512));
  EXPECT_TRUE(Violation(o, 5, disk));
}

TEST(OracleTest, UnsafePromisesNothingAcrossPowerLoss) {
  Workload w = TwoWrites();
  auto t = Timings();
  AssignDurability(w, CacheMode::kUnsafe, simdisk::CrashKind::kPowerLoss, t);
  GuestOracle o(w, t, {});
  EXPECT_FALSE(Violation(o, 7, Disk({})));
  auto k = Timings();
  AssignDurability(w, CacheMode::kUnsafe, simdisk::CrashKind::kProcessKill, k);
  EXPECT_EQ(k[0].durable, 4u);
}

}  // namespace
}  // namespace crashsim
