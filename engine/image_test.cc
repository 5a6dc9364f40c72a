#include "engine/image.h"

#include <gtest/gtest.h>

#include <random>

#include "engine/coding.h"
#include "engine/format/header.h"
#include "engine/test_util.h"

namespace crashsim {
namespace {

using testing::Pattern;
using testing::RecordingDevice;

struct Config {
  uint32_t version;
  uint64_t cluster_size;
  uint32_t refcount_bits;
  bool lazy;
  bool extended_l2;
};

std::string Name(const Config& c) {
  return "v" + std::to_string(c.version) + "_cs" + std::to_string(c.cluster_size) + "_rc" +
         std::to_string(c.refcount_bits) + (c.lazy ? "_lazy" : "") + (c.extended_l2 ? "_ext" : "");
}

CreateOptions Options(const Config& c, uint64_t size) {
  return testing::MatrixOptions(size, c.version, c.cluster_size, c.refcount_bits, c.lazy,
                                c.extended_l2);
}

class ImageConfigTest : public ::testing::TestWithParam<Config> {};

// A random workload against a byte-vector model: every read matches, through reopen.
TEST_P(ImageConfigTest, RandomWorkloadMatchesModel) {
  const Config c = GetParam();
  const uint64_t size = 8 * c.cluster_size + 3 * 512 + (c.cluster_size < 4096 ? 64 * 1024 : 0);
  MemoryDevice dev;
  ASSERT_TRUE(Image::Create(dev, Options(c, AlignUp(size, 512))).ok());
  std::vector<uint8_t> model(AlignUp(size, 512), 0);
  std::mt19937_64 rng(42);
  for (int round = 0; round < 2; ++round) {
    OpenOptions oo;
    oo.cache_mode = round == 0 ? CacheMode::kWriteback : CacheMode::kWritethrough;
    auto image = Image::Open(dev, oo);
    ASSERT_TRUE(image.ok()) << image.status().ToString();
    for (int i = 0; i < 60; ++i) {
      uint64_t off = rng() % model.size();
      uint64_t len = 1 + rng() % std::min<uint64_t>(model.size() - off, 3 * c.cluster_size);
      int kind = static_cast<int>(rng() % 10);
      if (kind < 6) {
        auto data = Pattern(len, static_cast<uint8_t>(rng()));
        ASSERT_TRUE((*image)->Write(off, data).ok());
        std::copy(data.begin(), data.end(), model.begin() + static_cast<std::ptrdiff_t>(off));
      } else if (kind < 8) {
        ASSERT_TRUE((*image)->WriteZeroes(off, len, kind == 7).ok());
        std::fill_n(model.begin() + static_cast<std::ptrdiff_t>(off), len, 0);
      } else if (kind == 8) {
        // Discard without a backing file reads back as zeros for whole clusters only.
        ASSERT_TRUE((*image)->Discard(off, len).ok());
        uint64_t s = AlignUp(off, c.cluster_size), e = AlignDown(off + len, c.cluster_size);
        if (off + len == model.size()) e = model.size();
        for (uint64_t p = s; p < e; ++p) model[p] = 0;
      } else {
        ASSERT_TRUE((*image)->Flush().ok());
      }
      std::vector<uint8_t> got(len);
      ASSERT_TRUE((*image)->Read(off, got).ok());
      ASSERT_TRUE(std::equal(got.begin(), got.end(), model.begin() + static_cast<ptrdiff_t>(off)))
          << "op " << i;
    }
    ASSERT_TRUE((*image)->Close().ok());
  }
  OpenOptions ro;
  ro.read_only = true;
  auto image = Image::Open(dev, ro);
  ASSERT_TRUE(image.ok()) << image.status().ToString();
  EXPECT_FALSE((*image)->header().dirty());
  std::vector<uint8_t> got(model.size());
  ASSERT_TRUE((*image)->Read(0, got).ok());
  EXPECT_EQ(got, model);
}

std::vector<Config> AllConfigs() {
  std::vector<Config> out;
  for (uint64_t cs : {512u, 4096u, 65536u, 2u << 20}) {
    out.push_back({2, cs, 16, false, false});
    for (uint32_t rb : {1u, 16u, 64u}) {
      for (bool lazy : {false, true}) out.push_back({3, cs, rb, lazy, false});
    }
    if (cs >= 16384) out.push_back({3, cs, 16, true, true});
  }
  return out;
}

INSTANTIATE_TEST_SUITE_P(Configs, ImageConfigTest, ::testing::ValuesIn(AllConfigs()),
                         [](const auto& param_info) { return Name(param_info.param); });

// Protocol L1: in lazy mode the dirty bit's header write and its flush come before any L2 write.
TEST(ImageProtocolTest, DirtyBitIsWrittenAndFlushedBeforeAnyL2Write) {
  RecordingDevice dev;
  CreateOptions o;
  o.size = 1 << 20;
  o.lazy_refcounts = true;
  ASSERT_TRUE(Image::Create(dev, o).ok());
  dev.ops.clear();
  OpenOptions oo;
  oo.cache_mode = CacheMode::kWritethrough;
  auto image = Image::Open(dev, oo);
  ASSERT_TRUE(image.ok());
  ASSERT_TRUE((*image)->Write(0, Pattern(4096, 1)).ok());
  ASSERT_FALSE(dev.ops.empty());
  const auto& first = dev.ops[0];
  EXPECT_EQ(first.kind, RecordingDevice::Op::kWrite);
  EXPECT_EQ(first.step, DurableStep::kDirtyBitSet);
  EXPECT_EQ(first.offset, kIncompatibleFeaturesOffset);
  EXPECT_EQ(first.length, 8u);
  EXPECT_EQ(dev.ops[1].kind, RecordingDevice::Op::kFlush);
  EXPECT_TRUE(dev.bytes()[72 + 7] & 1);
  // Lazy: no refcount block reaches the disk during the write.
  for (const auto& op : dev.ops) EXPECT_NE(op.tag, IoTag::kRefcountBlock);
  ASSERT_TRUE((*image)->Close().ok());
  EXPECT_FALSE(dev.bytes()[72 + 7] & 1);
}

// R1 and R2 in non-lazy writethrough: refcount block, flush, data, ..., flush, L2.
TEST(ImageProtocolTest, NonLazyOrdersRefcountsAndDataBeforeL2) {
  RecordingDevice dev;
  CreateOptions o;
  o.size = 1 << 20;
  ASSERT_TRUE(Image::Create(dev, o).ok());
  OpenOptions oo;
  oo.cache_mode = CacheMode::kWritethrough;
  auto image = Image::Open(dev, oo);
  ASSERT_TRUE(image.ok());
  ASSERT_TRUE((*image)->Write(0, Pattern(4096, 1)).ok());
  dev.ops.clear();
  ASSERT_TRUE((*image)->Write(65536 + 512, Pattern(512, 2)).ok());  // allocates cluster 2 of L2
  int refblock = -1, data = -1, l2 = -1;
  for (int i = 0; i < static_cast<int>(dev.ops.size()); ++i) {
    const auto& op = dev.ops[i];
    if (op.kind != RecordingDevice::Op::kWrite) continue;
    if (op.tag == IoTag::kRefcountBlock && refblock < 0) refblock = i;
    if (op.tag == IoTag::kData) data = i;
    if (op.step == DurableStep::kL2Writeback) l2 = i;
  }
  ASSERT_GE(refblock, 0);
  ASSERT_GE(data, 0);
  ASSERT_GE(l2, 0);
  EXPECT_LT(refblock, l2);
  EXPECT_LT(data, l2);
  auto flush_between = [&](int a, int b) {
    for (int i = a + 1; i < b; ++i) {
      if (dev.ops[i].kind == RecordingDevice::Op::kFlush) return true;
    }
    return false;
  };
  EXPECT_TRUE(flush_between(refblock, l2));
  EXPECT_TRUE(flush_between(data, l2));
  EXPECT_FALSE(dev.bytes()[72 + 7] & 1);
}

TEST(ImageTest, CopyOnWriteFromBackingFile) {
  auto backing = testing::MakeMemoryBacking(1 << 20, 9);
  ASSERT_TRUE(backing.ok()) << backing.status().ToString();
  const BackingOpener opener = backing->opener;
  for (uint32_t version : {2u, 3u}) {
    MemoryDevice top;
    CreateOptions to;
    to.version = version;
    to.backing_file = "base.qcow2";
    to.backing_format = "qcow2";
    ASSERT_TRUE(Image::Create(top, to, opener).ok());
    OpenOptions oo;
    oo.open_backing = opener;
    auto image = Image::Open(top, oo);
    ASSERT_TRUE(image.ok()) << image.status().ToString();
    EXPECT_EQ((*image)->virtual_size(), 1u << 20);
    auto model = Pattern(1 << 20, 9);
    auto data = Pattern(100, 3);
    ASSERT_TRUE((*image)->Write(70000, data).ok());
    std::copy(data.begin(), data.end(), model.begin() + 70000);
    ASSERT_TRUE((*image)->WriteZeroes(3 * 65536, 65536).ok());
    std::fill_n(model.begin() + 3 * 65536, 65536, 0);
    ASSERT_TRUE((*image)->WriteZeroes(5 * 65536 + 10, 20).ok());
    std::fill_n(model.begin() + 5 * 65536 + 10, 20, 0);
    std::vector<uint8_t> got(model.size());
    ASSERT_TRUE((*image)->Read(0, got).ok());
    EXPECT_EQ(got, model) << "version " << version;
    ASSERT_TRUE((*image)->Close().ok());
  }
}

TEST(ImageTest, OverlayLargerThanItsBackingFileReadsZerosPastIt) {
  auto backing = testing::MakeMemoryBacking(64 * 1024, 9, /*name=*/"");
  ASSERT_TRUE(backing.ok()) << backing.status().ToString();
  const BackingOpener opener = backing->opener;
  for (uint32_t version : {2u, 3u}) {
    MemoryDevice top;
    CreateOptions to;
    to.version = version;
    to.size = 1 << 20;
    to.backing_file = "base";
    to.backing_format = "qcow2";
    ASSERT_TRUE(Image::Create(top, to, opener).ok());
    OpenOptions oo;
    oo.open_backing = opener;
    auto image = Image::Open(top, oo);
    ASSERT_TRUE(image.ok());
    // A partial write past the backing file's end copies zeros around it.
    ASSERT_TRUE((*image)->Write(65536 + 100, Pattern(10, 1)).ok());
    // Discard on v2 is ignored (no zero flag); on v3 it leaves zero clusters.
    ASSERT_TRUE((*image)->Discard(0, 65536).ok());
    std::vector<uint8_t> got(1 << 20), want(1 << 20, 0);
    if (version == 2) {
      auto b = Pattern(64 * 1024, 9);
      std::copy(b.begin(), b.end(), want.begin());
    }
    auto p = Pattern(10, 1);
    std::copy(p.begin(), p.end(), want.begin() + 65536 + 100);
    ASSERT_TRUE((*image)->Read(0, got).ok());
    EXPECT_EQ(got, want) << "version " << version;
  }
}

TEST(ImageTest, DirtyImageReadsReadOnlyAndIsRepairedByAReadWriteOpen) {
  MemoryDevice dev;
  CreateOptions o;
  o.size = 1 << 20;
  o.lazy_refcounts = true;
  ASSERT_TRUE(Image::Create(dev, o).ok());
  {
    auto image = Image::Open(dev, {});
    ASSERT_TRUE(image.ok());
    ASSERT_TRUE((*image)->Write(0, Pattern(512, 5)).ok());
    ASSERT_TRUE((*image)->Flush().ok());
    // Destroyed without Close: a process kill.
  }
  EXPECT_TRUE(dev.bytes()[72 + 7] & 1);
  {
    OpenOptions ro;
    ro.read_only = true;
    auto image = Image::Open(dev, ro);
    ASSERT_TRUE(image.ok());
    EXPECT_TRUE((*image)->header().dirty());
    std::vector<uint8_t> got(512);
    ASSERT_TRUE((*image)->Read(0, got).ok());
    EXPECT_EQ(got, Pattern(512, 5));
    EXPECT_EQ((*image)->Write(0, got).code(), StatusCode::kReadOnly);
    EXPECT_TRUE(dev.bytes()[72 + 7] & 1);  // a read-only open never repairs
  }
  OpenOptions no_repair;
  no_repair.repair_dirty = false;
  EXPECT_FALSE(Image::Open(dev, no_repair).ok());
  auto rw = Image::Open(dev, {});
  ASSERT_TRUE(rw.ok()) << rw.status().ToString();
  EXPECT_FALSE((*rw)->header().dirty());
  EXPECT_NE((*rw)->repair_log().find("Rebuilding refcount structure"), std::string::npos)
      << (*rw)->repair_log();
  std::vector<uint8_t> got(512);
  ASSERT_TRUE((*rw)->Read(0, got).ok());
  EXPECT_EQ(got, Pattern(512, 5));
  ASSERT_TRUE((*rw)->Write(4096, Pattern(512, 6)).ok());
  ASSERT_TRUE((*rw)->Close().ok());
  EXPECT_FALSE(dev.bytes()[72 + 7] & 1);
}

// Found by fuzz/fuzz_repair (docs/fuzzing.md): an image whose active L1 table is empty, at an
// offset past the end of the file, checks clean (qemu-img check agrees, and qemu-img opens it)
// but did not open: the engine asked the device for the 0-byte table past its end.
TEST(ImageOpenTest, EmptyL1TablePastTheEndOfTheFileOpens) {
  MemoryDevice dev;
  CreateOptions co;
  co.size = 0;
  co.cluster_size = 512;
  ASSERT_TRUE(Image::Create(dev, co).ok());
  ASSERT_EQ(LoadBE32(&dev.mutable_bytes()[36]), 0u);  // l1_size: a 0-byte disk has no L1 entries
  StoreBE64(&dev.mutable_bytes()[40], uint64_t{1} << 42);  // l1_table_offset, far past the end
  for (bool read_only : {true, false}) {
    OpenOptions oo;
    oo.read_only = read_only;
    auto image = Image::Open(dev, oo);
    ASSERT_TRUE(image.ok()) << image.status().ToString();
    EXPECT_EQ((*image)->virtual_size(), 0u);
    if (!read_only) {
      EXPECT_TRUE((*image)->Close().ok());
    }
  }
}

}  // namespace
}  // namespace crashsim
