#include "tools/settings_flags.h"

namespace crashsim::tools {

std::vector<SettingFlag> SelectionFlags() {
  return {
      {"seed", "--seed", "seed of a generated workload and of the sampled states", "UINT"},
      {"crash",
       "--crash",
       "power-loss (power) or process-kill (kill)",
       "KIND",
       {{"power", "power-loss"}, {"kill", "process-kill"}}},
      {"k", "-k", "dropped or torn writes explored exhaustively per crash point", "UINT"},
      {"budget", "--budget", "states within the bound per crash point before sampling", "UINT"},
      {"samples", "--samples", "random states per crash point beyond the bound", "UINT"},
  };
}

SettingsFlags::SettingsFlags(CLI::App* cmd, const ExploreSettings& defaults,
                             std::vector<SettingFlag> flags)
    : defaults_(defaults) {
  for (SettingFlag& f : flags) {
    std::string text = SettingValue(defaults, f.key);
    auto flag = std::make_unique<Flag>(Flag{std::move(f), std::move(text)});
    flag->option =
        cmd->add_option(flag->flag.names, flag->text, flag->flag.help)->type_name(flag->flag.type);
    flags_.push_back(std::move(flag));
  }
}

bool SettingsFlags::Given(std::string_view key) const {
  for (const auto& f : flags_) {
    if (f->flag.key == key) return f->option->count() > 0;
  }
  return false;
}

Result<ExploreSettings> SettingsFlags::Settings() const {
  ExploreSettings s = defaults_;
  for (const auto& f : flags_) {
    std::string_view text = f->text;
    for (const auto& [alias, value] : f->flag.aliases) {
      if (text == alias) text = value;
    }
    if (Status st = SetSetting(s, f->flag.key, text); !st.ok()) {
      // The flag's long name ("-t,--cache" -> "--cache") stands for the setting's key where the
      // message starts with it ("unit 1000 is not ..." -> "--atomic-unit 1000 is not ...").
      const std::string& names = f->flag.names;
      const size_t comma = names.rfind(',');
      const std::string flag = comma == std::string::npos ? names : names.substr(comma + 1);
      const std::string& message = st.message();
      const std::string_view key = f->flag.key;
      const bool keyed = message.starts_with(key) && message.size() > key.size() &&
                         (message[key.size()] == ':' || message[key.size()] == ' ');
      return Status::InvalidArgument(keyed ? flag + message.substr(key.size())
                                           : flag + ": " + message);
    }
  }
  return s;
}

}  // namespace crashsim::tools
