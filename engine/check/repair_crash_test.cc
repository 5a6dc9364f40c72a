// Crash safety of Repair: the repair's writes are recorded, and the image is rebuilt as a crash
// would leave it after each write (every write so far durable, or only those before the last
// flush plus the newest one, modelling reordering of unflushed writes). A second repair of each
// state must end clean and keep every guest byte the uninterrupted repair kept.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "engine/check/check.h"
#include "engine/check/check_test_util.h"
#include "engine/memory_device.h"
#include "engine/protocol.h"

namespace crashsim {
namespace {

using check_test::LoadFile;
using check_test::RunCommand;
using check_test::SaveFile;

// Records every write and flush on top of a MemoryDevice.
class RecordingDevice : public MemoryDevice {
 public:
  struct Op {
    bool flush = false;
    uint64_t offset = 0;
    std::vector<uint8_t> data;
  };
  using MemoryDevice::MemoryDevice;
  Status Write(uint64_t offset, std::span<const uint8_t> data, WriteOptions options) override {
    EXPECT_EQ(options.step, static_cast<uint8_t>(DurableStep::kRepair));
    EXPECT_NE(options.tag, IoTag::kUnknown);
    ops.push_back({false, offset, std::vector<uint8_t>(data.begin(), data.end())});
    return MemoryDevice::Write(offset, data, options);
  }
  Status Flush() override {
    ops.push_back({true, 0, {}});
    return Status::Ok();
  }
  std::vector<Op> ops;
};

std::vector<uint8_t> Apply(std::vector<uint8_t> bytes, const std::vector<RecordingDevice::Op>& ops,
                           const std::vector<size_t>& which) {
  for (size_t i : which) {
    const auto& op = ops[i];
    if (op.flush) continue;
    if (op.offset + op.data.size() > bytes.size()) bytes.resize(op.offset + op.data.size());
    std::copy(op.data.begin(), op.data.end(),
              bytes.begin() + static_cast<std::ptrdiff_t>(op.offset));
  }
  return bytes;
}

class RepairCrashTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!check_test::HaveQemu()) GTEST_SKIP() << "qemu-img/qemu-io not installed";
  }

  std::vector<uint8_t> GuestContent(const std::vector<uint8_t>& image, const std::string& name) {
    SaveFile(dir_.Path(name), image);
    EXPECT_EQ(RunCommand("qemu-img convert -O raw '" + dir_.Path(name) + "' '" +
                         dir_.Path(name + ".raw") + "'")
                  .exit_code,
              0);
    return LoadFile(dir_.Path(name + ".raw"));
  }

  void ExpectCrashSafe(const std::vector<uint8_t>& original) {
    RecordingDevice device(original);
    CheckReport first = Repair(device, RepairMode::kAll);
    ASSERT_EQ(CheckExitCode(first), 0) << FormatCheckFindings(first);
    ASSERT_FALSE(device.ops.empty());
    const std::vector<uint8_t> expected = GuestContent(device.bytes(), "full");
    for (size_t k = 1; k <= device.ops.size(); ++k) {
      if (device.ops[k - 1].flush) continue;
      std::vector<size_t> prefix, reordered;
      size_t last_flush = 0;
      for (size_t i = 0; i < k; ++i) {
        prefix.push_back(i);
        if (device.ops[i].flush) last_flush = i;
      }
      for (size_t i = 0; i < last_flush; ++i) reordered.push_back(i);
      reordered.push_back(k - 1);
      for (const auto& which : {prefix, reordered}) {
        MemoryDevice crashed(Apply(original, device.ops, which));
        CheckReport second = Repair(crashed, RepairMode::kAll);
        EXPECT_EQ(CheckExitCode(second), 0) << "crash after write " << k << "\n"
                                            << FormatCheckFindings(second);
        std::vector<uint8_t> got = GuestContent(crashed.bytes(), "crashed");
        EXPECT_TRUE(got == expected) << "guest content differs after a crash at write " << k;
      }
    }
  }

  check_test::TempDir dir_;
};

TEST_F(RepairCrashTest, RebuildOfKilledLazyImage) {
  std::string path = dir_.Path("lazy");
  ASSERT_EQ(
      RunCommand("qemu-img create -q -f qcow2 -o compat=1.1,lazy_refcounts=on '" + path + "' 64M")
          .exit_code,
      0);
  RunCommand("qemu-io -c 'write -P 0xaa 0 128k' -c 'write -P 0xbb 3M 64k' -c 'sigraise 9' '" +
             path + "'");
  ExpectCrashSafe(LoadFile(path));
}

TEST_F(RepairCrashTest, DropsRaisesAndCopiedFixes) {
  std::string path = dir_.Path("img");
  ASSERT_EQ(RunCommand("qemu-img create -q -f qcow2 '" + path + "' 64M").exit_code, 0);
  ASSERT_EQ(RunCommand("qemu-io -c 'write -P 0x11 0 128k' -c 'write -P 0x22 1M 64k' '" + path + "'")
                .exit_code,
            0);
  std::vector<uint8_t> bytes = LoadFile(path);
  check_test::ImageEditor ed{bytes};
  ed.Set64(ed.L2EntryOffset(1), ed.Get64(ed.L2EntryOffset(1)) + 0x200);  // unaligned: dropped
  ed.Set64(ed.L2EntryOffset(30), ed.Get64(ed.L2EntryOffset(0)));         // shared: raised
  ed.Set64(ed.L2EntryOffset(16), 0);                                     // leak
  ExpectCrashSafe(bytes);
}

}  // namespace
}  // namespace crashsim
