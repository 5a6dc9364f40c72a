// Content keys and canonical fates against their definitions: the key of a materialised medium,
// and the bytes a state's raw fates leave.
#include "simdisk/image_key.h"

#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>

#include <map>

#include "simdisk/crash_enumerator.h"
#include "simdisk/materialise.h"
#include "simdisk/test_util.h"

namespace crashsim::simdisk {
namespace {

using testing::EnumerateStates;
using testing::GenModel;
using testing::GenWorkload;
using testing::ReadAll;
using testing::RunWorkload;

constexpr uint64_t kDevice = 16384;

SimDiskOptions GenDiskOptions() {
  SimDiskOptions options;
  options.atomic_unit = *rc::gen::element<uint64_t>(512, 4096);
  options.cache_mode =
      *rc::gen::element(CacheMode::kWriteback, CacheMode::kWritethrough, CacheMode::kUnsafe);
  return options;
}

// The key of every state equals the key of its bytes, and equal keys mean equal bytes.
RC_GTEST_PROP(ImageKeyIndex, KeyOfAStateIsTheKeyOfItsBytes, ()) {
  const auto ops = *GenWorkload(kDevice, 24, /*with_resize=*/*rc::gen::arbitrary<bool>());
  auto disk = RunWorkload(ops, GenDiskOptions(), kDevice);
  auto recording = disk->SnapshotRecording();
  ImageKeyIndex index(recording);
  std::map<uint64_t, ImageKey> key_of_digest;
  for (uint64_t point = 0; point <= recording->op_count(); ++point) {
    RC_ASSERT(index.KeyAt(point) == KeyOfMedium(*recording->MediumAt(point)));
  }
  for (const CrashState& state : EnumerateStates(
           recording, GenModel(), *rc::gen::arbitrary<uint64_t>(), /*k=*/2, /*dedupe=*/false)) {
    const auto medium = MaterialiseByReplay(*recording, state);
    const ImageKey key = index.KeyOf(state);
    RC_ASSERT(key == KeyOfMedium(*medium));
    auto [it, inserted] = key_of_digest.emplace(medium->Digest(), key);
    RC_ASSERT(it->second == key);
  }
  std::map<std::tuple<uint64_t, uint64_t, uint64_t>, uint64_t> digest_of_key;
  for (const auto& [digest, key] : key_of_digest) {
    auto [it, inserted] = digest_of_key.emplace(std::make_tuple(key.lo, key.hi, key.size), digest);
    RC_ASSERT(inserted);  // two different contents never share a key
  }
}

// Canonical fates leave exactly the bytes of the fates they stand for, and canonicalising twice
// changes nothing.
RC_GTEST_PROP(ImageKeyIndex, CanonicalFatesMaterialiseTheSameBytes, ()) {
  const auto ops = *GenWorkload(kDevice, 24, /*with_resize=*/*rc::gen::arbitrary<bool>());
  auto disk = RunWorkload(ops, GenDiskOptions(), kDevice);
  auto recording = disk->SnapshotRecording();
  ImageKeyIndex index(recording);
  for (const CrashState& state : EnumerateStates(
           recording, GenModel(), *rc::gen::arbitrary<uint64_t>(), /*k=*/2, /*dedupe=*/false)) {
    const CrashState canonical = index.Canonicalise(state);
    RC_ASSERT(ValidateCrashState(*recording, canonical).ok());
    RC_ASSERT(canonical.fates.size() <= state.fates.size());
    const auto raw = MaterialiseByReplay(*recording, state);
    const auto canon = MaterialiseByReplay(*recording, canonical);
    RC_ASSERT(raw->size() == canon->size());
    RC_ASSERT(ReadAll(*raw) == ReadAll(*canon));
    RC_ASSERT(index.Canonicalise(canonical) == canonical);
  }
}

// The case the issue names: a 64 KiB metadata write-back of which one 512-byte unit changed has
// two outcomes, whatever the tear.
TEST(ImageKeyIndex, AWriteBackThatChangedOneUnitHasTwoOutcomes) {
  SimDiskOptions options;
  SimDisk disk(options);
  std::vector<uint8_t> table(65536, 7);
  ASSERT_TRUE(disk.Write(65536, table, {.tag = IoTag::kL2Table}).ok());
  ASSERT_TRUE(disk.Flush().ok());
  table[5000] = 8;  // one entry in unit 9 changes
  ASSERT_TRUE(disk.Write(65536, table, {.tag = IoTag::kL2Table}).ok());
  auto recording = disk.SnapshotRecording();
  ImageKeyIndex index(recording);
  EXPECT_EQ(index.ChangedSectors(2).size(), 1u);
  const uint64_t point = 3;
  const ImageKey whole = index.KeyAt(point);
  const ImageKey dropped = index.KeyOf({CrashKind::kPowerLoss, point, {{2, {}, {}}}, 0});
  EXPECT_NE(whole, dropped);
  for (uint64_t bits : {uint64_t{0x1}, uint64_t{0x200}, uint64_t{0xfffffffffffffdff}}) {
    const CrashState torn{CrashKind::kPowerLoss, point, {{2, UnitMask::FromWord(bits), {}}}, 0};
    const ImageKey key = index.KeyOf(torn);
    EXPECT_EQ(key, (bits & 0x200) ? whole : dropped);
    const CrashState canonical = index.Canonicalise(torn);
    EXPECT_EQ(canonical.fates.empty(), (bits & 0x200) != 0) << canonical.ToText();
  }
}

// Garbage changes a sector even where its write changed nothing in the run: a 512-byte table
// written back unchanged, then torn with garbage, leaves other bytes, so another key.
// A 512-byte table written and flushed (ops 0, 1), then written back unchanged `rewrites` times.
std::shared_ptr<const Recording> TableRewrittenUnchanged(int rewrites) {
  SimDiskOptions options;
  options.initial_size = 16384;
  SimDisk disk(options);
  const std::vector<uint8_t> table(512, 7);
  INVARIANT(disk.Write(0, table, {.tag = IoTag::kL2Table}).ok() && disk.Flush().ok());
  for (int i = 0; i < rewrites; ++i) INVARIANT(disk.Write(0, table, {.tag = IoTag::kL2Table}).ok());
  return disk.SnapshotRecording();
}

TEST(ImageKeyIndex, GarbageOverAnUnchangedRewriteChangesTheKey) {
  auto recording = TableRewrittenUnchanged(1);
  ImageKeyIndex index(recording);
  EXPECT_TRUE(index.ChangedSectors(2).empty());
  const CrashState torn{CrashKind::kPowerLoss, 3, {{2, {}, UnitMask::FromWord(1)}}, 0x5eed};
  ASSERT_TRUE(ValidateCrashState(*recording, torn).ok());
  EXPECT_EQ(index.KeyOf(torn), KeyOfMedium(*MaterialiseByReplay(*recording, torn)));
  EXPECT_NE(index.KeyOf(torn), index.KeyAt(3));
}

// A unit written over an earlier write's garbage does not equal what lies beneath it, though
// neither write changed the sector in the run: canonicalising must keep its fate.
TEST(ImageKeyIndex, AUnitOverGarbageIsNotCanonicalisedAway) {
  auto recording = TableRewrittenUnchanged(2);
  ImageKeyIndex index(recording);
  const CrashState state{
      CrashKind::kPowerLoss, 4, {{2, {}, UnitMask::FromWord(1)}, {3, {}, {}}}, 0x5eed};
  ASSERT_TRUE(ValidateCrashState(*recording, state).ok());
  const CrashState canonical = index.Canonicalise(state);
  EXPECT_EQ(ReadAll(*MaterialiseByReplay(*recording, state)),
            ReadAll(*MaterialiseByReplay(*recording, canonical)))
      << state.ToText() << " became " << canonical.ToText();
  EXPECT_EQ(index.KeyOf(state), KeyOfMedium(*MaterialiseByReplay(*recording, state)));
}

// Sectors far out in a sparse medium (past the dense table) are indexed like near ones.
TEST(ImageKeyIndex, SectorsFarOutInASparseMediumAreIndexed) {
  SimDiskOptions options;
  options.initial_size = uint64_t{1} << 40;  // 1 TiB, sparse
  SimDisk disk(options);
  const uint64_t far = (uint64_t{1} << 40) - 65536;
  std::vector<uint8_t> table(1024, 9);
  ASSERT_TRUE(disk.Write(far, table, {.tag = IoTag::kL2Table}).ok());
  ASSERT_TRUE(disk.Flush().ok());
  table[700] = 1;
  ASSERT_TRUE(disk.Write(far, table, {.tag = IoTag::kL2Table}).ok());
  auto recording = disk.SnapshotRecording();
  ImageKeyIndex index(recording);
  EXPECT_EQ(index.ChangedSectors(2).size(), 1u);
  for (uint64_t point = 0; point <= recording->op_count(); ++point) {
    EXPECT_EQ(index.KeyAt(point), KeyOfMedium(*recording->MediumAt(point)));
  }
  const CrashState dropped{CrashKind::kPowerLoss, 3, {{2, {}, {}}}, 0};
  EXPECT_EQ(index.KeyOf(dropped), KeyOfMedium(*MaterialiseByReplay(*recording, dropped)));
  EXPECT_EQ(index.KeyOf(dropped), index.KeyAt(2));
}

}  // namespace
}  // namespace crashsim::simdisk
