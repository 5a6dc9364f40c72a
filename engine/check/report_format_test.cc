// qemu-img 7.2's output text and exit codes, from reports with known counters.
#include <gtest/gtest.h>

#include "engine/check/check.h"

namespace crashsim {
namespace {

TEST(ReportFormatTest, JsonMatchesQemuKeyOrder) {
  CheckReport r;
  r.image_end_offset = 458752;
  r.total_clusters = 1024;
  r.corruptions = 4;
  r.allocated_clusters = 2;
  EXPECT_EQ(FormatCheckJson(r, "lazy.qcow2"),
            "{\n    \"image-end-offset\": 458752,\n    \"total-clusters\": 1024,\n"
            "    \"corruptions\": 4,\n    \"check-errors\": 0,\n"
            "    \"allocated-clusters\": 2,\n    \"filename\": \"lazy.qcow2\",\n"
            "    \"format\": \"qcow2\"\n}\n");
  EXPECT_EQ(CheckExitCode(r), 2);
}

TEST(ReportFormatTest, HumanAfterRepair) {
  CheckReport r;
  r.leaks_fixed = 1;
  r.double_checked = true;
  r.total_clusters = 1024;
  r.allocated_clusters = 2;
  r.fragmented_clusters = 1;
  r.compressed_clusters = 1;
  r.image_end_offset = 524288;
  EXPECT_EQ(FormatCheckHuman(r),
            "The following inconsistencies were found and repaired:\n\n    1 leaked clusters\n"
            "    0 corruptions\n\nDouble checking the fixed image now...\n"
            "No errors were found on the image.\n"
            "2/1024 = 0.20% allocated, 50.00% fragmented, 50.00% compressed clusters\n"
            "Image end offset: 524288\n");
  EXPECT_EQ(CheckExitCode(r), 0);
}

TEST(ReportFormatTest, ExitCodes) {
  CheckReport leaks;
  leaks.leaks = 3;
  EXPECT_EQ(CheckExitCode(leaks), 3);
  EXPECT_NE(FormatCheckHuman(leaks).find("\n3 leaked clusters were found on the image.\nThis "
                                         "means waste of disk space, but no harm to data.\n"),
            std::string::npos);
  CheckReport failed;
  failed.status = Status::IoError("need to rebuild refcount structures");
  EXPECT_EQ(CheckExitCode(failed), 1);
  EXPECT_EQ(FormatCheckHuman(failed), "");
  EXPECT_EQ(FormatCheckJson(failed, "x"), "");
  CheckReport raw;
  raw.not_qcow2 = true;
  raw.status = Status::Corruption("not a qcow2 image");
  EXPECT_EQ(CheckExitCode(raw), 63);
  CheckReport errors;
  errors.check_errors = 1;
  EXPECT_EQ(CheckExitCode(errors), 1);
}

// A check that gives no verdict says why once: the findings are only the findings, and the
// reason is CheckFailure's one line (issue 13: the reason was printed twice).
Finding MakeFinding(FindingKind kind, const std::string& message) {
  Finding f;
  f.kind = kind;
  f.message = message;
  return f;
}

TEST(ReportFormatTest, FailureReasonIsNotAFinding) {
  CheckReport failed;
  failed.findings.push_back(
      MakeFinding(FindingKind::kCheckError, "ERROR need to rebuild refcount structures"));
  failed.check_errors = 1;
  failed.status = Status::IoError("need to rebuild refcount structures");
  EXPECT_EQ(FormatCheckFindings(failed), "ERROR need to rebuild refcount structures\n");
  EXPECT_EQ(CheckFailure(failed), "Check failed: need to rebuild refcount structures");
  CheckReport errors;
  errors.check_errors = 1;
  EXPECT_EQ(FormatCheckFindings(errors), "");
  EXPECT_EQ(CheckFailure(errors), "Check failed");
  EXPECT_EQ(CheckFailure(CheckReport{}), "");
}

// qemu-img follows every refcount overflow it leaves with its advice (qcow2.md §7).
TEST(ReportFormatTest, RefcountOverflowGivesQemuImgsHint) {
  CheckReport r;
  r.findings.push_back(
      MakeFinding(FindingKind::kRefcountOverflow, "ERROR: overflow cluster offset=0x50000"));
  r.findings.push_back(MakeFinding(FindingKind::kLeak, "Leaked cluster 6 refcount=1 reference=0"));
  EXPECT_EQ(FormatCheckFindings(r),
            "ERROR: overflow cluster offset=0x50000\n"
            "Use qemu-img amend to increase the refcount entry width or qemu-img convert to "
            "create a clean copy if the image cannot be opened for writing\n"
            "Leaked cluster 6 refcount=1 reference=0\n");
}

}  // namespace
}  // namespace crashsim
