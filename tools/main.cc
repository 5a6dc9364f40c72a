// crashsim: command-line entry point. Each subcommand lives in its own file.
#include <CLI/CLI.hpp>
#include <fmt/format.h>

int main(int argc, char** argv) {
  CLI::App app{"crashsim: crash-simulation test harness for qcow2"};
  app.require_subcommand(1);
  CLI11_PARSE(app, argc, argv);
  return 0;
}
