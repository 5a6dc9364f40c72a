#include "simdisk/medium.h"

#include <gtest/gtest.h>

#include <vector>

namespace crashsim::simdisk {
namespace {

std::vector<uint8_t> Read(const Medium& m, uint64_t offset, size_t n) {
  std::vector<uint8_t> out(n);
  m.ReadAt(offset, out);
  return out;
}

TEST(Medium, SparseGigabyteCostsOnlyWrittenChunks) {
  Medium medium(uint64_t{1} << 30);
  medium.WriteAt(12345, std::vector<uint8_t>(10000, 7));
  EXPECT_EQ(medium.own_chunk_count(), 3u);
  EXPECT_EQ(Read(medium, 12344, 3), (std::vector<uint8_t>{0, 7, 7}));
  EXPECT_EQ(Read(medium, (uint64_t{1} << 30) - 2, 2), (std::vector<uint8_t>{0, 0}));
}

TEST(Medium, ReadPastEndIsAnError) {
  Medium medium(100);
  std::vector<uint8_t> buf(10);
  EXPECT_TRUE(medium.Read(90, buf).ok());
  EXPECT_EQ(medium.Read(91, buf).code(), StatusCode::kIoError);
}

TEST(Medium, CopiesShareChunksUntilWritten) {
  Medium a(8192);
  a.WriteAt(0, std::vector<uint8_t>(8192, 1));
  Medium b = a;
  b.WriteAt(10, std::vector<uint8_t>{9});
  EXPECT_EQ(Read(a, 10, 1)[0], 1);
  EXPECT_EQ(Read(b, 10, 1)[0], 9);
  EXPECT_EQ(Read(b, 4096, 1)[0], 1);
}

TEST(Medium, OverlayReadsThroughAndCopiesOnlyWhatItWrites) {
  auto base = std::make_shared<Medium>(uint64_t{1} << 30);
  base->WriteAt(0, std::vector<uint8_t>(1 << 20, 3));
  auto overlay = Medium::Overlay(base);
  overlay->WriteAt(100, std::vector<uint8_t>{5, 5});
  EXPECT_EQ(overlay->own_chunk_count(), 1u);
  EXPECT_EQ(overlay->bytes_copied(), Medium::kChunkSize + 2);  // one chunk faulted in, 2 bytes
  EXPECT_EQ(Read(*overlay, 99, 4), (std::vector<uint8_t>{3, 5, 5, 3}));
  EXPECT_EQ(Read(*base, 100, 1)[0], 3);
  EXPECT_EQ(overlay->Digest() == base->Digest(), false);
}

TEST(Medium, ShrinkThenGrowReadsZeros) {
  auto base = std::make_shared<Medium>(10000);
  base->WriteAt(0, std::vector<uint8_t>(10000, 4));
  auto overlay = Medium::Overlay(base);
  overlay->WriteAt(5000, std::vector<uint8_t>(10, 6));
  overlay->SetSize(3000);
  overlay->SetSize(10000);
  EXPECT_EQ(Read(*overlay, 2999, 2), (std::vector<uint8_t>{4, 0}));
  EXPECT_EQ(Read(*overlay, 5000, 1)[0], 0);
  EXPECT_EQ(Read(*overlay, 9999, 1)[0], 0);
}

TEST(Medium, DigestIgnoresLayoutAndZeroChunks) {
  Medium flat(20000);
  flat.WriteAt(7000, std::vector<uint8_t>(100, 8));
  auto base = std::make_shared<Medium>(20000);
  base->WriteAt(0, std::vector<uint8_t>(4096, 0));  // an explicit zero chunk
  auto layered = Medium::Overlay(base);
  layered->WriteAt(7000, std::vector<uint8_t>(100, 8));
  EXPECT_EQ(flat.Digest(), layered->Digest());
  layered->SetSize(20001);
  EXPECT_NE(flat.Digest(), layered->Digest());
}

}  // namespace
}  // namespace crashsim::simdisk
