// The lazy-refcounts contract against hand-made runs: which dirty-bit write a crash point sees,
// and which guest op it served.
#include "properties/dirty_bit_contract.h"

#include <gtest/gtest.h>

#include "engine/protocol.h"
#include "simdisk/sim_disk.h"

namespace crashsim {
namespace {

// A run of `workload` on a SimDisk where guest op i writes the dirty bit if sets[i], and an
// ordinary L2 write otherwise; then the close, which clears it.
std::shared_ptr<const simdisk::Recording> RunSettingBits(const Workload& workload,
                                                         const std::vector<bool>& sets) {
  simdisk::SimDisk disk;
  const std::vector<uint8_t> bytes(8, 1);
  for (size_t i = 0; i <= workload.ops.size(); ++i) {
    disk.BeginGuestOp(i, i < workload.ops.size() ? workload.ops[i].ToText() : "close");
    const bool set = i < sets.size() && sets[i];
    const DurableStep step = set                        ? DurableStep::kDirtyBitSet
                             : i == workload.ops.size() ? DurableStep::kDirtyBitClear
                                                        : DurableStep::kL2Writeback;
    EXPECT_TRUE(
        disk.Write(set || i == workload.ops.size() ? 72 : 4096, bytes,
                   {.fua = false, .tag = IoTag::kHeader, .step = static_cast<uint8_t>(step)})
            .ok());
    disk.AckGuestOp();
  }
  return disk.SnapshotRecording();
}

Workload Ops(const char* text) {
  auto w = Workload::Parse(text);
  EXPECT_TRUE(w.ok()) << w.status().ToString();
  return *w;
}

// The point right after the only write of guest op i.
uint64_t AfterOp(const simdisk::Recording& recording, uint64_t i) {
  for (const simdisk::OpRecord& op : recording.ops()) {
    if (op.kind == simdisk::OpKind::kWrite && op.guest_op == i) return op.seq + 1;
  }
  ADD_FAILURE() << "no write of guest op " << i;
  return 0;
}

TEST(DirtyBitContract, OnlyASnapshotMaySetTheBit) {
  const Workload w = Ops("disk 65536\nwrite 0 512 p=1\nsnapshot\nwrite 512 512 p=2\n");
  auto run = RunSettingBits(w, {false, true, false});
  // Set by the snapshot: allowed, at its own point and after the later write.
  EXPECT_EQ(DirtyBitContractViolation(*run, w, AfterOp(*run, 1), std::nullopt), "");
  EXPECT_EQ(DirtyBitContractViolation(*run, w, AfterOp(*run, 2), std::nullopt), "");
  // Before any write set it: the bit cannot be explained.
  EXPECT_NE(DirtyBitContractViolation(*run, w, AfterOp(*run, 0), std::nullopt)
                .find("no write before the crash point set it"),
            std::string::npos);
}

TEST(DirtyBitContract, AWriteThatSetsTheBitIsNamed) {
  const Workload w = Ops("disk 65536\nsnapshot\nwrite 0 512 p=1\nflush\n");
  auto run = RunSettingBits(w, {true, true, false});
  const std::string broken = DirtyBitContractViolation(*run, w, AfterOp(*run, 2), std::nullopt);
  // The last setter before the point decides, though a snapshot set it earlier.
  EXPECT_NE(broken.find("guest op #1 (write 0x0 512 p=1)"), std::string::npos) << broken;
  // After an injected error at or before the write, the engine poisoned the image: allowed.
  EXPECT_EQ(DirtyBitContractViolation(*run, w, AfterOp(*run, 2), AfterOp(*run, 1) - 2), "");
  EXPECT_NE(DirtyBitContractViolation(*run, w, AfterOp(*run, 2), AfterOp(*run, 1) - 1), "");
}

TEST(DirtyBitContract, TheCloseIsNamed) {
  const Workload w = Ops("disk 65536\nwrite 0 512 p=1\n");
  auto run = RunSettingBits(w, {false, true});  // the close sets the bit
  const std::string broken = DirtyBitContractViolation(*run, w, run->op_count(), std::nullopt);
  EXPECT_NE(broken.find("the close set it"), std::string::npos) << broken;
}

}  // namespace
}  // namespace crashsim
