// Target plug-ins: how crashsim drives a third-party qcow2 implementation, as a small text
// description (key = value lines, '#' comments; validate/targets/qemu.target is the first).
// Commands are word templates with {placeholders}; nothing is compiled in, so another
// implementation (cloud-hypervisor's, crosvm's, a library's test tool) is driven the same way by
// writing one file. docs/validate.md lists the keys and placeholders.
#pragma once

#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "engine/status.h"

namespace crashsim::validate {

struct TargetSpec {
  std::string name;
  std::string version;  // command printing the implementation's version
  std::string create;   // makes the image on the NBD export
  std::string drive;    // interactive guest-I/O driver
  std::string prompt;   // printed by the driver when it is ready for the next command
  std::map<std::string, std::string> ops;  // write, zero, zero_unmap, discard, flush, reopen, close
  std::vector<std::string> errors;         // words that mark a failed answer
  std::string check;  // second-opinion checker on an image file (qemu-img check JSON)
  std::vector<std::pair<std::string, std::string>> repairs;  // name -> command, file order
  std::string write_file;  // one guest write to an image file, after a repair
  std::string read;        // the guest disk of an image file, written raw to {output}

  // Parses the description; `name` prefixes errors ("qemu.target:7: ...").
  static Result<TargetSpec> Parse(std::string_view text, std::string_view name);
  // A built-in target ("qemu"), or a description file path.
  static Result<TargetSpec> Load(const std::string& name_or_path);
};

// Replaces {key} in `text` by vars[key]; unknown placeholders are an error.
Result<std::string> Expand(std::string_view text, const std::map<std::string, std::string>& vars);
// Expands and splits one command template into argv (no shell).
Result<std::vector<std::string>> ExpandCommand(std::string_view text,
                                               const std::map<std::string, std::string>& vars);
// Whether an answer of the driver reports a failure (contains one of spec.errors).
bool AnswerIsError(const TargetSpec& spec, std::string_view answer);

}  // namespace crashsim::validate
