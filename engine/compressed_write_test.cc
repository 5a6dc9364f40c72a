// Compressed writes (engine/compressed_write.cc): packing into shared host clusters, the
// fallback for data that does not compress, the refusal to overwrite, and the refcounts a
// check finds afterwards. tests/interop/compressed_by_crashsim.sh holds the same to qemu-img.
#include <gtest/gtest.h>

#include <random>

#include "engine/check/check.h"
#include "engine/image.h"
#include "engine/test_util.h"

namespace crashsim {
namespace {

constexpr uint64_t kCluster = 65536;

std::unique_ptr<Image> Fresh(MemoryDevice& dev, CompressionType type = CompressionType::kDeflate,
                             uint32_t refcount_bits = 16) {
  CreateOptions o;
  o.size = 16 * kCluster;
  o.compression_type = type;
  o.refcount_bits = refcount_bits;
  EXPECT_TRUE(Image::Create(dev, o).ok());
  auto image = Image::Open(dev, {});
  EXPECT_TRUE(image.ok());
  return std::move(*image);
}

void ExpectClean(MemoryDevice& dev) {
  CheckReport r = Check(dev);
  EXPECT_TRUE(r.status.ok()) << r.status.ToString();
  EXPECT_EQ(r.corruptions, 0);
  EXPECT_EQ(r.leaks, 0);
}

TEST(CompressedWriteTest, PacksClustersIntoSharedHostClustersAndReadsThemBack) {
  for (CompressionType type : {CompressionType::kDeflate, CompressionType::kZstd}) {
    MemoryDevice dev;
    auto image = Fresh(dev, type);
    const std::vector<uint8_t> data = testing::Pattern(3 * kCluster, 5);
    ASSERT_TRUE(image->WriteCompressed(0, data).ok());
    std::vector<uint64_t> hosts;
    for (uint64_t c = 0; c < 3; ++c) {
      auto m = image->Map(c * kCluster);
      ASSERT_TRUE(m.ok());
      EXPECT_EQ(m->type, ClusterType::kCompressed);
      hosts.push_back(m->host_offset);
    }
    EXPECT_EQ(hosts[0] / kCluster, hosts[1] / kCluster) << "packed into one host cluster";
    EXPECT_LT(hosts[0], hosts[1]);
    std::vector<uint8_t> got(data.size());
    ASSERT_TRUE(image->Read(0, got).ok());
    EXPECT_EQ(got, data);
    ASSERT_TRUE(image->Close().ok());
    ExpectClean(dev);  // the shared host cluster holds one reference per compressed cluster
  }
}

TEST(CompressedWriteTest, DataThatDoesNotCompressIsStoredAsItIs) {
  MemoryDevice dev;
  auto image = Fresh(dev);
  std::vector<uint8_t> noise(kCluster);
  std::mt19937_64 rng(3);
  for (uint8_t& b : noise) b = static_cast<uint8_t>(rng());
  ASSERT_TRUE(image->WriteCompressed(kCluster, noise).ok());
  auto m = image->Map(kCluster);
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(m->type, ClusterType::kNormal);
  std::vector<uint8_t> got(kCluster);
  ASSERT_TRUE(image->Read(kCluster, got).ok());
  EXPECT_EQ(got, noise);
  ASSERT_TRUE(image->Close().ok());
  ExpectClean(dev);
}

TEST(CompressedWriteTest, RefusesToOverwriteAndStaysWritable) {
  MemoryDevice dev;
  auto image = Fresh(dev);
  ASSERT_TRUE(image->Write(0, testing::Pattern(kCluster, 1)).ok());
  ASSERT_TRUE(image->WriteCompressed(kCluster, testing::Pattern(kCluster, 2)).ok());
  for (uint64_t offset : {uint64_t{0}, kCluster}) {
    Status st = image->WriteCompressed(offset, testing::Pattern(kCluster, 3));
    EXPECT_EQ(st.code(), StatusCode::kIoError) << st.ToString();
  }
  EXPECT_EQ(image->WriteCompressed(100, testing::Pattern(kCluster, 3)).code(),
            StatusCode::kInvalidArgument);
  // Still writable: a plain write over the compressed cluster copies it on write.
  ASSERT_TRUE(image->Write(kCluster + 10, testing::Pattern(100, 4)).ok());
  std::vector<uint8_t> want = testing::Pattern(kCluster, 2);
  std::copy_n(testing::Pattern(100, 4).begin(), 100, want.begin() + 10);
  std::vector<uint8_t> got(kCluster);
  ASSERT_TRUE(image->Read(kCluster, got).ok());
  EXPECT_EQ(got, want);
  ASSERT_TRUE(image->Close().ok());
  ExpectClean(dev);
}

// Freeing every compressed cluster of a host cluster frees it; the next compressed cluster then
// takes a cluster of its own instead of packing into freed (and maybe reused) space.
TEST(CompressedWriteTest, AFreedHostClusterIsNotPackedInto) {
  MemoryDevice dev;
  auto image = Fresh(dev);
  ASSERT_TRUE(image->WriteCompressed(0, testing::Pattern(2 * kCluster, 1)).ok());
  ASSERT_TRUE(image->Discard(0, 2 * kCluster).ok());
  ASSERT_TRUE(image->Flush().ok());  // the decrements applied: the host cluster is free
  ASSERT_TRUE(image->Write(4 * kCluster, testing::Pattern(kCluster, 2)).ok());  // reuses it
  ASSERT_TRUE(image->WriteCompressed(8 * kCluster, testing::Pattern(kCluster, 3)).ok());
  std::vector<uint8_t> got(kCluster);
  ASSERT_TRUE(image->Read(4 * kCluster, got).ok());
  EXPECT_EQ(got, testing::Pattern(kCluster, 2));
  ASSERT_TRUE(image->Read(8 * kCluster, got).ok());
  EXPECT_EQ(got, testing::Pattern(kCluster, 3));
  ASSERT_TRUE(image->Close().ok());
  ExpectClean(dev);
}

// A host cluster takes compressed clusters only while its refcount can count them: with 1-bit
// refcounts each gets a cluster of its own, with 2-bit ones three share one (QEMU's rule).
TEST(CompressedWriteTest, PackingStopsAtTheRefcountMaximum) {
  for (uint32_t bits : {1u, 2u}) {
    MemoryDevice dev;
    auto image = Fresh(dev, CompressionType::kDeflate, bits);
    const std::vector<uint8_t> data = testing::Pattern(4 * kCluster, 6);
    ASSERT_TRUE(image->WriteCompressed(0, data).ok()) << bits << "-bit refcounts";
    std::vector<uint64_t> host_clusters;
    for (uint64_t c = 0; c < 4; ++c) {
      auto m = image->Map(c * kCluster);
      ASSERT_TRUE(m.ok());
      EXPECT_EQ(m->type, ClusterType::kCompressed);
      host_clusters.push_back(m->host_offset / kCluster);
    }
    const std::vector<uint64_t>& h = host_clusters;
    if (bits == 1) {
      EXPECT_TRUE(h[0] != h[1] && h[1] != h[2] && h[2] != h[3]);
    } else {
      EXPECT_TRUE(h[0] == h[1] && h[1] == h[2] && h[2] != h[3]);
    }
    std::vector<uint8_t> got(data.size());
    ASSERT_TRUE(image->Read(0, got).ok());
    EXPECT_EQ(got, data);
    ASSERT_TRUE(image->Close().ok());
    ExpectClean(dev);
  }
}

}  // namespace
}  // namespace crashsim
