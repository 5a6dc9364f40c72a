// Runs a child program and captures its output, for the subcommands that drive qemu-img,
// qemu-io and crashsim itself (demo). No shell is involved: arguments pass through unchanged.
#pragma once

#include <string>
#include <vector>

namespace crashsim::tools {

struct ProcessResult {
  int exit_code = -1;  // the exit status, or 128 + N when killed by signal N (as a shell shows)
  std::string output;  // stdout and stderr, interleaved
};

// Runs argv[0] (looked up in PATH) with the given arguments and waits for it. A program that
// cannot be started gives exit code 127 and a message in `output`.
ProcessResult RunProcess(const std::vector<std::string>& argv);

// Whether `program` is found in PATH.
bool ProgramExists(const std::string& program);

// The path of the running executable (/proc/self/exe).
std::string SelfExecutable();

}  // namespace crashsim::tools
