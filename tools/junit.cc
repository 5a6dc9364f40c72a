// JUnit XML reports (junit.h).
#include "tools/junit.h"

#include <fmt/format.h>

#include <filesystem>

#include "engine/atomic_output_file.h"

namespace crashsim {
std::string ReplayCommand(const std::string& trace_path) {
  std::string quoted = "'";
  for (char c : trace_path) quoted += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return "crashsim replay " + quoted + "'";
}

std::string TraceLines(const std::string& trace_path, const std::string& how_to_keep) {
  if (trace_path.empty()) return "  no trace kept: " + how_to_keep + "\n";
  std::error_code ec;
  std::filesystem::path path = std::filesystem::absolute(trace_path, ec);
  const std::string shown = ec ? trace_path : path.lexically_normal().string();
  return fmt::format("  trace: {}\n  replay: {}\n", shown, ReplayCommand(shown));
}

std::string JunitXml(const std::string& suite, const std::vector<JunitCase>& cases) {
  size_t failures = 0;
  double seconds = 0;
  for (const JunitCase& c : cases) {
    failures += c.failure_message.has_value();
    seconds += c.seconds;
  }
  std::string out = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";
  out += fmt::format(
      "<testsuites name=\"{0}\" tests=\"{1}\" failures=\"{2}\" errors=\"0\" time=\"{3:.3f}\">\n"
      "  <testsuite name=\"{0}\" tests=\"{1}\" failures=\"{2}\" errors=\"0\" skipped=\"0\" "
      "time=\"{3:.3f}\">\n",
      XmlEscape(suite), cases.size(), failures, seconds);
  for (const JunitCase& c : cases) {
    out += fmt::format("    <testcase classname=\"{}\" name=\"{}\" time=\"{:.3f}\">\n",
                       XmlEscape(c.classname), XmlEscape(c.name), c.seconds);
    if (c.failure_message) {
      out += fmt::format("      <failure message=\"{}\" type=\"failure\">{}</failure>\n",
                         XmlEscape(*c.failure_message), XmlEscape(c.failure_text));
    }
    if (!c.output.empty()) {
      out += fmt::format("      <system-out>{}</system-out>\n", XmlEscape(c.output));
    }
    out += "    </testcase>\n";
  }
  out += "  </testsuite>\n</testsuites>\n";
  return out;
}

Status WriteJunit(const std::string& path, const std::string& suite,
                  const std::vector<JunitCase>& cases) {
  return WriteFileAtomically(path, JunitXml(suite, cases));
}

}  // namespace crashsim
