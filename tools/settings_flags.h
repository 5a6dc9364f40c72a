// The command-line flags that set exploration settings (settings/explore_settings.h), shared by
// `explore` and `validate`. Each flag's text is set through SetSetting, so the command line, the
// trace files and the reports spell every value one way, a bad value's error names its flag, and
// --help shows the preset's value as the default.
#pragma once

#include <CLI/CLI.hpp>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "engine/status.h"
#include "settings/explore_settings.h"

namespace crashsim::tools {

struct SettingFlag {
  std::string_view key;  // the setting it sets (SettingKeys())
  std::string names;     // CLI11's names, "-t,--cache"
  std::string help;
  std::string type = "TEXT";  // what --help calls the value: UINT, MODE, ...
  // Words the flag takes besides the setting's own spelling, each with the value it stands for
  // (--crash kill: process-kill).
  std::vector<std::pair<std::string, std::string>> aliases = {};
};

// The flags of the state selection both commands take: --seed, --crash (power and kill as
// aliases), -k, --budget, --samples.
std::vector<SettingFlag> SelectionFlags();

class SettingsFlags {
 public:
  // Adds `flags` to `cmd`, each defaulting to its setting in `defaults`.
  SettingsFlags(CLI::App* cmd, const ExploreSettings& defaults, std::vector<SettingFlag> flags);
  SettingsFlags(const SettingsFlags&) = delete;
  SettingsFlags& operator=(const SettingsFlags&) = delete;

  // After parsing: the defaults with every flag's text set on top, or the first bad value's
  // error ("--cache: Invalid cache mode 'x' ...").
  Result<ExploreSettings> Settings() const;
  // After parsing: whether the flag for setting `key` was on the command line.
  bool Given(std::string_view key) const;

 private:
  struct Flag {
    SettingFlag flag;
    std::string text;  // bound to the CLI11 option
    CLI::Option* option = nullptr;
  };
  ExploreSettings defaults_;
  std::vector<std::unique_ptr<Flag>> flags_;  // stable addresses: CLI11 writes into `text`
};

}  // namespace crashsim::tools
