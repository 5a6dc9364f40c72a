// crashsim: command-line entry point. Each subcommand lives in its own file (tools/cmd_*.cc) and
// is listed once in kCommands below; main only parses and returns the subcommand's exit code.
#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <sstream>
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

// CLI11's ExtrasError, "The following arguments were not expected: --frob x", as
// "unknown option '--frob'; unexpected argument 'x'". (CLI11 keeps the words only in the
// message: the App's remaining() is empty by then.)
std::string UnexpectedWords(const std::string& message) {
  const size_t colon = message.find(": ");
  if (colon == std::string::npos) return message;
  std::istringstream words(message.substr(colon + 2));
  std::string options, arguments;
  for (std::string word; words >> word;) {
    std::string& list = word.starts_with('-') ? options : arguments;
    list += std::string(list.empty() ? "'" : ", '") + word + "'";
  }
  std::string what;
  if (!options.empty()) what = "unknown option " + options;
  if (!arguments.empty()) {
    what += std::string(what.empty() ? "" : "; ") + "unexpected argument " + arguments;
  }
  return what.empty() ? message : what;
}

// A usage error in plain words, naming what was wrong and where to look:
//   crashsim: unknown command 'frobnicate'; see crashsim --help
//   crashsim info: unknown option '--frob'; see crashsim info --help
// CLI11 alone says "A subcommand is required" for an unknown command, and "The following
// argument was not expected" for an unknown option.
std::string UsageError(const CLI::App& app, const CLI::ParseError& e, int argc, char** argv) {
  const std::vector<CLI::App*> selected = app.get_subcommands();
  if (selected.empty()) {
    // No command ran. The top level takes only --help and --version, which never fail: the
    // first word is an unknown command or option.
    if (argc < 2) return "crashsim: no command given; see crashsim --help";
    const std::string word = argv[1];
    return fmt::format("crashsim: unknown {} '{}'; see crashsim --help",
                       word.starts_with('-') ? "option" : "command", word);
  }
  const CLI::App* sub = selected.front();
  std::string what = e.what();
  if (dynamic_cast<const CLI::ExtrasError*>(&e) != nullptr) what = UnexpectedWords(what);
  return fmt::format("crashsim {}: {}; see crashsim {} --help", sub->get_name(), what,
                     sub->get_name());
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"crashsim: crash-simulation test harness for qcow2"};
  app.set_version_flag("--version", std::string("crashsim ") + crashsim::Version());
  app.require_subcommand(1);
  // --help shows each option's default ("--repair-crashes UINT=4"); subcommands copy this
  // setting when they are added.
  app.option_defaults()->always_capture_default();
  int exit_code = 0;
  for (auto add : kCommands) add(app, exit_code);
  for (auto add : crashsim::tools::RegisteredCommands()) add(app, exit_code);
  // A repeatable option starts empty: "=[]" says nothing a reader needs.
  for (CLI::App* command : app.get_subcommands([](CLI::App*) { return true; })) {
    for (CLI::Option* option : command->get_options()) {
      if (option->get_default_str() == "[]") option->default_str("");
    }
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // --help and --version print and exit 0; a usage error is one line and exit 1, like every
    // other error.
    if (e.get_exit_code() == static_cast<int>(CLI::ExitCodes::Success)) return app.exit(e);
    std::fflush(stdout);
    fmt::print(stderr, "{}\n", UsageError(app, e, argc, argv));
    return crashsim::tools::kExitFailure;
  }
  return exit_code;
}
