// Fuzz target 5: the text parsers behind the command line and the workload files. Each input is
// given to every parser (they reject each other's syntax at once):
//   Workload::Parse       accepted -> ToText() parses to an equal workload (issue 13, finding 1)
//   ParseCreateOptions    accepted -> ToString() parses to the same options
//   ParseSize             accepted -> its decimal form parses to the same size
//   ParseCacheMode        accepted -> CacheModeName() names it back
//   ApplyOverlapCheckOption, for each "key=value" of a comma-separated list, as an open option
#include <string>

#include "engine/options.h"
#include "engine/overlap_check.h"
#include "fuzz/fuzz_util.h"
#include "properties/workload.h"

namespace crashsim::fuzz {
namespace {

constexpr size_t kMaxTextBytes = 64 * 1024;

void WorkloadRoundTrip(std::string_view text) {
  auto workload = Workload::Parse(text);
  if (!workload.ok()) return;
  const std::string written = workload->ToText();
  auto again = Workload::Parse(written);
  FUZZ_PROPERTY(again.ok(), "an accepted workload writes text its parser refuses: " +
                                again.status().ToString() + "\n" + written);
  FUZZ_PROPERTY(*again == *workload, "an accepted workload reads back different:\n" + written);
  for (const WorkloadOp& op : workload->ops) {
    const bool ranged = op.TouchesData() || op.kind == WorkloadOpKind::kRead;
    FUZZ_PROPERTY(!ranged || (op.length > 0 && op.offset <= workload->disk_size &&
                              op.length <= workload->disk_size - op.offset),
                  "an accepted workload has an op outside its disk:\n" + written);
  }
}

void CreateOptionsRoundTrip(std::string_view text) {
  CreateOptions options;
  if (!ParseCreateOptions(text, options).ok()) return;
  (void)options.Validate();
  const std::string written = options.ToString();
  CreateOptions again;
  Status st = ParseCreateOptions(written, again);
  FUZZ_PROPERTY(st.ok(), "accepted create options write text the parser refuses: " + st.ToString() +
                             "\n" + written);
  FUZZ_PROPERTY(again.ToString() == written,
                "create options read back different:\n" + written + "\n" + again.ToString());
}

void SizeRoundTrip(std::string_view text) {
  auto size = ParseSize(text);
  if (!size.ok()) return;
  auto again = ParseSize(std::to_string(*size));
  FUZZ_PROPERTY(again.ok() && *again == *size,
                "a parsed size does not parse back: " + std::to_string(*size));
}

void CacheModeRoundTrip(std::string_view text) {
  auto mode = ParseCacheMode(text);
  if (!mode.ok()) return;
  FUZZ_PROPERTY(CacheModeName(*mode) == text, "a cache mode is not named as it was parsed");
}

void OverlapOptions(std::string_view text) {
  MetadataClasses checks = kOverlapCheckCached;
  while (!text.empty()) {
    const size_t comma = text.find(',');
    std::string_view part = text.substr(0, comma);
    text = comma == std::string_view::npos ? std::string_view() : text.substr(comma + 1);
    const size_t eq = part.find('=');
    if (eq == std::string_view::npos) continue;
    auto applied = ApplyOverlapCheckOption(part.substr(0, eq), part.substr(eq + 1), checks);
    (void)applied;
    FUZZ_PROPERTY((checks & ~kOverlapCheckAll) == 0,
                  "an overlap-check option set an unknown class");
  }
}

}  // namespace
}  // namespace crashsim::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > crashsim::fuzz::kMaxTextBytes) return -1;
  const std::string_view text = crashsim::fuzz::AsText(data, size);
  crashsim::fuzz::WorkloadRoundTrip(text);
  crashsim::fuzz::CreateOptionsRoundTrip(text);
  crashsim::fuzz::SizeRoundTrip(text);
  crashsim::fuzz::CacheModeRoundTrip(text);
  crashsim::fuzz::OverlapOptions(text);
  return 0;
}
