#include "properties/checker.h"

#include <fmt/format.h>

#include "simdisk/medium.h"
#include "simdisk/sim_disk.h"

namespace crashsim {
namespace {

// The medium a device holds, for the devices the explorer checks.
const simdisk::Medium* MediumOf(BlockDevice& device) {
  if (auto* medium = dynamic_cast<simdisk::Medium*>(&device)) return medium;
  if (auto* disk = dynamic_cast<simdisk::SimDisk*>(&device)) return &disk->live();
  return nullptr;
}

}  // namespace

std::string ReportText(const CheckReport& report) {
  return fmt::format(
      "{}{}{}status={} rebuild={} rebuilt={} double_checked={} marked_clean={} "
      "fixed={}/{}",
      FormatCheckFindings(report), FormatCheckHuman(report), FormatCheckJson(report, "image"),
      report.status.ToString(), report.rebuild, report.rebuilt, report.double_checked,
      report.marked_clean, report.corruptions_fixed, report.leaks_fixed);
}

CheckReport Checker::Run(BlockDevice& device, RepairMode repair) {
  ++runs_;
  if (mode_ == CheckerMode::kPlain) return Check(device, {.repair = repair});
  if (mode_ == CheckerMode::kMemo) return Check(device, {.repair = repair, .memo = &memo_});
  // Both: a twin of the device (same bytes, same faults to come) gets the plain check.
  std::unique_ptr<BlockDevice> twin;
  if (auto* medium = dynamic_cast<simdisk::Medium*>(&device)) {
    twin = std::make_unique<simdisk::Medium>(*medium);
  } else if (auto* disk = dynamic_cast<simdisk::SimDisk*>(&device)) {
    auto copy = std::make_unique<simdisk::SimDisk>(
        disk->options(), std::make_shared<const simdisk::Medium>(disk->live()));
    copy->SetFaultPlan(disk->fault_plan());
    twin = std::move(copy);
  }
  CheckReport memoised = Check(device, {.repair = repair, .memo = &memo_});
  if (twin == nullptr || !disagreement_.empty()) return memoised;
  CheckReport plain = Check(*twin, {.repair = repair});
  if (ReportText(memoised) != ReportText(plain)) {
    disagreement_ = fmt::format(
        "the memoised checker's report differs from the plain one's:\n{}"
        "\n--- plain ---\n{}",
        ReportText(memoised), ReportText(plain));
  } else if (MediumOf(device)->Digest() != MediumOf(*twin)->Digest()) {
    disagreement_ = "the memoised repair left other bytes than the plain one";
  }
  return memoised;
}

std::string Checker::TakeDisagreement() { return std::exchange(disagreement_, std::string()); }

}  // namespace crashsim
