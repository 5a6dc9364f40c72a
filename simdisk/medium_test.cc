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

TEST(Medium, CopiesCostThePageTableNotTheChunks) {
  auto base = std::make_shared<Medium>(uint64_t{1} << 30);
  base->WriteAt(0, std::vector<uint8_t>(8 << 20, 1));  // 2048 chunks in 8 pages
  Medium copy = *base;
  EXPECT_EQ(copy.bytes_copied(), base->bytes_copied());  // nothing new was copied
  auto overlay = Medium::Overlay(base);
  overlay->WriteAt(5 << 20, std::vector<uint8_t>{2});
  EXPECT_EQ(overlay->own_chunk_count(), 1u);
  EXPECT_EQ(overlay->bytes_copied(), Medium::kChunkSize + 1);
}

TEST(Medium, ChunksNotSharedAreWhereCopiesCanDiffer) {
  auto base = std::make_shared<Medium>(1 << 20);
  base->WriteAt(0, std::vector<uint8_t>(1 << 20, 1));
  auto overlay = Medium::Overlay(base);
  overlay->WriteAt(3 * Medium::kChunkSize + 7, std::vector<uint8_t>{2});
  overlay->WriteAt(200 * Medium::kChunkSize, std::vector<uint8_t>(2 * Medium::kChunkSize, 3));
  overlay->SetSize((1 << 20) + 10);
  std::vector<uint64_t> differing;
  overlay->ForEachChunkNotSharedWith(*base, [&](uint64_t c) { differing.push_back(c); });
  EXPECT_EQ(differing, (std::vector<uint64_t>{3, 200, 201}));
}

TEST(Medium, ContentTokensNameBytes) {
  auto base = std::make_shared<Medium>(1 << 20);
  base->WriteAt(0, std::vector<uint8_t>(1 << 20, 1));
  auto a = Medium::Overlay(base);
  auto b = Medium::Overlay(base);
  EXPECT_EQ(a->ContentToken(4096, 65536), base->ContentToken(4096, 65536));  // shared chunks
  b->WriteAt(70000, std::vector<uint8_t>{9});
  EXPECT_EQ(a->ContentToken(0, 65536), b->ContentToken(0, 65536));  // the write is elsewhere
  EXPECT_NE(a->ContentToken(65536, 65536), b->ContentToken(65536, 65536));
  const ContentName before = b->ContentToken(65536, 65536);
  b->WriteAt(70000, std::vector<uint8_t>{9});        // the same bytes again: a new name is fine,
  EXPECT_NE(before, b->ContentToken(65536, 65536));  // an old name for new bytes never is
  b->SetSize(2 << 20);
  EXPECT_EQ(a->ContentToken(0, 4096), b->ContentToken(0, 4096));  // the size is not the bytes
  EXPECT_FALSE(a->NameContent((1 << 20) - 10, 20).has_value());   // past the end: no name
}

}  // namespace
}  // namespace crashsim::simdisk
