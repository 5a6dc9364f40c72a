// The in-memory refcount table: counts past the one-byte range, saturation at refcount_max,
// growth past EOF, and the owners named in overlap notes.
#include "engine/check/reference_counter.h"

#include <gtest/gtest.h>

#include <vector>

#include "engine/memory_device.h"

namespace crashsim::check {
namespace {

constexpr uint64_t kCluster = 65536;

class ReferenceCounterTest : public ::testing::Test {
 protected:
  // A context for a file of `clusters` 64 KiB clusters with 2^order-bit refcounts.
  void Start(uint64_t clusters, uint32_t refcount_order = 4) {
    ctx_.geo = Geometry{16, refcount_order, false};
    ctx_.file_size = clusters * kCluster;
    counter_.Reset(clusters, ctx_.geo.refcount_max());
  }
  void AddCluster(uint64_t cluster, Owner owner) {
    counter_.Add(ctx_, cluster * kCluster, kCluster, owner);
  }
  std::vector<std::string> Messages(FindingKind kind) const {
    std::vector<std::string> out;
    for (const Finding& f : findings_) {
      if (f.kind == kind) out.push_back(f.message);
    }
    return out;
  }

  MemoryDevice device_;
  std::vector<Finding> findings_;
  Context ctx_{device_, RepairMode::kNone, findings_};
  ReferenceCounter counter_;
};

TEST_F(ReferenceCounterTest, CountsPastSevenBits) {
  Start(10000);
  for (int k = 0; k < 300; ++k) AddCluster(5000, Owner::kData);
  AddCluster(5001, Owner::kData);
  EXPECT_EQ(counter_.Get(5000), 300u);
  EXPECT_EQ(counter_.Get(5001), 1u);
  EXPECT_EQ(counter_.Get(4999), 0u);
  EXPECT_FALSE(counter_.AllZero(4096, 8192));
  EXPECT_TRUE(counter_.AllZero(0, 5000));
  counter_.Set(5000, 3);
  EXPECT_EQ(counter_.Get(5000), 3u);
  counter_.Set(9999, 70000);
  EXPECT_EQ(counter_.Get(9999), 65535u);  // Set saturates at refcount_max too
  EXPECT_TRUE(Messages(FindingKind::kRefcountOverflow).empty());
  EXPECT_EQ(Messages(FindingKind::kOverlap).size(), 0u);  // data shared with data is no overlap
}

TEST_F(ReferenceCounterTest, SaturatesAtRefcountMax) {
  Start(4, /*refcount_order=*/0);  // 1-bit refcounts: at most 1
  AddCluster(2, Owner::kData);
  AddCluster(2, Owner::kData);
  EXPECT_EQ(counter_.Get(2), 1u);
  EXPECT_EQ(Messages(FindingKind::kRefcountOverflow),
            std::vector<std::string>{"ERROR: overflow cluster offset=0x20000"});

  findings_.clear();
  Start(4, /*refcount_order=*/5);  // 32-bit refcounts: stored wide
  for (int k = 0; k < 70000; ++k) AddCluster(1, Owner::kData);
  EXPECT_EQ(counter_.Get(1), 70000u);
  EXPECT_TRUE(Messages(FindingKind::kRefcountOverflow).empty());
}

TEST_F(ReferenceCounterTest, ResetClearsCountsAndOwners) {
  Start(100);
  for (int k = 0; k < 260; ++k) AddCluster(7, Owner::kData);
  AddCluster(8, Owner::kRefblock);
  Start(100);
  EXPECT_EQ(counter_.Get(7), 0u);
  EXPECT_EQ(counter_.owner(8), Owner::kNone);
  AddCluster(8, Owner::kData);
  EXPECT_EQ(counter_.owner(8), Owner::kData);
}

TEST_F(ReferenceCounterTest, GrowsOnlyForReferencesEndingInTheClusterAfterEof) {
  Start(4);
  counter_.Add(ctx_, 4 * kCluster - 512, 1024, Owner::kData);  // ends inside cluster 4
  EXPECT_EQ(counter_.nb_clusters(), 5u);
  EXPECT_EQ(counter_.Get(3), 1u);
  EXPECT_EQ(counter_.Get(4), 1u);
  counter_.AddDataCluster(ctx_, 5 * kCluster);  // a whole cluster past EOF
  EXPECT_EQ(counter_.nb_clusters(), 5u);
  EXPECT_EQ(Messages(FindingKind::kPastEndOfFile).size(), 1u);
}

// A rebuild that extends the file must not land on a structure already claiming clusters past
// EOF (issue 13, finding 2: the new refcount table went onto an L1 table past the end).
TEST_F(ReferenceCounterTest, RegionsPastEofAreCountedOnlyOnceTheRebuildReachesThem) {
  Start(7);
  counter_.Add(ctx_, 8 * kCluster, 8, Owner::kActiveL1);       // one cluster past EOF and more
  counter_.Add(ctx_, 1000 * kCluster, 8, Owner::kSnapshotL1);  // far beyond
  EXPECT_EQ(Messages(FindingKind::kPastEndOfFile).size(), 2u);
  EXPECT_EQ(counter_.CountPastEofBelow(ctx_, 8), 0u);  // new structures in cluster 7 only
  EXPECT_EQ(counter_.nb_clusters(), 7u);
  EXPECT_EQ(counter_.CountPastEofBelow(ctx_, 9), 1u);  // ... reaching cluster 8
  EXPECT_EQ(counter_.nb_clusters(), 9u);
  EXPECT_EQ(counter_.Get(8), 1u);
  EXPECT_EQ(counter_.owner(8), Owner::kActiveL1);
  EXPECT_EQ(counter_.CountPastEofBelow(ctx_, 11), 0u);  // counted once; the far one untouched
  EXPECT_EQ(counter_.Get(8), 1u);
  counter_.Reset(7, ctx_.geo.refcount_max());
  EXPECT_EQ(counter_.CountPastEofBelow(ctx_, 2000), 0u);  // a reset forgets them
}

TEST_F(ReferenceCounterTest, NamesTheFirstOwnerOfASharedCluster) {
  Start(1 << 16);
  AddCluster(3, Owner::kL2);
  AddCluster(40000, Owner::kRefblock);
  counter_.AddDataCluster(ctx_, 50000 * kCluster);
  EXPECT_EQ(counter_.owner(3), Owner::kL2);
  EXPECT_EQ(counter_.owner(40000), Owner::kRefblock);
  EXPECT_EQ(counter_.owner(50000), Owner::kData);
  EXPECT_EQ(counter_.owner(50001), Owner::kNone);

  AddCluster(3, Owner::kL2);                        // a snapshot sharing an L2 table: no overlap
  counter_.AddDataCluster(ctx_, 50000 * kCluster);  // or a data cluster: no overlap
  AddCluster(3, Owner::kData);
  AddCluster(40000, Owner::kRefblock);  // metadata never shares, even with its own kind
  counter_.AddDataCluster(ctx_, 40000 * kCluster);
  AddCluster(50000, Owner::kActiveL1);
  EXPECT_EQ(Messages(FindingKind::kOverlap),
            (std::vector<std::string>{
                "Overlap: cluster 3 is used by the L2 table and by the data cluster",
                "Overlap: cluster 40000 is used by the refcount block and by the refcount block",
                "Overlap: cluster 40000 is used by the refcount block and by the data cluster",
                "Overlap: cluster 50000 is used by the data cluster and by the active L1 table",
            }));
  EXPECT_EQ(counter_.Get(3), 3u);
  EXPECT_EQ(counter_.Get(40000), 3u);
  EXPECT_EQ(counter_.Get(50000), 3u);
}

}  // namespace
}  // namespace crashsim::check
