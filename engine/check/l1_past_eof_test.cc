// An active L1 table that starts inside the file and reaches far past its end: the fuzz_repair
// finding "check -r all grows a 77 KiB image to 30 MiB where qemu-img refuses" (docs/fuzzing.md),
// rebuilt in memory. The table is 3,801,089 entries (the finding's l1_size, 29 MiB) at its usual
// place in a 2 MiB image with 4 KiB clusters. -r all rebuilds the refcount structure after the
// table, so the file covers it: the repair ends clean, in a file bounded by the table, and the
// guest reads what it read before. tests/interop/l1_past_eof.sh has the same images from
// qemu-img and what qemu-img check -r all does with them.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <vector>

#include "engine/check/check.h"
#include "engine/coding.h"
#include "engine/format/header.h"
#include "engine/image.h"
#include "engine/memory_device.h"
#include "engine/test_util.h"

namespace crashsim {
namespace {

using testing::Pattern;

constexpr uint64_t kCluster = 4096;
constexpr uint32_t kHugeL1Size = 3801089;  // 0x3a0001: 30,408,712 bytes of L1 table
constexpr uint64_t kDataBytes = 56 * 1024;

uint64_t L1Offset(const std::vector<uint8_t>& b) { return LoadBE64(&b[40]); }
uint64_t Refblock0(const std::vector<uint8_t>& b) {
  return LoadBE64(&b[LoadBE64(&b[kReftableOffsetOffset])]) & ~uint64_t{0x1ff};
}
uint16_t Refcount(const std::vector<uint8_t>& b, uint64_t cluster) {
  return LoadBE16(&b[Refblock0(b) + cluster * 2]);
}

// A v3 image of 2 MiB with 4 KiB clusters, `data` bytes of Pattern(_, 7) at guest offset 0.
std::vector<uint8_t> Base(uint64_t data) {
  MemoryDevice dev;
  CreateOptions co;
  co.size = 2 << 20;
  co.cluster_size = kCluster;
  EXPECT_TRUE(Image::Create(dev, co).ok());
  if (data) {
    auto image = Image::Open(dev, {});
    EXPECT_TRUE(image.ok()) << image.status().ToString();
    EXPECT_TRUE((*image)->Write(0, Pattern(data, 7)).ok());
    EXPECT_TRUE((*image)->Close().ok());
  }
  std::vector<uint8_t> b = dev.bytes();
  b.resize(AlignUp(b.size(), kCluster));
  return b;
}

// The finding's shape: l1_size 3,801,089 with the table where it was, in a 77 KiB file.
std::vector<uint8_t> HugeL1(std::vector<uint8_t> b) {
  StoreBE32(&b[kL1SizeOffset], kHugeL1Size);
  if (b.size() < 78848) b.resize(78848);
  return b;
}

uint64_t L1End(const std::vector<uint8_t>& b) { return L1Offset(b) + uint64_t{kHugeL1Size} * 8; }

// What the guest reads, or an empty vector if the image does not open.
std::vector<uint8_t> GuestContent(std::vector<uint8_t> bytes) {
  MemoryDevice dev(std::move(bytes));
  OpenOptions ro;
  ro.read_only = true;
  auto image = Image::Open(dev, ro);
  if (!image.ok()) return {};
  std::vector<uint8_t> got((*image)->virtual_size());
  EXPECT_TRUE((*image)->Read(0, got).ok());
  return got;
}

std::vector<uint8_t> Expected(uint64_t data) {
  std::vector<uint8_t> want(2 << 20, 0);
  std::vector<uint8_t> p = Pattern(data, 7);
  std::copy(p.begin(), p.end(), want.begin());
  return want;
}

// -r all on `bytes`: exit 0, a file that covers the table and not much more, a second check
// with nothing to report, and an image that opens and writes. Returns the repaired bytes.
std::vector<uint8_t> ExpectRepairedAndBounded(const std::vector<uint8_t>& bytes) {
  MemoryDevice dev(bytes);
  CheckReport r = Repair(dev, RepairMode::kAll);
  EXPECT_EQ(CheckExitCode(r), 0) << FormatCheckFindings(r);
  EXPECT_TRUE(r.rebuilt);
  const uint64_t end = L1End(bytes);
  EXPECT_GE(dev.bytes().size(), end);
  // The table, its 4 refcount blocks and the refcount table: 30,445,568 bytes in the finding.
  EXPECT_LE(dev.bytes().size(), AlignUp(end, kCluster) + 8 * kCluster);
  CheckReport again = Check(dev);
  EXPECT_EQ(CheckExitCode(again), 0) << FormatCheckFindings(again);
  EXPECT_EQ(again.corruptions + again.leaks + again.check_errors, 0);
  EXPECT_FALSE(LoadBE64(&dev.bytes()[kIncompatibleFeaturesOffset]) & 3) << "dirty/corrupt left";
  // A write after the repair lands after the table: nothing overlaps it.
  std::vector<uint8_t> after = dev.bytes();
  {
    MemoryDevice writable(after);
    auto image = Image::Open(writable, {});
    EXPECT_TRUE(image.ok()) << image.status().ToString();
    if (image.ok()) {
      EXPECT_TRUE((*image)->Write(1 << 20, Pattern(kCluster, 9)).ok());
      EXPECT_TRUE((*image)->Close().ok());
      EXPECT_EQ(CheckExitCode(Check(writable)), 0);
    }
  }
  return after;
}

// The finding: L1 entries 1-8 full of reserved bits (their offset is 0: the header), a header
// word that, read as an L2 entry, is a preallocated cluster at an unaligned offset (QEMU's check
// walks the header as an L2 table and stops at its overlap check trying to fix that word), and
// reserved bits in refcount table entry 0 (a rebuild). qemu-img check -r all exits 1 ("overlaps
// with qcow2_header"); ours drops the entries, rebuilds and ends clean in a 30,445,568-byte file.
TEST(L1PastEofTest, TheFindingRepairsCleanInAFileBoundedByTheTable) {
  std::vector<uint8_t> b = HugeL1(Base(0));
  ASSERT_EQ(L1Offset(b), 0x3000u) << "the finding's layout: header, refcount table and block, L1";
  for (uint64_t i = 1; i <= 8; ++i) StoreBE64(&b[L1Offset(b) + i * 8], 0x7f000000000001ffull);
  StoreBE64(&b[0xff8], 0xa01);
  const uint64_t reftable = LoadBE64(&b[kReftableOffsetOffset]);
  StoreBE64(&b[reftable], LoadBE64(&b[reftable]) | 0x1ff);
  std::vector<uint8_t> after = ExpectRepairedAndBounded(b);
  EXPECT_EQ(after.size(), 30445568u) << "the finding's size";
  EXPECT_EQ(LoadBE64(&after[0xff8]), 0xa01u) << "the header is not an L2 table to repair";
  EXPECT_EQ(LoadBE32(&after[kL1SizeOffset]), kHugeL1Size) << "the table keeps its size";
  EXPECT_EQ(GuestContent(after), Expected(0));
}

// Nothing else to repair: the rebuild is for the table alone. Before, -r all left it uncounted
// (exit 2, as qemu-img) and freed its cluster in the file as a leak, though the table is in use.
TEST(L1PastEofTest, WithNothingElseWrongTheTableIsCoveredAndCounted) {
  const std::vector<uint8_t> b = HugeL1(Base(0));
  MemoryDevice original(b);
  CheckReport r = Check(original);
  EXPECT_EQ(CheckExitCode(r), 2) << "qemu-img check's verdict: 1 error, 1 leak";
  EXPECT_EQ(r.corruptions, 1);
  EXPECT_EQ(r.leaks, 1);
  std::vector<uint8_t> after = ExpectRepairedAndBounded(b);
  EXPECT_EQ(Refcount(after, L1Offset(after) / kCluster), 1);
  EXPECT_EQ(GuestContent(after), Expected(0));
}

// Guest data in clusters before the table: the table moved to a cluster at the end of the file
// (as a grown L1 table is), its refcount 1; the old one becomes a leak.
std::vector<uint8_t> DataBeforeTheTable() {
  std::vector<uint8_t> b = Base(kDataBytes);
  const uint64_t old_l1 = L1Offset(b);
  const uint64_t new_l1 = b.size();
  b.resize(new_l1 + kCluster);
  std::copy_n(b.begin() + static_cast<std::ptrdiff_t>(old_l1), kCluster,
              b.begin() + static_cast<std::ptrdiff_t>(new_l1));
  StoreBE64(&b[40], new_l1);
  StoreBE16(&b[Refblock0(b) + new_l1 / kCluster * 2], 1);
  StoreBE32(&b[kL1SizeOffset], kHugeL1Size);
  EXPECT_NE(LoadBE64(&b[new_l1]), 0u) << "L1 entry 0 names the L2 table";
  return b;
}

// The data survives the repair. qemu-img check -r all frees the table's cluster in the file and
// discards it, so the guest loses its data.
TEST(L1PastEofTest, DataBeforeTheTableSurvives) {
  std::vector<uint8_t> after = ExpectRepairedAndBounded(DataBeforeTheTable());
  EXPECT_EQ(GuestContent(after), Expected(kDataBytes));
}

// -r leaks cannot rebuild, so the table stays uncounted (exit 2, as qemu-img), but its cluster
// in the file is not freed as a leak: qemu-img's -r leaks frees and discards it.
TEST(L1PastEofTest, RepairLeaksDoesNotFreeTheTable) {
  const std::vector<uint8_t> b = DataBeforeTheTable();
  MemoryDevice dev(b);
  CheckReport r = Repair(dev, RepairMode::kLeaks);
  EXPECT_EQ(CheckExitCode(r), 2) << FormatCheckFindings(r);
  EXPECT_EQ(r.leaks_fixed, 1) << "the old table's cluster";
  EXPECT_EQ(dev.bytes().size(), b.size());
  EXPECT_EQ(Refcount(dev.bytes(), L1Offset(b) / kCluster), 1);
  EXPECT_EQ(Refcount(dev.bytes(), L1Offset(Base(kDataBytes)) / kCluster), 0);
  std::vector<uint8_t> after = ExpectRepairedAndBounded(dev.bytes());
  EXPECT_EQ(GuestContent(after), Expected(kDataBytes));
}

}  // namespace
}  // namespace crashsim
