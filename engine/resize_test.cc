// Image::Resize (engine/resize.cc): content survives and the new area reads as zeros across
// grow, shrink and regrow, in every geometry; the image checks clean; the device sees protocol
// R5's order; bad sizes are refused without touching the image.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <random>

#include "engine/check/check.h"
#include "engine/coding.h"
#include "engine/format/header.h"
#include "engine/image.h"
#include "engine/test_util.h"

namespace crashsim {
namespace {

using testing::Pattern;
using testing::RecordingDevice;

struct Config {
  uint32_t version;
  uint64_t cluster_size;
  bool lazy;
  bool extended_l2;
};

std::string Name(const ::testing::TestParamInfo<Config>& info) {
  const Config& c = info.param;
  return "v" + std::to_string(c.version) + "_cs" + std::to_string(c.cluster_size) +
         (c.lazy ? "_lazy" : "") + (c.extended_l2 ? "_ext" : "");
}

class ResizeTest : public ::testing::TestWithParam<Config> {
 protected:
  CreateOptions Options(uint64_t size) const {
    const Config& c = GetParam();
    return testing::MatrixOptions(size, c.version, c.cluster_size, 16, c.lazy, c.extended_l2);
  }
  // The disk size one L1 cluster covers: growing past it moves the L1 table.
  uint64_t OneL1Cluster() const {
    const Config& c = GetParam();
    const uint64_t l2_entries = c.cluster_size / (c.extended_l2 ? 16 : 8);
    return (c.cluster_size / 8) * l2_entries * c.cluster_size;
  }
};

// Checks a copy of the image; a dirty one (lazy refcounts, not closed) is repaired first, as
// the next open would.
void ExpectChecksClean(MemoryDevice& dev, const std::string& when) {
  MemoryDevice copy(dev.bytes());
  if (LoadBE64(copy.bytes().data() + kIncompatibleFeaturesOffset) & kIncompatDirty) {
    CheckReport repaired = Repair(copy, RepairMode::kAll);
    ASSERT_TRUE(repaired.status.ok()) << when << ": " << repaired.status.ToString();
  }
  CheckReport r = Check(copy);
  ASSERT_TRUE(r.status.ok()) << when << ": " << r.status.ToString();
  EXPECT_EQ(r.corruptions, 0) << when;
  EXPECT_EQ(r.leaks, 0) << when;
}

void ExpectReads(Image& image, const std::vector<uint8_t>& model, const std::string& when) {
  ASSERT_EQ(image.virtual_size(), model.size()) << when;
  std::vector<uint8_t> got(model.size());
  ASSERT_TRUE(image.Read(0, got).ok()) << when;
  auto diff = std::mismatch(got.begin(), got.end(), model.begin());
  EXPECT_TRUE(diff.first == got.end())
      << when << ": first difference at guest offset " << (diff.first - got.begin());
}

// Grows past one L1 cluster (a new L1 table), shrinks to an unaligned size, and grows again:
// the data below the smallest size survives, everything else reads as zeros, and each step
// leaves an image that checks clean, closed or not.
TEST_P(ResizeTest, GrowShrinkRegrowKeepsDataAndZeroesTheRest) {
  const uint64_t cs = GetParam().cluster_size;
  const uint64_t small = 3 * cs + 512;
  MemoryDevice dev;
  ASSERT_TRUE(Image::Create(dev, Options(small)).ok());
  std::vector<uint8_t> model(small, 0);
  auto image = Image::Open(dev, {});
  ASSERT_TRUE(image.ok()) << image.status().ToString();
  auto data = Pattern(small, 5);
  ASSERT_TRUE((*image)->Write(0, data).ok());
  model = data;

  const uint64_t big = std::min<uint64_t>(OneL1Cluster() + 2 * cs, 16ull << 20);
  const uint32_t l1_before = (*image)->header().l1_size;
  ASSERT_TRUE((*image)->Resize(big).ok());
  model.resize(big, 0);
  ExpectReads(**image, model, "after growing");
  if (big > OneL1Cluster()) {
    EXPECT_GT((*image)->header().l1_size, l1_before);
  }
  auto far = Pattern(cs + 100, 7);
  const uint64_t far_at = big - cs - 300;
  ASSERT_TRUE((*image)->Write(far_at, far).ok());
  std::copy(far.begin(), far.end(), model.begin() + static_cast<std::ptrdiff_t>(far_at));
  ASSERT_TRUE((*image)->Flush().ok());
  ExpectChecksClean(dev, "grown, not closed");

  const uint64_t shrunk = cs + 1024;  // unaligned: keeps a partial cluster
  ASSERT_TRUE((*image)->Resize(shrunk).ok());
  model.resize(shrunk);
  ExpectReads(**image, model, "after shrinking");
  ASSERT_TRUE((*image)->Flush().ok());
  ExpectChecksClean(dev, "shrunk, not closed");

  ASSERT_TRUE((*image)->Resize(big).ok());
  model.resize(big, 0);
  ExpectReads(**image, model, "after growing again (the old tail must not come back)");
  ASSERT_TRUE((*image)->Close().ok());
  ExpectChecksClean(dev, "closed");

  auto reopened = Image::Open(dev, {});
  ASSERT_TRUE(reopened.ok()) << reopened.status().ToString();
  ExpectReads(**reopened, model, "after reopening");
}

INSTANTIATE_TEST_SUITE_P(
    Geometries, ResizeTest,
    ::testing::Values(Config{3, 512, false, false}, Config{3, 512, true, false},
                      Config{2, 512, false, false}, Config{3, 4096, false, false},
                      Config{3, 16384, true, true}, Config{3, 65536, false, false}),
    Name);

// R5's order on the device: the new L1 table, a flush, the header's L1 fields, a flush; the size
// field last of all, then a flush.
TEST(ResizeProtocolTest, GrowthWritesTheTableBeforeTheHeaderNamesIt) {
  RecordingDevice dev;
  ASSERT_TRUE(Image::Create(dev, testing::MatrixOptions(64 * 1024, 3, 512, 16, false, false)).ok());
  auto image = Image::Open(dev, {});
  ASSERT_TRUE(image.ok());
  dev.ops.clear();
  ASSERT_TRUE((*image)->Resize(4 << 20).ok());
  using Op = RecordingDevice::Op;
  auto at = [&](DurableStep step) {
    auto it = std::find_if(dev.ops.begin(), dev.ops.end(),
                           [&](const Op& op) { return op.kind == Op::kWrite && op.step == step; });
    return it - dev.ops.begin();
  };
  const auto grow = at(DurableStep::kL1Grow), sw = at(DurableStep::kL1Switch),
             size = at(DurableStep::kSizeUpdate);
  const auto n = static_cast<std::ptrdiff_t>(dev.ops.size());
  ASSERT_LT(grow, n);
  ASSERT_LT(sw, n);
  ASSERT_LT(size, n);
  auto flush_between = [&](std::ptrdiff_t a, std::ptrdiff_t b) {
    return std::any_of(dev.ops.begin() + a, dev.ops.begin() + b,
                       [](const Op& op) { return op.kind == Op::kFlush; });
  };
  EXPECT_TRUE(grow < sw && flush_between(grow, sw));
  EXPECT_TRUE(sw < size && flush_between(sw, size));
  EXPECT_EQ(dev.ops.back().kind, Op::kFlush);
  EXPECT_EQ(dev.ops[static_cast<size_t>(sw)].offset, kL1SizeOffset);
  EXPECT_EQ(dev.ops[static_cast<size_t>(size)].offset, kSizeOffset);
  EXPECT_EQ(LoadBE64(dev.bytes().data() + kSizeOffset), 4u << 20);
}

// Shrinking clears the L1 entries past the new end durably before their L2 tables are freed.
TEST(ResizeProtocolTest, ShrinkClearsL1EntriesBeforeFreeingTheirTables) {
  RecordingDevice dev;
  ASSERT_TRUE(Image::Create(dev, testing::MatrixOptions(1 << 20, 3, 512, 16, false, false)).ok());
  auto image = Image::Open(dev, {});
  ASSERT_TRUE(image.ok());
  ASSERT_TRUE((*image)->Write(900 * 1024, Pattern(4096, 1)).ok());  // an L2 table far out
  dev.ops.clear();
  ASSERT_TRUE((*image)->Resize(64 * 1024).ok());
  using Op = RecordingDevice::Op;
  auto shrink = std::find_if(dev.ops.begin(), dev.ops.end(), [](const Op& op) {
    return op.kind == Op::kWrite && op.step == DurableStep::kL1Shrink;
  });
  ASSERT_NE(shrink, dev.ops.end());
  auto flush =
      std::find_if(shrink, dev.ops.end(), [](const Op& op) { return op.kind == Op::kFlush; });
  auto refblock = std::find_if(shrink, dev.ops.end(), [](const Op& op) {
    return op.kind == Op::kWrite && op.step == DurableStep::kRefblockWriteback;
  });
  ASSERT_NE(refblock, dev.ops.end()) << "the freed L2 table's refcount was never written";
  EXPECT_LT(flush, refblock);
  ASSERT_TRUE((*image)->Close().ok());
  ExpectChecksClean(dev, "shrunk");
}

TEST(ResizeRefusalTest, SizeNotAMultipleOf512LeavesTheImageAlone) {
  MemoryDevice dev;
  ASSERT_TRUE(Image::Create(dev, testing::MatrixOptions(1 << 20, 3, 65536, 16, false, false)).ok());
  const std::vector<uint8_t> before = dev.bytes();
  auto image = Image::Open(dev, {});
  ASSERT_TRUE(image.ok());
  Status st = (*image)->Resize((2 << 20) + 100);
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(st.message().find("multiple of 512"), std::string::npos) << st.message();
  ASSERT_TRUE((*image)->Write(0, Pattern(512, 1)).ok()) << "a refused resize poisons nothing";
  EXPECT_EQ((*image)->virtual_size(), 1u << 20);
}

TEST(ResizeRefusalTest, TooBigForTheL1LimitIsRefused) {
  MemoryDevice dev;
  ASSERT_TRUE(Image::Create(dev, testing::MatrixOptions(1 << 20, 3, 512, 16, false, false)).ok());
  auto image = Image::Open(dev, {});
  ASSERT_TRUE(image.ok());
  // 512-byte clusters: an L1 entry covers 32 KiB, so 4 Mi entries cover 128 GiB.
  Status st = (*image)->Resize(256ull << 30);
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(st.message().find("L1 table"), std::string::npos) << st.message();
}

// A backing file reaching past the old end must not show through the grown area: zero clusters
// on v3, explicit zeros on v2 (where QEMU refuses).
TEST(ResizeBackingTest, GrownAreaHidesALongerBackingFile) {
  auto backing = testing::MakeMemoryBacking(1 << 20, 9);
  ASSERT_TRUE(backing.ok()) << backing.status().ToString();
  const BackingOpener opener = backing->opener;
  for (uint32_t version : {2u, 3u}) {
    MemoryDevice top;
    CreateOptions to = testing::MatrixOptions(100 * 1024 + 512, version, 4096, 16, false, false);
    to.backing_file = "base.qcow2";
    to.backing_format = "qcow2";
    ASSERT_TRUE(Image::Create(top, to, opener).ok());
    OpenOptions oo;
    oo.open_backing = opener;
    auto image = Image::Open(top, oo);
    ASSERT_TRUE(image.ok()) << image.status().ToString();
    std::vector<uint8_t> model = Pattern(1 << 20, 9);
    std::fill(model.begin() + 100 * 1024 + 512, model.end(), 0);
    // First to a size inside the backing file that ends in a partial cluster, then past it.
    for (uint64_t size : {(1u << 20) - 3584, 2u << 20}) {
      Status st = (*image)->Resize(size);
      ASSERT_TRUE(st.ok()) << st.ToString();
      model.resize(size, 0);
      ExpectReads(**image, model,
                  fmt::format("v{} grown to {} over a longer backing file", version, size));
    }
    ASSERT_TRUE((*image)->Close().ok());
    CheckReport r = Check(top, {.open_backing = opener});
    EXPECT_TRUE(r.status.ok() && r.corruptions == 0 && r.leaks == 0) << r.status.ToString();
  }
}

}  // namespace
}  // namespace crashsim
