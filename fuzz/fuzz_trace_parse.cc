// Fuzz target 3: the trace reader (traces::Trace::Parse), format versions 1 and 2. Whatever it
// accepts must survive the round trip: ToText() parses again to an equal Trace, and writing that
// one gives the same text. The input is read twice: as it is, and with its end line replaced by
// the right checksum, so mutations reach the fields behind the checksum instead of stopping at it.
#include <fmt/format.h>

#include <string>

#include "fuzz/fuzz_util.h"
#include "traces/trace.h"

namespace crashsim::fuzz {
namespace {

constexpr size_t kMaxTraceBytes = 256 * 1024;

void RoundTrip(std::string_view text) {
  auto trace = traces::Trace::Parse(text, "fuzz");
  if (!trace.ok()) return;
  const std::string written = trace->ToText();
  auto again = traces::Trace::Parse(written, "written");
  FUZZ_PROPERTY(again.ok(), "an accepted trace writes text its reader refuses: " +
                                again.status().ToString() + "\n" + written);
  FUZZ_PROPERTY(*again == *trace, "an accepted trace reads back different:\n" + written);
  FUZZ_PROPERTY(again->ToText() == written, "a trace writes different text on its second trip");
}

// The text up to its last "end " line (or all of it), sealed with the checksum it needs.
std::string Sealed(std::string_view text) {
  size_t end = text.rfind("\nend ");
  std::string body(end == std::string_view::npos ? text : text.substr(0, end + 1));
  if (!body.empty() && body.back() != '\n') body += '\n';
  return body + fmt::format("end {:016x}\n", traces::TraceChecksum(body));
}

}  // namespace
}  // namespace crashsim::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > crashsim::fuzz::kMaxTraceBytes) return -1;
  const std::string_view text = crashsim::fuzz::AsText(data, size);
  crashsim::fuzz::RoundTrip(text);
  crashsim::fuzz::RoundTrip(crashsim::fuzz::Sealed(text));
  return 0;
}
