// The snapshot table parser against hand-built tables: layout, QEMU's limits, and repair mode.
#include "engine/check/snapshot_table.h"

#include <gtest/gtest.h>

#include "engine/coding.h"
#include "engine/memory_device.h"

namespace crashsim {
namespace {

constexpr uint64_t kTable = 0x10000;

// Appends one entry at `at` (8-aligned) and returns the offset after it.
uint64_t PutEntry(std::vector<uint8_t>& img, uint64_t at, uint64_t l1, uint32_t extra_size,
                  const std::string& id, const std::string& name) {
  at = AlignUp(at, 8);
  img.resize(std::max<size_t>(img.size(), at + 40 + extra_size + id.size() + name.size()));
  uint8_t* p = &img[at];
  StoreBE64(p, l1);
  StoreBE32(p + 8, 2);
  StoreBE16(p + 12, static_cast<uint16_t>(id.size()));
  StoreBE16(p + 14, static_cast<uint16_t>(name.size()));
  StoreBE32(p + 36, extra_size);
  if (extra_size >= 16) StoreBE64(p + 48, 12345);  // disk_size
  std::copy(id.begin(), id.end(), img.begin() + static_cast<std::ptrdiff_t>(at + 40 + extra_size));
  std::copy(name.begin(), name.end(),
            img.begin() + static_cast<std::ptrdiff_t>(at + 40 + extra_size + id.size()));
  return at + 40 + extra_size + id.size() + name.size();
}

TEST(SnapshotTableTest, ParsesEntriesWithPadding) {
  std::vector<uint8_t> img(kTable, 0);
  uint64_t end = PutEntry(img, kTable, 0x50000, 24, "1", "snap1");
  EXPECT_EQ(end - kTable, 70u);  // qcow2.md §8: 40 + 24 + 1 + 5
  end = PutEntry(img, end, 0x60000, 24, "2", "two");
  MemoryDevice dev(img);
  auto t = ReadSnapshotTable(dev, img.size(), kTable, 2, {3, 65536, 999, false});
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  ASSERT_EQ(t->entries.size(), 2u);
  EXPECT_EQ(t->entries[0].name, "snap1");
  EXPECT_EQ(t->entries[1].entry_offset, kTable + 72);
  EXPECT_EQ(t->entries[1].l1_table_offset, 0x60000u);
  EXPECT_EQ(t->entries[1].disk_size, 12345u);
  EXPECT_EQ(t->table_size, end - kTable);
}

TEST(SnapshotTableTest, EnforcesQemuLimits) {
  std::vector<uint8_t> img(kTable, 0);
  PutEntry(img, kTable, 0x50000, 2000, "1", "big");
  MemoryDevice dev(img);
  auto t = ReadSnapshotTable(dev, img.size(), kTable, 1, {3, 65536, 0, false});
  ASSERT_FALSE(t.ok());
  EXPECT_NE(t.status().message().find("Too much extra metadata in snapshot table entry 0"),
            std::string::npos);
  EXPECT_NE(t.status().message().find("at 0x10000"), std::string::npos);
  auto repaired = ReadSnapshotTable(dev, img.size(), kTable, 1, {3, 65536, 0, true});
  ASSERT_TRUE(repaired.ok());
  EXPECT_EQ(repaired->extra_data_truncated, std::vector<uint32_t>{0});
  EXPECT_EQ(repaired->entries[0].extra_data_size, kMaxSnapshotExtraData);
  EXPECT_EQ(repaired->entries[0].name, "big");

  EXPECT_FALSE(ReadSnapshotTable(dev, img.size(), kTable, 65537, {}).ok());
  EXPECT_FALSE(ReadSnapshotTable(dev, img.size(), kTable + 8, 1, {}).ok());  // unaligned
}

TEST(SnapshotTableTest, GarbageIsBoundedAndPastEofReadsZeros) {
  // 65536 entries of maximal ids and names far past EOF: bounded by the 64 MiB table limit.
  std::vector<uint8_t> img(kTable + 40, 0);
  StoreBE16(&img[kTable + 12], 0xffff);
  StoreBE16(&img[kTable + 14], 0xffff);
  MemoryDevice dev(img);
  auto t = ReadSnapshotTable(dev, img.size(), kTable, 3, {3, 65536, 0, false});
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t->entries[0].id.size(), 0xffffu);
  EXPECT_EQ(t->entries[1].name.size(), 0u);  // zeros past EOF
  SnapshotEntry bad = t->entries[0];
  bad.l1_table_offset = 0x1200;
  EXPECT_FALSE(ValidateSnapshotL1(bad, 0, 65536, img.size()).ok());
  bad.l1_size = 2;
  bad.l1_table_offset = 0x100000;
  EXPECT_FALSE(ValidateSnapshotL1(bad, 0, 65536, img.size()).ok());  // past EOF
}

}  // namespace
}  // namespace crashsim
