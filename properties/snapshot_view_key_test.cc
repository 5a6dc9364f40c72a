#include "properties/snapshot_view_key.h"

#include <gtest/gtest.h>

#include "engine/coding.h"
#include "engine/format/entries.h"
#include "engine/image.h"
#include "simdisk/medium.h"

namespace crashsim {
namespace {

std::vector<uint8_t> Bytes(size_t n, uint8_t v) { return std::vector<uint8_t>(n, v); }

// An image with one snapshot over two written clusters, then a write the snapshot does not see.
simdisk::Medium ImageWithSnapshot() {
  simdisk::Medium m;
  CreateOptions o;
  o.size = 1 << 20;
  EXPECT_TRUE(Image::Create(m, o).ok());
  auto image = Image::Open(m, {});
  EXPECT_TRUE(image.ok());
  EXPECT_TRUE((*image)->Write(0, Bytes(2 * 65536, 1)).ok());
  EXPECT_TRUE((*image)->CreateSnapshot("1", "snap2").ok());
  EXPECT_TRUE((*image)->Write(4 * 65536, Bytes(4096, 2)).ok());
  EXPECT_TRUE((*image)->Close().ok());
  return m;
}

struct View {
  QcowHeader header;
  SnapshotEntry entry;
};

View ViewOf(simdisk::Medium& m) {
  OpenOptions ro;
  ro.read_only = true;
  auto image = Image::Open(m, ro);
  EXPECT_TRUE(image.ok());
  auto table = (*image)->Snapshots();
  EXPECT_TRUE(table.ok() && table->entries.size() == 1);
  return {(*image)->header(), table->entries.front()};
}

// The key names exactly what the view reads: a copy sharing the bytes has the same key, a write
// into the snapshot's data changes it, a write elsewhere (or to the header's dirty bit) does not.
TEST(SnapshotViewKeysTest, NamesWhatTheViewReads) {
  simdisk::Medium m = ImageWithSnapshot();
  View v = ViewOf(m);
  SnapshotViewKeys keys;
  auto key = keys.KeyOf(m, v.header, v.entry, 1);
  ASSERT_TRUE(key);
  simdisk::Medium copy = m;
  EXPECT_EQ(keys.KeyOf(copy, v.header, v.entry, 1), key);
  EXPECT_NE(keys.KeyOf(m, v.header, v.entry, 3), key) << "another op's snapshot";
  // The data cluster the snapshot maps for guest cluster 0.
  OpenOptions view_options;
  view_options.read_only = true;
  view_options.load_snapshot = "snap2";
  auto view = Image::Open(m, view_options);
  ASSERT_TRUE(view.ok());
  std::vector<uint64_t> mapped;
  ASSERT_TRUE((*view)
                  ->ForEachMappedCluster([&](uint64_t guest, ClusterType) {
                    mapped.push_back(guest);
                    return Status::Ok();
                  })
                  .ok());
  EXPECT_EQ(mapped, (std::vector<uint64_t>{0, 65536}));
  simdisk::Medium unrelated = m;
  const uint64_t end = *unrelated.Size();
  unrelated.WriteAt(end, Bytes(512, 9));  // past everything the view reads
  EXPECT_EQ(keys.KeyOf(unrelated, v.header, v.entry, 1), key);
  // One byte changed in the snapshot's first data cluster changes the key; one in the refcount
  // table, which a read never looks at, does not.
  auto flip = [](simdisk::Medium& medium, uint64_t offset) {
    std::vector<uint8_t> byte(1);
    ASSERT_TRUE(medium.Read(offset, byte).ok());
    byte[0] ^= 0xff;
    medium.WriteAt(offset, byte);
  };
  std::vector<uint8_t> raw(8);
  ASSERT_TRUE(m.Read(v.entry.l1_table_offset, raw).ok());
  const uint64_t l2 = LoadBE64(raw.data()) & kL1OffsetMask;
  ASSERT_TRUE(m.Read(l2, raw).ok());
  const uint64_t data = LoadBE64(raw.data()) & kL2OffsetMask;
  ASSERT_NE(data, 0u);
  simdisk::Medium changed = m;
  flip(changed, data + 100);
  EXPECT_NE(keys.KeyOf(changed, v.header, v.entry, 1), key);
  simdisk::Medium refcounts = m;
  flip(refcounts, v.header.refcount_table_offset + 4);
  EXPECT_EQ(keys.KeyOf(refcounts, v.header, v.entry, 1), key);
  // An L2 entry's zero flag changes what the view reads (zeros), with the same data cluster:
  // the key changes. Its COPIED flag, which no read looks at, does not change it.
  auto set_entry_bit = [&](simdisk::Medium& medium, uint64_t bit) {
    std::vector<uint8_t> entry(8);
    ASSERT_TRUE(medium.Read(l2, entry).ok());
    StoreBE64(entry.data(), LoadBE64(entry.data()) ^ bit);
    medium.WriteAt(l2, entry);
  };
  simdisk::Medium zeroed = m;
  set_entry_bit(zeroed, kOflagZero);
  EXPECT_NE(keys.KeyOf(zeroed, v.header, v.entry, 1), key);
  simdisk::Medium copied = m;
  set_entry_bit(copied, kOflagCopied);
  EXPECT_EQ(keys.KeyOf(copied, v.header, v.entry, 1), key);
  keys.AddPassed(*key);
  EXPECT_TRUE(keys.Passed(*key));
}

}  // namespace
}  // namespace crashsim
