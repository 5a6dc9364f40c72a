// Properties of the crash model itself: what a power loss or a process kill can leave, checked
// against a naive reference replay on generated workloads.
#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>

#include <algorithm>
#include <set>

#include "simdisk/crash_enumerator.h"
#include "simdisk/materialise.h"
#include "simdisk/test_util.h"
#include "simdisk/write_cache.h"

namespace crashsim::simdisk {
namespace {

using testing::EnumerateStates;
using testing::GenModel;
using testing::GenWorkload;
using testing::ReadAll;
using testing::ReferenceImage;
using testing::RunWorkload;

constexpr uint64_t kDevice = 8192;

SimDiskOptions GenOptions() {
  SimDiskOptions options;
  options.atomic_unit = *rc::gen::element<uint64_t>(512, 4096);
  options.cache_mode =
      *rc::gen::element(CacheMode::kWriteback, CacheMode::kNone, CacheMode::kWritethrough,
                        CacheMode::kDirectsync, CacheMode::kUnsafe);
  return options;
}

RC_GTEST_PROP(SimDiskModel, MaterialisedStateMatchesReferenceReplay, ()) {
  const auto ops = *GenWorkload(kDevice, 24, /*with_resize=*/true);
  const CrashModel model = GenModel();
  auto disk = RunWorkload(ops, GenOptions(), kDevice);
  auto recording = disk->SnapshotRecording();
  for (const CrashState& state :
       EnumerateStates(recording, model, *rc::gen::arbitrary<uint64_t>())) {
    auto medium = Materialise(*recording, state);
    RC_ASSERT(medium.ok());
    std::vector<bool> garbage;
    const auto expected = ReferenceImage(*recording, state, &garbage);
    auto actual = ReadAll(**medium);
    RC_ASSERT(actual.size() == expected.size());
    for (size_t i = 0; i < actual.size(); ++i) {
      if (!garbage[i]) RC_ASSERT(actual[i] == expected[i]);
    }
  }
}

// Materialise builds a state from the medium that kept every pending write and recomputes the
// fated ranges only; it must leave exactly what replaying the recording from the barrier leaves,
// garbage included.
RC_GTEST_PROP(SimDiskModel, MaterialiseEqualsReplayFromTheBarrier, ()) {
  const auto ops = *GenWorkload(kDevice, 24, /*with_resize=*/true);
  const CrashModel model = GenModel();
  auto disk = RunWorkload(ops, GenOptions(), kDevice);
  auto recording = disk->SnapshotRecording();
  for (const CrashState& state :
       EnumerateStates(recording, model, *rc::gen::arbitrary<uint64_t>())) {
    auto medium = Materialise(*recording, state);
    RC_ASSERT(medium.ok());
    const auto replayed = MaterialiseByReplay(*recording, state);
    RC_ASSERT((*medium)->size() == replayed->size());
    RC_ASSERT(ReadAll(**medium) == ReadAll(*replayed));
    RC_ASSERT((*medium)->Digest() == replayed->Digest());
  }
}

// Every byte of every power-loss state holds its last durable value (flushed or FUA), or the
// value of a write to that byte issued after it: never bytes written elsewhere or never written.
RC_GTEST_PROP(SimDiskModel, PowerLossKeepsDurableDataAndInventsNothing, ()) {
  const auto ops = *GenWorkload(kDevice, 24, /*with_resize=*/false);
  CrashModel model = GenModel();
  model.content = TearContent::kOldOrNew;
  auto disk = RunWorkload(ops, GenOptions(), kDevice);
  auto recording = disk->SnapshotRecording();
  for (const CrashState& state :
       EnumerateStates(recording, model, *rc::gen::arbitrary<uint64_t>())) {
    // Durable image: everything before the barrier, then durable FUA writes; candidates are
    // the durable value plus every non-durable write issued after the last durable write there.
    const uint64_t barrier = recording->BarrierBefore(state.point);
    std::vector<uint8_t> durable = ReadAll(*recording->MediumAt(barrier));
    std::vector<std::set<uint8_t>> later(durable.size());
    for (uint64_t seq = barrier; seq < state.point; ++seq) {
      const OpRecord& op = recording->ops()[seq];
      if (!op.ChangesMedium()) continue;
      for (uint64_t i = 0; i < op.length; ++i) {
        const uint64_t byte = op.offset + i;
        if (op.IsDurableWrite()) {
          durable[byte] = (*op.data)[i];
          later[byte].clear();
        } else {
          later[byte].insert((*op.data)[i]);
        }
      }
    }
    auto medium = Materialise(*recording, state);
    RC_ASSERT(medium.ok());
    const auto actual = ReadAll(**medium);
    RC_ASSERT(actual.size() == durable.size());
    for (size_t i = 0; i < actual.size(); ++i) {
      RC_ASSERT(actual[i] == durable[i] || later[i].count(actual[i]) == 1);
    }
  }
}

RC_GTEST_PROP(SimDiskModel, ProcessKillKeepsEverythingTheDeviceAccepted, ()) {
  const auto ops = *GenWorkload(kDevice, 24, /*with_resize=*/true);
  auto disk = RunWorkload(ops, GenOptions(), kDevice);
  auto recording = disk->SnapshotRecording();
  const uint64_t point = *rc::gen::inRange<uint64_t>(0, recording->op_count() + 1);
  const CrashState state{CrashKind::kProcessKill, point, {}, 0};
  auto medium = Materialise(*recording, state);
  RC_ASSERT(medium.ok());
  RC_ASSERT(ReadAll(**medium) == ReferenceImage(*recording, state));
  auto at_end = Materialise(*recording, {CrashKind::kProcessKill, recording->op_count(), {}, 0});
  RC_ASSERT(at_end.ok());
  RC_ASSERT((*at_end)->Digest() == disk->live().Digest());
}

// A torn write changes whole atomic units: within each unit it touches, its bytes read either
// all as the write whole or all as the write dropped, all else equal.
RC_GTEST_PROP(SimDiskModel, TearsOnlyAtAtomicUnitBoundaries, ()) {
  const auto ops = *GenWorkload(kDevice, 24, /*with_resize=*/false);
  CrashModel model = GenModel();
  model.tears = *rc::gen::element(TearShape::kPrefix, TearShape::kAnySubset);
  model.content = TearContent::kOldOrNew;
  SimDiskOptions options = GenOptions();
  options.atomic_unit = 512;
  auto disk = RunWorkload(ops, options, kDevice);
  auto recording = disk->SnapshotRecording();
  const uint64_t unit = recording->atomic_unit();
  uint64_t torn = 0;
  for (const CrashState& state :
       EnumerateStates(recording, model, *rc::gen::arbitrary<uint64_t>())) {
    for (size_t f = 0; f < state.fates.size(); ++f) {
      if (state.fates[f].dropped()) continue;
      ++torn;
      const OpRecord& op = recording->ops()[state.fates[f].op];
      CrashState whole = state;
      whole.fates.erase(whole.fates.begin() + static_cast<std::ptrdiff_t>(f));
      CrashState dropped = state;
      dropped.fates[f] = {op.seq, {}, {}};
      const auto torn_bytes = ReadAll(**Materialise(*recording, state));
      const auto whole_bytes = ReadAll(**Materialise(*recording, whole));
      const auto dropped_bytes = ReadAll(**Materialise(*recording, dropped));
      for (uint64_t begin = op.offset / unit * unit; begin < op.offset + op.length; begin += unit) {
        const uint64_t lo = std::max(begin, op.offset);
        const uint64_t hi = std::min(begin + unit, op.offset + op.length);
        auto span_of = [&](const std::vector<uint8_t>& v) {
          return std::vector<uint8_t>(v.begin() + static_cast<std::ptrdiff_t>(lo),
                                      v.begin() + static_cast<std::ptrdiff_t>(hi));
        };
        RC_ASSERT(span_of(torn_bytes) == span_of(whole_bytes) ||
                  span_of(torn_bytes) == span_of(dropped_bytes));
      }
    }
  }
  RC_CLASSIFY(torn > 0, "some write torn");
}

TEST(SimDiskModel, GarbageIsDeterministicAndConfinedToTheWrite) {
  SimDiskOptions options;
  options.initial_size = 4096;
  SimDisk disk(options);
  std::vector<uint8_t> data(1024, 0xab);
  ASSERT_TRUE(disk.Write(256, data, {}).ok());  // units 0, 1, 2 (partly)
  auto recording = disk.SnapshotRecording();
  CrashState state{
      CrashKind::kPowerLoss, 1, {{0, UnitMask::FromWord(0b001), UnitMask::FromWord(0b010)}}, 77};
  auto a = ReadAll(**Materialise(*recording, state));
  auto b = ReadAll(**Materialise(*recording, state));
  EXPECT_EQ(a, b);
  for (size_t i = 0; i < 256; ++i) EXPECT_EQ(a[i], 0);       // before the write: untouched
  for (size_t i = 256; i < 512; ++i) EXPECT_EQ(a[i], 0xab);  // unit 0 kept
  size_t differing = 0;
  for (size_t i = 512; i < 1024; ++i) differing += a[i] != 0 && a[i] != 0xab;
  EXPECT_GT(differing, 400u);                               // unit 1 garbage
  for (size_t i = 1024; i < 4096; ++i) EXPECT_EQ(a[i], 0);  // unit 2 old, rest untouched
  state.garbage_seed = 78;
  EXPECT_NE(a, ReadAll(**Materialise(*recording, state)));
}

}  // namespace
}  // namespace crashsim::simdisk
