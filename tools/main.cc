// crashsim: command-line entry point. Each subcommand lives in its own file (tools/cmd_*.cc) and
// is listed once in kCommands below; main only parses and returns the subcommand's exit code.
#include <CLI/CLI.hpp>

#include <string>

#include "engine/version.h"
#include "tools/common.h"

namespace {

// The registry: every subcommand, in the order `crashsim --help` lists them.
constexpr crashsim::tools::AddCommandFn kCommands[] = {
    crashsim::tools::AddCreateCommand,  crashsim::tools::AddInfoCommand,
    crashsim::tools::AddIoCommand,      crashsim::tools::AddCheckCommand,
    crashsim::tools::AddConvertCommand, crashsim::tools::AddDemoCommand,
};

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"crashsim: crash-simulation test harness for qcow2"};
  app.set_version_flag("--version", std::string("crashsim ") + crashsim::Version());
  app.require_subcommand(1);
  int exit_code = 0;
  for (auto add : kCommands) add(app, exit_code);
  for (auto add : crashsim::tools::RegisteredCommands()) add(app, exit_code);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // Usage errors print CLI11's message and exit 1 like every other error; --help and
    // --version exit 0.
    return app.exit(e) == 0 ? 0 : 1;
  }
  return exit_code;
}
