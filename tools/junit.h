// Results as JUnit XML (`--junit FILE` on explore, validate and conformance), the report format
// CI systems (GitLab, Jenkins, GitHub's test reporters) display: one <testcase> per
// configuration, a failing one carrying what failed, each trace's path and the one-line command
// that replays it. tests/junit/junit.xsd is the schema the tests hold the output to.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "engine/status.h"
#include "engine/xml_escape.h"

namespace crashsim {

struct JunitCase {
  std::string classname;  // "crashsim.explore"
  std::string name;       // the configuration: "writethrough lazy=on power-loss"
  double seconds = 0;
  // Set: the case failed. `failure_message` is one line; `failure_text` the details (traces,
  // replay commands).
  std::optional<std::string> failure_message;
  std::string failure_text;
  std::string output;  // the configuration's report, as <system-out>
};

// One <testsuites> holding one <testsuite> named `suite`.
std::string JunitXml(const std::string& suite, const std::vector<JunitCase>& cases);
// Written whole or not at all (WriteFileAtomically).
Status WriteJunit(const std::string& path, const std::string& suite,
                  const std::vector<JunitCase>& cases);

// "crashsim replay 'PATH'": the command that replays a trace, quoted for a POSIX shell.
std::string ReplayCommand(const std::string& trace_path);
// A failure's trace lines: "  trace: PATH\n  replay: crashsim replay 'PATH'\n" with PATH made
// absolute (a CI job reads it from anywhere), or how to keep a trace when `trace_path` is "".
std::string TraceLines(const std::string& trace_path, const std::string& how_to_keep);

}  // namespace crashsim
