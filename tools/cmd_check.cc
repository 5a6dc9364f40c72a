// `crashsim check [-f qcow2] [-r leaks|all] [--output=human|json] [-q] IMG`: qemu-img check's
// syntax, output and exit codes (0 clean or repaired, 1 check failed, 2 corruptions, 3 leaks
// only, 63 not a qcow2 image unless -f qcow2 was given, as qemu-img probes). The checker lives in
// engine/check/; without -r the file is opened read-only and never written.
#include <fmt/format.h>

#include <cstdio>
#include <string>

#include "engine/check/check.h"
#include "engine/posix_device.h"
#include "tools/common.h"

namespace crashsim::tools {
namespace {

struct CheckArgs {
  std::string format = "qcow2";
  bool format_given = false;
  std::string repair;
  std::string output = "human";
  bool quiet = false;
  std::string image;
};

int RunCheck(const CheckArgs& args) {
  Status format_ok = CheckFormat(args.format, {"qcow2"});
  if (!format_ok.ok()) return Fail(format_ok);
  RepairMode mode = args.repair.empty()    ? RepairMode::kNone
                    : args.repair == "all" ? RepairMode::kAll
                                           : RepairMode::kLeaks;
  auto device =
      PosixDevice::Open(args.image, PosixOpenOptions{.read_only = mode == RepairMode::kNone});
  if (!device.ok()) return FailOpen(args.image, device.status());
  CheckReport report =
      Check(**device, CheckOptions{.repair = mode, .open_backing = PosixBackingOpener(args.image)});
  if (report.not_qcow2) {
    if (args.format_given) {
      return FailOpen(args.image, Status::Corruption("Image is not in qcow2 format"));
    }
    Fail(fmt::format("{}: This image format does not support checks", args.image));
    return CheckExitCode(report);
  }
  // As qemu-img: an image that does not open is one error and nothing else.
  if (report.open_failed) return FailOpen(args.image, report.status);
  std::string findings = FormatCheckFindings(report);
  if (!findings.empty()) {
    std::fflush(stdout);
    fmt::print(stderr, "{}", findings);
  }
  if (args.output == "json") {
    fmt::print("{}", FormatCheckJson(report, args.image));
  } else if (!args.quiet) {
    fmt::print("{}", FormatCheckHuman(report));
  }
  // The reason a check gave no verdict, once, after the summary (which 7.2 prints only for a
  // check that completed).
  if (std::string failure = CheckFailure(report); !failure.empty()) Fail(failure);
  return CheckExitCode(report);
}

}  // namespace

void AddCheckCommand(CLI::App& app, int& exit_code) {
  auto args = std::make_shared<CheckArgs>();
  CLI::App* cmd = app.add_subcommand("check", "check an image's consistency (qemu-img check)");
  cmd->add_option("-f,--format", args->format, "image format (only qcow2)")
      ->each([args](const std::string&) { args->format_given = true; });
  cmd->add_option("-r,--repair", args->repair, "repair: leaks or all")
      ->check(CLI::IsMember({"leaks", "all"}));
  cmd->add_option("--output", args->output, "human or json")
      ->check(CLI::IsMember({"human", "json"}));
  cmd->add_flag("-q", args->quiet, "quiet: no summary in human mode");
  cmd->add_option("image", args->image, "image file")->required();
  cmd->callback([args, &exit_code] { exit_code = RunCheck(*args); });
}

}  // namespace crashsim::tools
