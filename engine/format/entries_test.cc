#include "engine/format/entries.h"

#include <gtest/gtest.h>

#include <random>
#include <vector>

namespace crashsim {
namespace {

TEST(GeometryTest, IndexMathAtEveryClusterSize) {
  for (uint32_t bits = 9; bits <= 21; ++bits) {
    for (bool ext : {false, true}) {
      if (ext && bits < 14) continue;
      Geometry g{bits, 4, ext};
      const uint64_t cs = uint64_t{1} << bits;
      EXPECT_EQ(g.l2_entries(), cs / (ext ? 16 : 8));
      EXPECT_EQ(g.subcluster_size(), ext ? cs / 32 : cs);
      // The last byte of the first L2 table's range, and the first byte of the next.
      uint64_t span = g.l2_entries() * cs;
      EXPECT_EQ(g.l2_coverage(), span);
      EXPECT_EQ(g.l1_index(span - 1), 0u);
      EXPECT_EQ(g.l2_index(span - 1), g.l2_entries() - 1);
      EXPECT_EQ(g.l1_index(span), 1u);
      EXPECT_EQ(g.l2_index(span), 0u);
      EXPECT_EQ(g.offset_in_cluster(span + 5), 5u);
      EXPECT_EQ(g.l1_entries_for(span), 1u);
      EXPECT_EQ(g.l1_entries_for(span + 1), 2u);
    }
  }
}

TEST(RefcountEntryTest, EveryWidthRoundTripsWithoutDisturbingNeighbours) {
  for (uint32_t order = 0; order <= 6; ++order) {
    Geometry g{9, order, false};
    std::vector<uint8_t> block(512, 0);
    const uint64_t n = g.refcount_block_entries();
    EXPECT_EQ(n, 512u * 8 / (1u << order));
    for (uint64_t i = 0; i < n; ++i) {
      SetRefcountEntry(block, i, order, (i * 2654435761u) & g.refcount_max());
    }
    for (uint64_t i = 0; i < n; ++i) {
      ASSERT_EQ(GetRefcountEntry(block, i, order), (i * 2654435761u) & g.refcount_max())
          << "order " << order << " entry " << i;
    }
  }
}

TEST(RefcountEntryTest, SubByteWidthsArePackedLsbFirst) {
  std::vector<uint8_t> block(1, 0);
  SetRefcountEntry(block, 0, 0, 1);  // 1-bit entry 0 is bit 0
  EXPECT_EQ(block[0], 0x01);
  SetRefcountEntry(block, 7, 0, 1);
  EXPECT_EQ(block[0], 0x81);
  block[0] = 0;
  SetRefcountEntry(block, 1, 2, 0xf);  // 4-bit entry 1 is the high nibble
  EXPECT_EQ(block[0], 0xf0);
}

TEST(L2EntryTest, ClassifiesEveryType) {
  EXPECT_EQ(ClassifyL2Entry(0, false), ClusterType::kUnallocated);
  EXPECT_EQ(ClassifyL2Entry(kOflagZero, false), ClusterType::kZeroPlain);
  EXPECT_EQ(ClassifyL2Entry(0x50000 | kOflagZero | kOflagCopied, false), ClusterType::kZeroAlloc);
  EXPECT_EQ(ClassifyL2Entry(0x50000 | kOflagCopied, false), ClusterType::kNormal);
  EXPECT_EQ(ClassifyL2Entry(0x4000000000050000ull, false), ClusterType::kCompressed);
  // Extended L2: bit 0 of word 0 is not a zero flag.
  EXPECT_EQ(ClassifyL2Entry(kOflagZero, true), ClusterType::kUnallocated);
}

TEST(CompressedDescriptorTest, MatchesQemuObservations) {
  // qcow2.md E7: 64 KiB clusters, 0x400000000005004f = offset 0x5004f, 0 extra sectors.
  CompressedDescriptor d = DecodeCompressed(0x400000000005004full, 16);
  EXPECT_EQ(d.host_offset, 0x5004fu);
  EXPECT_EQ(d.sectors, 1u);
  EXPECT_EQ(d.compressed_size(), 512u - 0x4f);
  EXPECT_EQ(CompressedOffsetBits(16), 54u);
  EXPECT_EQ(CompressedOffsetBits(21), 49u);
  for (uint32_t bits = 9; bits <= 21; ++bits) {
    uint64_t e = EncodeCompressed(12345, 300, bits);
    CompressedDescriptor r = DecodeCompressed(e, bits);
    EXPECT_EQ(r.host_offset, 12345u);
    EXPECT_GE(r.compressed_size(), 300u);
  }
}

TEST(TableScanTest, VisitsExactlyTheEntriesWithANonZeroByte) {
  std::mt19937_64 rng(7);
  for (size_t entry_size : {size_t{8}, size_t{16}}) {
    for (size_t entries : {size_t{0}, size_t{1}, size_t{3}, size_t{8}, size_t{37}, size_t{8192}}) {
      std::vector<uint8_t> table(entries * entry_size);
      // A few nonzero bytes anywhere, including an entry's last byte and a block's first.
      for (int k = 0; k < 12 && !table.empty(); ++k) table[rng() % table.size()] = 1;
      if (!table.empty()) table.back() = 0x80;
      std::vector<size_t> expected;
      for (size_t i = 0; i < entries; ++i) {
        bool nonzero = false;
        for (size_t b = 0; b < entry_size; ++b) nonzero |= table[i * entry_size + b] != 0;
        if (nonzero) expected.push_back(i);
      }
      std::vector<size_t> seen;
      ForEachNonZeroEntry(table, entry_size, [&](size_t i) { seen.push_back(i); });
      EXPECT_EQ(seen, expected) << "entry size " << entry_size << ", " << entries << " entries";
    }
  }
}

}  // namespace
}  // namespace crashsim
