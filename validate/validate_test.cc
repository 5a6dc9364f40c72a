// The validate driver against QEMU (skipped when qemu-utils is missing): a recorded run is
// deterministic in its workload, its writes are tagged by structure, crash states of QEMU's
// non-lazy writethrough runs satisfy the property, and the repair study reports what QEMU does.
#include "validate/validate.h"

#include <gtest/gtest.h>

#include "process/subprocess.h"
#include "validate/workload_generator.h"

namespace crashsim::validate {
namespace {

bool HaveQemu() { return !FindProgram("qemu-io").empty() && !FindProgram("qemu-img").empty(); }

ValidateOptions Options() {
  ValidateOptions o;
  o.target = *TargetSpec::Load("qemu");
  o.max_states = 12;
  o.repair_states = 2;
  return o;
}

TEST(GenerateWorkload, DeterministicPerSeed) {
  EXPECT_EQ(GenerateWorkload(7, 4 << 20, 65536, 10), GenerateWorkload(7, 4 << 20, 65536, 10));
  EXPECT_NE(GenerateWorkload(7, 4 << 20, 65536, 10), GenerateWorkload(8, 4 << 20, 65536, 10));
  Workload w = GenerateWorkload(3, 4 << 20, 65536, 30);
  for (const WorkloadOp& op : w.ops) EXPECT_LE(op.offset + op.length, w.disk_size);
}

TEST(TargetSpec, BuiltinQemuParsesAndExpands) {
  auto spec = TargetSpec::Load("qemu");
  ASSERT_TRUE(spec.ok()) << spec.status().ToString();
  EXPECT_EQ(spec->prompt, "qemu-io> ");
  EXPECT_EQ(spec->repairs.size(), 3u);
  auto argv = ExpandCommand(spec->check, {{"image", "/tmp/a b.qcow2"}});
  ASSERT_TRUE(argv.ok());
  EXPECT_EQ(argv->back(), "/tmp/a b.qcow2");
  EXPECT_FALSE(ExpandCommand(spec->check, {}).ok());
  EXPECT_FALSE(TargetSpec::Parse("name = x\n", "t").ok());
}

TEST(Validate, QemuWritethroughRunHoldsTheProperty) {
  if (!HaveQemu()) GTEST_SKIP() << "qemu-utils not installed";
  Validator v(Options());
  ASSERT_TRUE(v.Record().ok());
  uint64_t metadata = 0, guest_acks = 0;
  for (const simdisk::OpRecord& op : v.recording().ops()) {
    if (op.kind == simdisk::OpKind::kWrite && op.tag != IoTag::kData) ++metadata;
    if (op.kind == simdisk::OpKind::kGuestAck) ++guest_acks;
  }
  EXPECT_GT(metadata, 0u);
  EXPECT_EQ(guest_acks, v.options().workload_ops + 2);  // + the final flush and the close
  ValidateReport r = v.Run();
  EXPECT_GT(r.explored, 0u);
  EXPECT_EQ(r.outcomes[static_cast<int>(Outcome::kFailure)], 0u) << r.Summary();
  EXPECT_EQ(r.second_opinions, r.explored);
  EXPECT_NE(r.target_version.find("qemu-io version"), std::string::npos);
}

TEST(Validate, QemuLazyKillRunsTheRepairStudy) {
  if (!HaveQemu()) GTEST_SKIP() << "qemu-utils not installed";
  ValidateOptions o = Options();
  o.settings.image.lazy_refcounts = true;
  o.settings.selection.kind = simdisk::CrashKind::kProcessKill;
  Validator v(o);
  ASSERT_TRUE(v.Record().ok());
  ValidateReport r = v.Run();
  EXPECT_EQ(r.outcomes[static_cast<int>(Outcome::kFailure)], 0u) << r.Summary();
  ASSERT_GT(r.dirty_states, 0u) << r.Summary();
  ASSERT_EQ(r.repairs.size(), 3u);
  for (const RepairStudy& s : r.repairs) EXPECT_GT(s.attempted, 0u) << s.name;
  // qemu-img check -r all and a read-write open repair every dirty state QEMU left.
  EXPECT_EQ(r.repairs[1].clean_after, r.repairs[1].attempted) << r.Summary();
  EXPECT_EQ(r.repairs[2].clean_after, r.repairs[2].attempted) << r.Summary();
}

// A trace records the image the target made, not crashsim's defaults: a target whose create
// command picks 4 KiB clusters and 64-bit refcounts gets a trace that says so.
TEST(Validate, TraceSettingsAreTheCreatedImages) {
  if (!HaveQemu()) GTEST_SKIP() << "qemu-utils not installed";
  ValidateOptions o = Options();
  o.target.create =
      "qemu-img create -q -f qcow2 -o compat=1.1,cluster_size=4096,refcount_bits=64,"
      "lazy_refcounts=on {uri} {size}";
  Validator v(o);
  ASSERT_TRUE(v.Record().ok());
  const ExploreSettings s = v.TraceSettingsOf();
  EXPECT_EQ(s.image.cluster_size, 4096u);
  EXPECT_EQ(s.image.refcount_bits, 64u);
  EXPECT_TRUE(s.image.lazy_refcounts);
  EXPECT_EQ(s.image.version, 3u);
  // The config line says what the image is, too: lazy refcounts on, though not asked for.
  EXPECT_NE(v.Run().config.find("lazy=on"), std::string::npos);
}

// The config line tells a workload file from a seeded workload: the seed then only draws states.
TEST(Validate, ConfigLineNamesAWorkloadFile) {
  if (!HaveQemu()) GTEST_SKIP() << "qemu-utils not installed";
  ValidateOptions o = Options();
  o.workload = GenerateWorkload(5, 4 << 20, 65536, 3);
  o.workload_name = "some/dir/mine.wl";
  o.max_states = 1;
  o.repair_study = false;
  Validator v(o);
  ASSERT_TRUE(v.Record().ok());
  const std::string config = v.Run().config;
  EXPECT_NE(config.find(" workload=mine.wl states-seed=1"), std::string::npos) << config;
  EXPECT_EQ(config.find(" seed="), std::string::npos) << config;
}

TEST(Validate, AFailingTargetIsAnErrorNotAHang) {
  ValidateOptions o = Options();
  auto spec = TargetSpec::Parse(
      "name = broken\ncreate = false\ndrive = cat\nprompt = \"> \"\nop.write = x\n"
      "op.flush = x\nop.close = x\n",
      "broken.target");
  ASSERT_TRUE(spec.ok()) << spec.status().ToString();
  o.target = *spec;
  o.timeout_ms = 2000;
  Validator v(o);
  Status st = v.Record();
  EXPECT_FALSE(st.ok());
  EXPECT_NE(st.message().find("create failed"), std::string::npos) << st.ToString();
}

}  // namespace
}  // namespace crashsim::validate
