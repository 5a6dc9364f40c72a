// `crashsim minimize TRACE -o OUT [--max-checks N] [--any-failure]`: delta debugging on a
// failing trace (traces/minimize.h): drops guest ops, makes dropped or torn device writes
// persist, keeps more units of torn writes and shrinks guest write lengths, as long as the
// same failure still reproduces; writes the smaller trace and reports what it removed.
// Exit codes: 0 minimised (OUT written), 1 error, 2 the trace does not reproduce on this build.
#include <fmt/format.h>

#include <memory>
#include <string>

#include "tools/common.h"
#include "traces/minimize.h"
#include "traces/replay.h"
#include "traces/trace.h"

namespace crashsim::tools {
namespace {

struct MinimizeArgs {
  std::string trace;
  std::string output;
  uint64_t max_checks = 4000;
  bool any_failure = false;
  bool verbose = false;
};

int RunMinimize(const MinimizeArgs& args) {
  auto trace = traces::ReadTraceFile(args.trace);
  if (!trace.ok()) return Fail(trace.status());
  traces::MinimizeOptions options;
  options.max_checks = args.max_checks;
  options.any_failure = args.any_failure;
  if (args.verbose) {
    options.log = [](std::string_view step) { fmt::print("  accepted: {}\n", step); };
  }
  auto report = traces::Minimize(*trace, options);
  if (!report.ok()) {
    Fail(InFile(args.trace, report.status().message()));
    return report.status().code() == StatusCode::kInvalidArgument ? traces::kReplayVerdictDiffers
                                                                  : kExitFailure;
  }
  if (Status st = traces::WriteTraceFile(args.output, report->trace); !st.ok()) {
    return Fail(st);
  }
  fmt::print("{}minimised trace written to {} (verdict {}: {})\n", report->Summary(), args.output,
             traces::VerdictName(report->trace.verdict), report->trace.detail);
  return 0;
}

}  // namespace

void AddMinimizeCommand(CLI::App& app, int& exit_code) {
  auto args = std::make_shared<MinimizeArgs>();
  CLI::App* cmd = app.add_subcommand(
      "minimize", "shrink a failing trace by delta debugging while the failure reproduces");
  cmd->add_option("trace", args->trace, "failing trace file (.cstrace)")->required();
  cmd->add_option("-o,--output", args->output, "where to write the minimised trace")->required();
  cmd->add_option("--max-checks", args->max_checks, "crash states to check at most");
  cmd->add_flag("--any-failure", args->any_failure,
                "accept any failure, not only one of the same class");
  cmd->add_flag("-v,--verbose", args->verbose, "print each accepted step as it happens");
  cmd->callback([args, &exit_code] { exit_code = RunMinimize(*args); });
}

static const RegisterCommand kRegisterMinimize(AddMinimizeCommand);

}  // namespace crashsim::tools
