#include "properties/crash_check.h"

#include <fmt/format.h>

#include "engine/image.h"

namespace crashsim {

const char* OutcomeName(Outcome outcome) {
  switch (outcome) {
    case Outcome::kClean:
      return "clean";
    case Outcome::kLeaksOnly:
      return "leaks only";
    case Outcome::kDirtyRepaired:
      return "dirty, repaired";
    case Outcome::kFailure:
      return "FAILURE";
  }
  return "?";
}

std::string FirstFindings(const CheckReport& report, size_t max_lines) {
  std::string out;
  size_t n = 0;
  for (const Finding& f : report.findings) {
    if (f.severity == FindingSeverity::kInfo) continue;
    if (n++ == max_lines) {
      out += "; ...";
      break;
    }
    out += (out.empty() ? "" : "; ") + f.message;
  }
  if (!report.status.ok()) out += (out.empty() ? "" : "; ") + report.status.ToString();
  return out;
}

CrashCheckResult CheckCrashedImage(BlockDevice& device, const GuestDataFn& check_data,
                                   const std::function<std::string()>& before_repair,
                                   const CheckFn& run_check) {
  auto check = [&](RepairMode repair) {
    return run_check ? run_check(device, repair) : Check(device, {.repair = repair});
  };
  CrashCheckResult r;
  auto fail = [&r](std::string why) {
    r.outcome = Outcome::kFailure;
    r.failure = std::move(why);
    return r;
  };
  auto header = ReadImageHeader(device, /*for_check=*/true);
  if (!header.ok())
    return fail("the crash left an unreadable header: " + header.status().ToString());
  r.dirty = header->dirty();
  if (!r.dirty) {
    std::string s = check_data("(clean image)", /*must_open=*/true);
    if (!s.empty()) return fail(s);
    CheckReport report = check(RepairMode::kNone);
    if (!report.status.ok() || report.check_errors > 0) {
      return fail("check could not complete on a clean image: " + FirstFindings(report));
    }
    if (report.corruptions > 0) {
      return fail(fmt::format("image not marked dirty has {} corruptions: {}", report.corruptions,
                              FirstFindings(report)));
    }
    r.outcome = report.leaks > 0 ? Outcome::kLeaksOnly : Outcome::kClean;
    return r;
  }
  // Readable before repair: what it shows must already be legal.
  if (std::string s = check_data("before repair", /*must_open=*/false); !s.empty()) return fail(s);
  if (before_repair) {
    if (std::string s = before_repair(); !s.empty()) return fail(s);
  }
  CheckReport repair = check(RepairMode::kAll);
  if (!repair.status.ok() || CheckExitCode(repair) != 0) {
    return fail(fmt::format("repair of the dirty image failed (exit {}): {}", CheckExitCode(repair),
                            FirstFindings(repair)));
  }
  std::string repaired = CheckRepairedImage(
      device, [&](BlockDevice&, RepairMode mode) { return check(mode); }, check_data,
      "after repair");
  if (!repaired.empty()) return fail(repaired);
  r.outcome = Outcome::kDirtyRepaired;
  return r;
}

std::string CheckRepairedImage(BlockDevice& device, const CheckFn& run_check,
                               const GuestDataFn& check_data, const char* when) {
  auto header = ReadImageHeader(device, /*for_check=*/true);
  if (!header.ok()) {
    return "the repaired image has an unreadable header: " + header.status().ToString();
  }
  if (header->dirty()) return "repair succeeded but left the dirty bit set";
  CheckReport again = run_check(device, RepairMode::kNone);
  if (!again.status.ok() || again.corruptions || again.leaks || again.check_errors) {
    return "the check after repair is not clean: " + FirstFindings(again);
  }
  return check_data(when, /*must_open=*/true);
}

CrashCheckResult CheckCrashedImage(BlockDevice& device, const GuestOracle& oracle,
                                   const OpenOptions& read_only, uint64_t crash_point,
                                   const std::function<std::string()>& before_repair) {
  return CheckCrashedImage(
      device,
      [&](const char* when, bool must_open) {
        return CheckGuestData(device, oracle, read_only, crash_point, when, must_open);
      },
      before_repair);
}

}  // namespace crashsim
