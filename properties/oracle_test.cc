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
  auto r = o.Check(point, disk.size(), [&](uint64_t off, std::span<uint8_t> out) {
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

// A grow then a shrink: the disk may only have the sizes the resizes durable by then allow, the
// grown area reads as zeros, and what a shrink cut off reads as zeros when a grow brings it back.
TEST(OracleTest, ResizesBoundTheSizeAndZeroTheAreasBetween) {
  Workload w;
  w.disk_size = 2048;
  w.ops = {{.kind = WorkloadOpKind::kWrite, .offset = 1024, .length = 1024, .pattern = 7},
           {.kind = WorkloadOpKind::kResize, .new_size = 4096},
           {.kind = WorkloadOpKind::kResize, .new_size = 1024},
           {.kind = WorkloadOpKind::kResize, .new_size = 4096}};
  ASSERT_TRUE(w.Validate().ok());
  std::vector<OpTiming> t = {{1, 2, kNever}, {3, 4, kNever}, {5, 6, kNever}, {7, 8, kNever}};
  AssignDurability(w, CacheMode::kWriteback, simdisk::CrashKind::kPowerLoss, t);
  EXPECT_EQ(t[0].durable, 4u) << "a resize makes what came before it durable, as a flush";
  GuestOracle o(w, t, {});
  EXPECT_EQ(o.LegalSizes(1), std::vector<uint64_t>({2048}));
  EXPECT_EQ(o.LegalSizes(4), std::vector<uint64_t>({2048, 4096})) << "the grow is in flight";
  EXPECT_EQ(o.LegalSizes(5), std::vector<uint64_t>({4096}));
  EXPECT_EQ(o.LegalSizes(9), std::vector<uint64_t>({4096}));
  EXPECT_TRUE(o.CheckSize(5, 2048)) << "the grow was durable: the old size is gone";
  EXPECT_EQ(o.OpRange(1), std::make_pair(uint64_t{2048}, uint64_t{4096}));
  EXPECT_EQ(o.OpRange(2), std::make_pair(uint64_t{1024}, uint64_t{4096}));

  std::vector<uint8_t> disk(2048, 0);
  FillPattern(7, 1024, std::span(disk).subspan(1024));
  EXPECT_FALSE(Violation(o, 3, disk)) << "the write was begun: it may be there";
  std::vector<uint8_t> grown = disk;
  grown.resize(4096, 0);
  EXPECT_FALSE(Violation(o, 5, grown));
  EXPECT_TRUE(Violation(o, 5, disk)) << "the disk is 2048 bytes where only 4096 is legal";

  // After the shrink and the regrow, the write's bytes past 1024 must not come back.
  EXPECT_TRUE(Violation(o, 9, grown));
  std::vector<uint8_t> zeros(4096, 0);
  EXPECT_FALSE(Violation(o, 9, zeros));
  // While the shrink is in flight (point 6) the cut-off range may read as before or as zeros.
  EXPECT_FALSE(Violation(o, 6, grown));
  EXPECT_FALSE(Violation(o, 6, zeros));
}

// The implied-runs path (runs of the disk the mapping says read as zeros or the initial content
// are not read) gives the full read's verdict, word for word, whether the runs are legal or not.
TEST(OracleTest, ImpliedRunsGiveTheSameVerdictAsReadingEverything) {
  Workload w;
  w.disk_size = 8192;
  w.ops = {{.kind = WorkloadOpKind::kWrite, .offset = 0, .length = 4096, .pattern = 3},
           {.kind = WorkloadOpKind::kResize, .new_size = 2048},
           {.kind = WorkloadOpKind::kResize, .new_size = 8192}};
  std::vector<OpTiming> t = {{1, 2, kNever}, {3, 4, kNever}, {5, 6, kNever}};
  AssignDurability(w, CacheMode::kWritethrough, simdisk::CrashKind::kPowerLoss, t);
  GuestOracle o(w, t, {});
  // Disks: the write cut off at the shrink's end (legal at the end), the write whole (illegal at
  // the end: the shrink cut it off), and zeros (illegal before the shrink began and after).
  std::vector<uint8_t> zeros(8192, 0), written(8192, 0);
  FillPattern(3, 0, std::span(written).first(4096));
  std::vector<uint8_t> cut = written;
  std::fill(cut.begin() + 2048, cut.end(), 0);
  for (const auto* disk : {&cut, &written, &zeros}) {
    // Runs of 1024 bytes, each implied as zeros wherever the disk has zeros there.
    ImpliedRuns runs = [&](uint64_t offset) {
      const uint64_t start = offset / 1024 * 1024;
      const bool zero = std::all_of(disk->begin() + static_cast<ptrdiff_t>(start),
                                    disk->begin() + static_cast<ptrdiff_t>(start + 1024),
                                    [](uint8_t b) { return b == 0; });
      return ImpliedRun{start + 1024, zero ? ImpliedContent::kZero : ImpliedContent::kRead};
    };
    uint64_t bytes_read = 0;
    auto read = [&](uint64_t off, std::span<uint8_t> out) {
      bytes_read += out.size();
      std::copy_n(disk->begin() + static_cast<ptrdiff_t>(off), out.size(), out.begin());
      return Status::Ok();
    };
    for (uint64_t point : {1, 3, 5, 7}) {
      auto full = o.Check(point, 8192, read);
      auto implied = o.Check(point, 8192, read, &runs);
      ASSERT_TRUE(full.ok() && implied.ok());
      EXPECT_EQ(full->has_value(), implied->has_value()) << "point " << point;
      if (full->has_value() && implied->has_value()) {
        EXPECT_EQ((*full)->message, (*implied)->message) << "point " << point;
      }
    }
    bytes_read = 0;
    ASSERT_TRUE(o.Check(7, 8192, read, &runs).ok());
    if (disk == &cut) {
      EXPECT_EQ(bytes_read, 2048u) << "only the data is read; the zeros the resizes left are not";
    }
  }
  EXPECT_TRUE(o.ImpliedLegal(7, 2048, 8192, ImpliedContent::kZero));
  EXPECT_TRUE(o.ImpliedLegal(7, 2048, 8192, ImpliedContent::kInitial)) << "no backing: zeros";
  EXPECT_FALSE(o.ImpliedLegal(7, 0, 8192, ImpliedContent::kZero)) << "the write is durable";
  EXPECT_FALSE(o.ImpliedLegal(7, 0, 512, ImpliedContent::kRead)) << "data must be read";
  // Before the shrink began (point 3), the write was durable: its range may not read as zeros.
  EXPECT_FALSE(o.ImpliedLegal(3, 0, 4096, ImpliedContent::kZero));
}

// A revert: once durable the disk reads as it did when the snapshot was taken; while in flight,
// as before or as then; on an image that cannot hold snapshots the op changes nothing.
TEST(OracleTest, ARevertReadsAsTheSnapshotDid) {
  Workload w;
  w.disk_size = 4096;
  w.ops = {{.kind = WorkloadOpKind::kWrite, .offset = 0, .length = 2048, .pattern = 1},
           {.kind = WorkloadOpKind::kSnapshot},
           {.kind = WorkloadOpKind::kWrite, .offset = 1024, .length = 2048, .pattern = 2},
           {.kind = WorkloadOpKind::kApplySnapshot}};
  std::vector<OpTiming> t = {{1, 2, kNever}, {3, 4, kNever}, {5, 6, kNever}, {7, 8, kNever}};
  AssignDurability(w, CacheMode::kWritethrough, simdisk::CrashKind::kPowerLoss, t);
  std::vector<uint8_t> then(4096, 0), now(4096, 0);
  FillPattern(1, 0, std::span(then).first(2048));
  now = then;
  FillPattern(2, 1024, std::span(now).subspan(1024, 2048));
  GuestOracle reverts(w, t, {}, /*snapshots=*/true);
  EXPECT_FALSE(Violation(reverts, 7, now)) << "before the revert began";
  EXPECT_TRUE(Violation(reverts, 7, then)) << "the second write was durable";
  EXPECT_FALSE(Violation(reverts, 8, now)) << "the revert in flight: either";
  EXPECT_FALSE(Violation(reverts, 8, then));
  EXPECT_FALSE(Violation(reverts, 9, then)) << "the revert durable";
  auto late = Violation(reverts, 9, now);
  ASSERT_TRUE(late);
  EXPECT_NE(late->message.find("match none of the legal sources"), std::string::npos);
  EXPECT_EQ(reverts.OpRange(3), std::make_pair(uint64_t{0}, uint64_t{3072}));
  GuestOracle skips(w, t, {}, /*snapshots=*/false);
  EXPECT_FALSE(Violation(skips, 9, now));
  EXPECT_TRUE(Violation(skips, 9, then)) << "no snapshot: nothing reverted";
}

// A snapshot must read, at every crash point, as the disk read when it was taken; its size too.
TEST(OracleTest, ASnapshotHoldsWhatTheDiskHeldWhenItWasTaken) {
  Workload w;
  w.disk_size = 4096;
  w.ops = {{.kind = WorkloadOpKind::kWrite, .offset = 0, .length = 2048, .pattern = 1},
           {.kind = WorkloadOpKind::kSnapshot},
           {.kind = WorkloadOpKind::kWrite, .offset = 1024, .length = 2048, .pattern = 2}};
  std::vector<OpTiming> t = {{1, 2, kNever}, {3, 4, kNever}, {5, 6, kNever}};
  AssignDurability(w, CacheMode::kWritethrough, simdisk::CrashKind::kPowerLoss, t);
  std::vector<uint8_t> then(4096, 0);
  FillPattern(1, 0, std::span(then).first(2048));
  std::vector<uint8_t> now = then;
  FillPattern(2, 1024, std::span(now).subspan(1024, 2048));
  GuestOracle oracle(w, t, {}, /*snapshots=*/true);
  auto check = [&](const std::vector<uint8_t>& disk, uint64_t size) {
    auto r = oracle.CheckSnapshot(1, size, [&](uint64_t offset, std::span<uint8_t> out) {
      std::copy_n(disk.begin() + static_cast<std::ptrdiff_t>(offset), out.size(), out.begin());
      return Status::Ok();
    });
    EXPECT_TRUE(r.ok());
    return *r;
  };
  EXPECT_FALSE(check(then, 4096));
  auto changed = check(now, 4096);  // the later write showing through the snapshot
  ASSERT_TRUE(changed);
  EXPECT_EQ(changed->guest_offset, 1024u);
  EXPECT_NE(changed->message.find("in the snapshot op #1 took"), std::string::npos)
      << changed->message;
  EXPECT_TRUE(check(then, 8192)) << "the snapshot's disk was 4096 bytes";
  EXPECT_EQ(oracle.SnapshotOpNamed("snap2"), std::optional<uint64_t>(1));
  EXPECT_EQ(oracle.SnapshotOpNamed("snap1"), std::nullopt) << "op 0 is a write";
  GuestOracle no_snapshots(w, t, {}, /*snapshots=*/false);
  EXPECT_EQ(no_snapshots.SnapshotOpNamed("snap2"), std::nullopt);
}

}  // namespace
}  // namespace crashsim
