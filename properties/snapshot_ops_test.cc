#include "properties/snapshot_ops.h"

#include <gtest/gtest.h>

namespace crashsim {
namespace {

Workload Parsed(const char* text) {
  Result<Workload> w = Workload::Parse(text);
  EXPECT_TRUE(w.ok()) << w.status().ToString();
  return *w;
}

TEST(SnapshotOpTargetsTest, NamesWhatEachOpActsOnAsTheEngineDoes) {
  const Workload w = Parsed(
      "disk 1048576\n"
      "apply-snapshot\n"     // 0: none yet: skipped
      "snapshot\n"           // 1: snap2, taken at 1 MiB
      "resize 2097152\n"     // 2
      "snapshot\n"           // 3: snap4, taken at 2 MiB
      "apply-snapshot\n"     // 4: the newest of the current size (2 MiB): snap4
      "resize 1048576\n"     // 5
      "apply-snapshot\n"     // 6: snap2, the only one taken at 1 MiB
      "delete-snapshot\n"    // 7: the oldest, snap2
      "apply-snapshot\n"     // 8: nothing of 1 MiB left: skipped
      "delete-snapshot\n"    // 9: snap4
      "delete-snapshot\n");  // 10: none left: skipped
  const std::vector<SnapshotOpTarget> t = SnapshotOpTargets(w, true);
  ASSERT_EQ(t.size(), w.ops.size());
  const std::vector<std::pair<std::string, bool>> expected = {
      {"", true},       {"snap2", false}, {"", false},      {"snap4", false},
      {"snap4", false}, {"", false},      {"snap2", false}, {"snap2", false},
      {"", true},       {"snap4", false}, {"", true}};
  for (size_t i = 0; i < t.size(); ++i) {
    EXPECT_EQ(std::make_pair(t[i].name, t[i].skipped), expected[i]) << "op " << i;
  }
}

TEST(SnapshotOpTargetsTest, AnImageThatCannotHoldSnapshotsSkipsEverySnapshotOp) {
  const Workload w = Parsed("disk 1048576\nsnapshot\napply-snapshot\ndelete-snapshot\nflush\n");
  const std::vector<SnapshotOpTarget> t = SnapshotOpTargets(w, false);
  for (size_t i = 0; i < 3; ++i) EXPECT_TRUE(t[i].skipped) << "op " << i;
  EXPECT_FALSE(t[3].skipped);
  EXPECT_EQ(SnapshotName(0), "snap1");
}

}  // namespace
}  // namespace crashsim
