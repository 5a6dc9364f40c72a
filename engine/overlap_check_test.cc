// The metadata overlap check: for each structure class, a write the engine is led to aim at it
// (the cluster's refcount dropped to 0 on disk, so the allocator hands it out) is refused, the
// image is marked corrupt and a read-write open is refused afterwards, as QEMU does.
#include "engine/overlap_check.h"

#include <gtest/gtest.h>

#include "engine/coding.h"
#include "engine/format/header.h"
#include "engine/image.h"
#include "engine/memory_device.h"
#include "engine/test_util.h"

namespace crashsim {
namespace {

constexpr uint64_t kCluster = 4096;

uint64_t Be64At(MemoryDevice& dev, uint64_t offset) {
  uint8_t b[8];
  EXPECT_TRUE(dev.Read(offset, b).ok());
  return LoadBE64(b);
}

// Host offsets from the header (qcow2 spec: l1_table_offset at 40, refcount_table_offset at 48,
// snapshots_offset at 64).
uint64_t L1Offset(MemoryDevice& dev) { return Be64At(dev, 40); }
uint64_t ReftableOffset(MemoryDevice& dev) { return Be64At(dev, 48); }
uint64_t SnapshotTableOffset(MemoryDevice& dev) { return Be64At(dev, 64); }
uint64_t L2Offset(MemoryDevice& dev, uint64_t l1_offset, uint64_t index) {
  return Be64At(dev, l1_offset + index * 8) & 0x00fffffffffffe00ull;
}
// The snapshot table's first entry names its L1 table in its first 8 bytes.
uint64_t SnapshotL1Offset(MemoryDevice& dev) { return Be64At(dev, SnapshotTableOffset(dev)); }

// Sets a 16-bit refcount on disk behind the engine's back.
void SetRefcountOnDisk(MemoryDevice& dev, uint64_t host_offset, uint16_t value) {
  const uint64_t per_block = kCluster / 2;
  const uint64_t block = Be64At(dev, ReftableOffset(dev) + host_offset / kCluster / per_block * 8);
  const uint64_t index = host_offset / kCluster % per_block;
  uint8_t b[2];
  StoreBE16(b, value);
  ASSERT_TRUE(dev.Write(block + index * 2, b, WriteOptions{}).ok());
}

bool CorruptFlag(MemoryDevice& dev) {
  return Be64At(dev, kIncompatibleFeaturesOffset) & kIncompatCorrupt;
}

void CreateImage(MemoryDevice& dev, uint64_t size = 1 << 20) {
  CreateOptions o;
  o.size = size;
  o.cluster_size = kCluster;
  Status st = Image::Create(dev, o);
  ASSERT_TRUE(st.ok()) << st.ToString();
}

Status WriteGuest(MemoryDevice& dev, uint64_t offset, OpenOptions oo = {}) {
  auto image = Image::Open(dev, oo);
  if (!image.ok()) return image.status();
  const auto data = testing::Pattern(kCluster, static_cast<uint8_t>(offset >> 12));
  Status st = (*image)->Write(offset, data);
  if (st.ok()) st = (*image)->Flush();
  Status closed = (*image)->Close();
  return st.ok() ? closed : st;
}

// Guest cluster 0 written, then snapshot "1" of it.
void CreateImageWithSnapshot(MemoryDevice& dev) {
  CreateImage(dev);
  ASSERT_TRUE(WriteGuest(dev, 0).ok());
  auto image = Image::Open(dev, OpenOptions{});
  ASSERT_TRUE(image.ok());
  Status snap = (*image)->CreateSnapshot("1", "one");
  ASSERT_TRUE(snap.ok()) << snap.ToString();
  ASSERT_TRUE((*image)->Close().ok());
}

// Drops the refcount of `victim` to 0 and writes a fresh guest cluster: the allocator places a
// new L2 table or data cluster on the victim, and the overlap check must refuse the write.
void ExpectRefused(MemoryDevice& dev, uint64_t victim, uint64_t guest_offset,
                   const std::string& description, OpenOptions oo = {}) {
  SCOPED_TRACE(description);
  SetRefcountOnDisk(dev, victim, 0);
  Status st = WriteGuest(dev, guest_offset, oo);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(
      st.message().find("Preventing invalid write on metadata (overlaps with " + description + ")"),
      std::string::npos)
      << st.ToString();
  EXPECT_TRUE(CorruptFlag(dev));
  auto reopened = Image::Open(dev, OpenOptions{});
  ASSERT_FALSE(reopened.ok());
  EXPECT_NE(reopened.status().message().find("Image is corrupt"), std::string::npos);
}

// The allocator never hands out cluster 0, so no engine write reaches the header unless the
// engine itself is wrong: the class is tested on the layout alone.
TEST(OverlapCheck, MainHeader) {
  MetadataLayout layout;
  layout.cluster_size = kCluster;
  auto no_reads = [](const SnapshotL1Location&) -> Result<std::vector<uint64_t>> {
    ADD_FAILURE() << "the cached checks read nothing";
    return std::vector<uint64_t>{};
  };
  for (uint64_t offset : {uint64_t{0}, uint64_t{72}, kCluster - 1}) {
    auto hit = FindMetadataOverlap(layout, kOverlapCheckCached, offset, 1, no_reads);
    ASSERT_TRUE(hit.ok());
    EXPECT_EQ(*hit, MetadataClass::kMainHeader) << offset;
  }
  auto past = FindMetadataOverlap(layout, kOverlapCheckCached, kCluster, kCluster, no_reads);
  ASSERT_TRUE(past.ok());
  EXPECT_FALSE(past->has_value());
  auto ignored = FindMetadataOverlap(
      layout, kOverlapCheckCached & ~ClassBit(MetadataClass::kMainHeader), 0, 8, no_reads);
  ASSERT_TRUE(ignored.ok());
  EXPECT_FALSE(ignored->has_value());
}

TEST(OverlapCheck, ActiveL1) {
  MemoryDevice dev;
  CreateImage(dev);
  ExpectRefused(dev, L1Offset(dev), 0, "active L1 table");
}

TEST(OverlapCheck, RefcountTable) {
  MemoryDevice dev;
  CreateImage(dev);
  ExpectRefused(dev, ReftableOffset(dev), 0, "refcount table");
}

TEST(OverlapCheck, RefcountBlock) {
  MemoryDevice dev;
  CreateImage(dev);
  ExpectRefused(dev, Be64At(dev, ReftableOffset(dev)), 0, "refcount block");
}

// A refcount block past the first refcount-table entry: the check scans the table's used
// prefix (reftable_used), which must reach it.
TEST(OverlapCheck, RefcountBlockPastTheFirstEntry) {
  MemoryDevice dev;
  CreateImage(dev, 16 << 20);
  {
    auto image = Image::Open(dev, OpenOptions{});
    ASSERT_TRUE(image.ok());
    // 9 MiB of data: more clusters than one 4 KiB refcount block (2,048) describes.
    ASSERT_TRUE((*image)->Write(0, testing::Pattern(9 << 20, 3)).ok());
    ASSERT_TRUE((*image)->Close().ok());
  }
  const uint64_t second_block = Be64At(dev, ReftableOffset(dev) + 8);
  ASSERT_NE(second_block, 0u);
  ExpectRefused(dev, second_block, 12 << 20, "refcount block");
}

TEST(OverlapCheck, ActiveL2) {
  MemoryDevice dev;
  CreateImage(dev);
  ASSERT_TRUE(WriteGuest(dev, 0).ok());
  // A data cluster of the same L2 range lands on the L2 table itself.
  ExpectRefused(dev, L2Offset(dev, L1Offset(dev), 0), kCluster, "active L2 table");
}

TEST(OverlapCheck, SnapshotTable) {
  MemoryDevice dev;
  CreateImageWithSnapshot(dev);
  ExpectRefused(dev, SnapshotTableOffset(dev), 2 * kCluster, "snapshot table");
}

TEST(OverlapCheck, InactiveL1) {
  MemoryDevice dev;
  CreateImageWithSnapshot(dev);
  ExpectRefused(dev, SnapshotL1Offset(dev), 2 * kCluster, "inactive L1 table");
}

// An L2 table only a snapshot still uses: the default template (cached) does not look at it,
// as QEMU's does not; overlap-check=all reads the snapshots' L1 tables and refuses.
TEST(OverlapCheck, InactiveL2OnlyWithAll) {
  for (bool all : {false, true}) {
    SCOPED_TRACE(all ? "overlap-check=all" : "overlap-check=cached");
    MemoryDevice dev;
    CreateImageWithSnapshot(dev);
    const uint64_t shared_l2 = L2Offset(dev, L1Offset(dev), 0);
    ASSERT_TRUE(WriteGuest(dev, 0).ok());  // copy-on-write: the active L1 gets its own L2 table
    ASSERT_NE(L2Offset(dev, L1Offset(dev), 0), shared_l2);
    ASSERT_EQ(L2Offset(dev, SnapshotL1Offset(dev), 0), shared_l2);
    OpenOptions oo;
    oo.overlap_check = all ? kOverlapCheckAll : kOverlapCheckCached;
    if (all) {
      ExpectRefused(dev, shared_l2, 2 * kCluster, "inactive L2 table", oo);
    } else {
      SetRefcountOnDisk(dev, shared_l2, 0);
      EXPECT_TRUE(WriteGuest(dev, 2 * kCluster, oo).ok());
      EXPECT_FALSE(CorruptFlag(dev));
    }
  }
}

// overlap-check=none lets the engine destroy its own refcount table, which is why QEMU's
// default is not none.
TEST(OverlapCheck, NoneLetsTheWriteThrough) {
  MemoryDevice dev;
  CreateImage(dev);
  SetRefcountOnDisk(dev, ReftableOffset(dev), 0);
  OpenOptions oo;
  oo.overlap_check = 0;
  EXPECT_TRUE(WriteGuest(dev, 0, oo).ok());
  EXPECT_FALSE(CorruptFlag(dev));
}

// Bitmap directories come from qemu-img (the engine does not create bitmaps): the interop test
// tests/interop/overlap_check.sh covers that class.

TEST(OverlapCheck, OptionsUseQemuNames) {
  MetadataClasses checks = kOverlapCheckCached;
  ASSERT_TRUE(*ApplyOverlapCheckOption("overlap-check", "constant", checks));
  EXPECT_EQ(checks, kOverlapCheckConstant);
  ASSERT_TRUE(*ApplyOverlapCheckOption("overlap-check.inactive-l2", "on", checks));
  EXPECT_TRUE(checks & ClassBit(MetadataClass::kInactiveL2));
  ASSERT_TRUE(*ApplyOverlapCheckOption("overlap-check.main-header", "off", checks));
  EXPECT_FALSE(checks & ClassBit(MetadataClass::kMainHeader));
  ASSERT_TRUE(*ApplyOverlapCheckOption("overlap-check", "none", checks));
  EXPECT_EQ(checks, 0);
  ASSERT_TRUE(*ApplyOverlapCheckOption("overlap-check", "all", checks));
  EXPECT_EQ(checks, kOverlapCheckAll);
  EXPECT_FALSE(*ApplyOverlapCheckOption("lazy-refcounts", "on", checks));
  auto bad = ApplyOverlapCheckOption("overlap-check", "most", checks);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("overlap-check=most"), std::string::npos);
  bad = ApplyOverlapCheckOption("overlap-check.l3", "on", checks);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("unknown overlap-check class"), std::string::npos);
  EXPECT_FALSE(ApplyOverlapCheckOption("overlap-check.active-l1", "yes", checks).ok());
  EXPECT_EQ(OpenOptions{}.overlap_check, kOverlapCheckCached);  // QEMU's default
}

}  // namespace
}  // namespace crashsim
