// A trace's settings lines (image, cache, crash, model, explore, check; FORMAT.md): the run's
// ExploreSettings (settings/explore_settings.h) in the trace format's line layout, each value
// spelled as the settings spell it.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "engine/status.h"
#include "settings/explore_settings.h"

namespace crashsim::traces {

class LineReader;

// The settings lines, with the image's size set to `disk_size`.
std::string TraceSettingsText(const ExploreSettings& settings, uint64_t disk_size);
// Reads the settings lines; comments met before the first are unescaped into `comments`.
Status ParseTraceSettings(LineReader& r, ExploreSettings& settings,
                          std::vector<std::string>& comments);

}  // namespace crashsim::traces
