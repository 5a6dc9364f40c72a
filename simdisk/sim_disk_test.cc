#include "simdisk/sim_disk.h"

#include <gtest/gtest.h>

#include "simdisk/materialise.h"

namespace crashsim::simdisk {
namespace {

class SimDiskTest : public ::testing::Test {
 protected:
  SimDisk& Disk(CacheMode mode = CacheMode::kWriteback) {
    SimDiskOptions options;
    options.initial_size = 1 << 16;
    options.cache_mode = mode;
    disk_ = std::make_unique<SimDisk>(options);
    return *disk_;
  }
  static std::vector<uint8_t> Bytes(size_t n, uint8_t v) { return std::vector<uint8_t>(n, v); }
  std::unique_ptr<SimDisk> disk_;
};

TEST_F(SimDiskTest, ReadsSeeTheNewestData) {
  SimDisk& disk = Disk();
  ASSERT_TRUE(disk.Write(100, Bytes(10, 1), {}).ok());
  ASSERT_TRUE(disk.Write(105, Bytes(10, 2), {.fua = true}).ok());
  std::vector<uint8_t> out(16);
  ASSERT_TRUE(disk.Read(99, out).ok());
  EXPECT_EQ(out, (std::vector<uint8_t>{0, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2}));
}

TEST_F(SimDiskTest, RecordsEveryOpWithItsGuestOperation) {
  SimDisk& disk = Disk();
  disk.BeginGuestOp(3, "write guest sector 0");
  ASSERT_TRUE(disk.Write(0, Bytes(512, 1), {.fua = false, .tag = IoTag::kL2Table}).ok());
  ASSERT_TRUE(disk.Flush().ok());
  disk.AckGuestOp();
  std::vector<uint8_t> out(4);
  ASSERT_TRUE(disk.Read(0, out).ok());
  const auto& ops = disk.recording().ops();
  ASSERT_EQ(ops.size(), 5u);
  EXPECT_EQ(OpRecordToText(ops[0]), "0 guest-begin guest=3");
  EXPECT_EQ(ops[1].kind, OpKind::kWrite);
  EXPECT_EQ(ops[1].tag, IoTag::kL2Table);
  EXPECT_EQ(ops[1].guest_op, 3u);
  EXPECT_EQ(ops[2].kind, OpKind::kFlush);
  EXPECT_EQ(OpRecordToText(ops[3]), "3 guest-ack guest=3");
  EXPECT_EQ(ops[4].guest_op, kNoGuestOp);
  ASSERT_EQ(disk.recording().guest_ops().size(), 1u);
  EXPECT_EQ(disk.recording().guest_ops()[0].label, "write guest sector 0");
  EXPECT_EQ(disk.recording().AckedBefore(3), std::vector<uint64_t>{});
  EXPECT_EQ(disk.recording().AckedBefore(4), std::vector<uint64_t>{3});
}

TEST_F(SimDiskTest, CountersAndSimulatedTimePerGuestOp) {
  SimDisk& disk = Disk();
  const CostModel& cost = disk.options().cost;
  disk.BeginGuestOp(1, "a");
  ASSERT_TRUE(disk.Write(0, Bytes(4096, 1), {}).ok());
  ASSERT_TRUE(disk.Write(4096, Bytes(4096, 1), {.fua = true}).ok());
  ASSERT_TRUE(disk.Flush().ok());
  disk.AckGuestOp();
  const IoCounters& c = disk.counters_by_guest_op().at(1);
  EXPECT_EQ(c.writes, 2u);
  EXPECT_EQ(c.bytes_written, 8192u);
  EXPECT_EQ(c.fua_writes, 1u);
  EXPECT_EQ(c.flushes, 1u);
  EXPECT_EQ(c.time_ns,
            2 * cost.write_ns + 8192 * cost.byte_ps / 1000 + cost.fua_ns + cost.flush_ns);
  EXPECT_EQ(disk.totals(), c);
}

TEST_F(SimDiskTest, UnsafeFlushesCostNothingAndAreNotHonoured) {
  SimDisk& disk = Disk(CacheMode::kUnsafe);
  ASSERT_TRUE(disk.Flush().ok());
  EXPECT_EQ(disk.totals().time_ns, 0u);
  EXPECT_FALSE(disk.recording().ops()[0].IsBarrier());
}

TEST_F(SimDiskTest, InjectedFaultsFailTheOpAndChangeNothing) {
  SimDisk& disk = Disk();
  FaultPlan plan;
  plan.Add({OpKind::kWrite, IoTag::kRefcountBlock, 1, 1, StatusCode::kNoSpace});
  plan.Add({OpKind::kFlush, std::nullopt, 0, 1, StatusCode::kIoError});
  plan.Add({OpKind::kRead, std::nullopt, 0, 0, StatusCode::kIoError});
  disk.SetFaultPlan(plan);
  const WriteOptions refblock{.fua = false, .tag = IoTag::kRefcountBlock};
  EXPECT_TRUE(disk.Write(0, Bytes(10, 1), refblock).ok());
  EXPECT_TRUE(disk.Write(0, Bytes(10, 9), {}).ok());  // other tags pass
  EXPECT_EQ(disk.Write(0, Bytes(10, 2), refblock).code(), StatusCode::kNoSpace);
  EXPECT_TRUE(disk.Write(0, Bytes(10, 3), refblock).ok());  // count = 1: spent
  EXPECT_EQ(disk.Flush().code(), StatusCode::kIoError);
  EXPECT_TRUE(disk.Flush().ok());
  std::vector<uint8_t> out(1);
  EXPECT_EQ(disk.Read(0, out).code(), StatusCode::kIoError);
  EXPECT_EQ(disk.Read(0, out).code(), StatusCode::kIoError);  // count = 0: forever
  const auto& ops = disk.recording().ops();
  EXPECT_EQ(ops[2].status, StatusCode::kNoSpace);
  EXPECT_FALSE(ops[2].ChangesMedium());
  EXPECT_FALSE(ops[4].IsBarrier());
  EXPECT_TRUE(ops[5].IsBarrier());
  EXPECT_EQ(disk.totals().failed, 4u);
  EXPECT_EQ(OpRecordToText(ops[4]), "4 flush failed=I/O error");
}

TEST(FaultText, OneShotRulesRoundTripAndTheSweepCoversEveryOpTwice) {
  for (const char* text : {"read#0:EIO", "write#17:ENOSPC", "flush#3:EIO", "resize#1:ENOSPC"}) {
    auto rule = ParseFault(text);
    ASSERT_TRUE(rule.ok()) << text << ": " << rule.status().ToString();
    EXPECT_EQ(FaultText(*rule), text);
  }
  EXPECT_EQ(ParseFault("write#17:ENOSPC")->skip, 17u);
  for (const char* bad : {"", "write", "write#:EIO", "write#1", "write#-1:EIO", "write#007:EIO",
                          "guest-begin#0:EIO", "write#1:EPERM", "write#99999999999999999999:EIO"}) {
    EXPECT_FALSE(ParseFault(bad).ok()) << bad;
  }
  SimDiskOptions options;
  options.initial_size = 4096;
  SimDisk disk(options);
  std::vector<uint8_t> b(512);
  ASSERT_TRUE(disk.Read(0, b).ok());
  ASSERT_TRUE(disk.Write(0, b, {}).ok());
  ASSERT_TRUE(disk.Write(512, b, {}).ok());
  ASSERT_TRUE(disk.Flush().ok());
  std::vector<std::string> texts;
  for (const FaultRule& rule : EveryFaultOf(disk.recording())) texts.push_back(FaultText(rule));
  EXPECT_EQ(texts, (std::vector<std::string>{"read#0:EIO", "read#0:ENOSPC", "write#0:EIO",
                                             "write#0:ENOSPC", "write#1:EIO", "write#1:ENOSPC",
                                             "flush#0:EIO", "flush#0:ENOSPC"}));
}

TEST_F(SimDiskTest, ACrashStateCanBeRunOnAgain) {
  SimDisk& disk = Disk();
  ASSERT_TRUE(disk.Write(0, Bytes(512, 1), {}).ok());
  auto recording = disk.SnapshotRecording();
  auto crashed = Materialise(*recording, {CrashKind::kPowerLoss, 1, {{0, {}, {}}}, 0});
  ASSERT_TRUE(crashed.ok());
  SimDiskOptions options;
  SimDisk repair(options, std::shared_ptr<const Medium>(std::move(*crashed)));
  std::vector<uint8_t> out(1);
  ASSERT_TRUE(repair.Read(0, out).ok());
  EXPECT_EQ(out[0], 0);
  EXPECT_EQ(*repair.Size(), uint64_t{1} << 16);
}

TEST_F(SimDiskTest, MaterialisingCostsTheDifferenceNotTheImage) {
  SimDiskOptions options;
  options.initial_size = uint64_t{1} << 30;
  SimDisk disk(options);
  ASSERT_TRUE(disk.Write(0, Bytes(1 << 20, 1), {}).ok());
  ASSERT_TRUE(disk.Flush().ok());
  ASSERT_TRUE(disk.Write(5000, Bytes(3000, 2), {}).ok());
  auto recording = disk.SnapshotRecording();
  auto kept = Materialise(*recording, {CrashKind::kPowerLoss, 3, {}, 0});
  ASSERT_TRUE(kept.ok());
  EXPECT_LE((*kept)->bytes_copied(), 3000 + 2 * Medium::kChunkSize);
  EXPECT_LE((*kept)->own_chunk_count(), 2u);
  EXPECT_EQ((*kept)->Digest(), disk.live().Digest());
}

TEST_F(SimDiskTest, InvalidCrashStatesAreRejected) {
  SimDisk& disk = Disk();
  ASSERT_TRUE(disk.Write(0, Bytes(1024, 1), {}).ok());               // op 0: 2 units
  ASSERT_TRUE(disk.Write(2048, Bytes(512, 1), {.fua = true}).ok());  // op 1: durable
  ASSERT_TRUE(disk.Flush().ok());                                    // op 2
  ASSERT_TRUE(disk.Resize(1 << 15).ok());                            // op 3
  auto recording = disk.SnapshotRecording();
  for (const char* bad :
       {"power-loss@9", "power-loss@2 drop=1", "power-loss@4 drop=0", "power-loss@2 tear=0:4",
        "power-loss@2 tear=0:3", "power-loss@4 tear=3:1", "power-loss@1 drop=1"}) {
    auto state = CrashState::Parse(bad);
    ASSERT_TRUE(state.ok()) << bad;
    EXPECT_EQ(ValidateCrashState(*recording, *state).code(), StatusCode::kInvalidArgument) << bad;
  }
  for (const char* good : {"power-loss@2 tear=0:1", "power-loss@4 drop=3", "process-kill@4"}) {
    EXPECT_TRUE(ValidateCrashState(*recording, *CrashState::Parse(good)).ok()) << good;
  }
}

}  // namespace
}  // namespace crashsim::simdisk
