// `crashsim show TRACE [--svg FILE] [--reads]`: explains a trace (traces/explain.h): the guest
// ops, the device ops with the qcow2 structure each write served, the flush barriers, which
// writes persisted, were torn or dropped, the dirty bit at the crash, the checker's findings and
// the verdict; --svg also draws the same as a timeline a browser shows. Exit codes: 0 shown,
// 1 error.
#include <fmt/format.h>

#include <memory>
#include <string>

#include "engine/atomic_output_file.h"
#include "tools/common.h"
#include "traces/explain.h"
#include "traces/trace.h"

namespace crashsim::tools {
namespace {

struct ShowArgs {
  std::string trace;
  std::string svg;
  bool reads = false;
};

int RunShow(const ShowArgs& args) {
  auto trace = traces::ReadTraceFile(args.trace);
  if (!trace.ok()) return Fail(trace.status());
  auto explanation = traces::Explain(*trace, traces::ExplainOptions{.reads = args.reads});
  if (!explanation.ok()) return Fail(InFile(args.trace, explanation.status().message()));
  fmt::print("{}", explanation->text);
  if (!args.svg.empty()) {
    if (Status st = WriteFileAtomically(args.svg, explanation->svg); !st.ok()) {
      return Fail(st);
    }
    fmt::print("timeline written to {}\n", args.svg);
  }
  return 0;
}

}  // namespace

void AddShowCommand(CLI::App& app, int& exit_code) {
  auto args = std::make_shared<ShowArgs>();
  CLI::App* cmd = app.add_subcommand("show", "explain a trace in text, and as an SVG timeline");
  cmd->add_option("trace", args->trace, "trace file (.cstrace)")->required();
  cmd->add_option("--svg", args->svg, "write an SVG timeline to this file");
  cmd->add_flag("--reads", args->reads, "list device reads too");
  cmd->callback([args, &exit_code] { exit_code = RunShow(*args); });
}

static const RegisterCommand kRegisterShow(AddShowCommand);

}  // namespace crashsim::tools
