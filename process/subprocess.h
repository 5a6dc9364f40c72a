// Child processes: one-shot commands with a deadline (qemu-img for the demo and the interop
// checks, a third-party target's commands for validate), and an interactive session (qemu-io)
// driven one command at a time over pipes. No shell is involved: arguments pass unchanged.
// Every wait has a timeout and a child that overstays is killed (SIGKILL), so a hung third-party
// tool can never hang crashsim or CI. stdout and stderr are merged into one stream, in the order
// the child wrote them.
//
// Children start through posix_spawn while the NBD server thread runs: no code of ours runs in
// the child between its start and exec.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "engine/status.h"

namespace crashsim {

struct ProcessResult {
  // The exit status, or 128 + N when killed by signal N (as a shell shows it); 127 when the
  // program could not be started (`output` says why).
  int exit_code = -1;
  std::string output;      // stdout and stderr
  bool timed_out = false;  // killed by us after the deadline
};

// Runs argv to completion (or the deadline) with stdin from /dev/null.
ProcessResult RunCommand(const std::vector<std::string>& argv, int timeout_ms);

// Splits a command template into words: whitespace separates, '...' and "..." quote.
std::vector<std::string> SplitWords(std::string_view text);
// Resolves a program name through PATH; empty when not found.
std::string FindProgram(const std::string& name);
// The path of the running executable (/proc/self/exe), or "crashsim" when it cannot be read.
std::string SelfExecutable();

class Interactive {
 public:
  static Result<std::unique_ptr<Interactive>> Start(const std::vector<std::string>& argv);
  ~Interactive();
  Interactive(const Interactive&) = delete;
  Interactive& operator=(const Interactive&) = delete;

  // Reads output until it ends with `marker`; returns what came before the marker. Fails when
  // the child exits first or the deadline passes (then `output_so_far` holds the partial text).
  Result<std::string> ReadUntil(std::string_view marker, int timeout_ms);
  // Sends one line (a newline is appended).
  Status SendLine(std::string_view line);
  // Closes stdin and waits for the exit; kills the child after the deadline.
  ProcessResult Finish(int timeout_ms);
  // Kills the child with `signal` and reaps it.
  ProcessResult Kill(int signal);
  const std::string& output_so_far() const { return pending_; }
  pid_t pid() const { return pid_; }

 private:
  Interactive() = default;
  ProcessResult Wait(int timeout_ms);

  pid_t pid_ = -1;
  int in_fd_ = -1;
  int out_fd_ = -1;
  std::string pending_;
  std::string all_output_;
};

}  // namespace crashsim
