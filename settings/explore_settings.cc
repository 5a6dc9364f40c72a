// The exploration settings' one text form and presets (explore_settings.h).
#include "settings/explore_settings.h"

#include <fmt/format.h>

#include <array>
#include <functional>
#include <vector>

#include "engine/invariant.h"
#include "engine/number_text.h"

namespace crashsim {
namespace {

Status Expected(std::string_view key, std::string_view what, std::string_view got) {
  return Status::InvalidArgument(
      fmt::format("{}: expected {}, got '{}'", key, what, ClipForMessage(got)));
}

Result<bool> OnOff(std::string_view key, std::string_view text) {
  if (text == "on") return true;
  if (text == "off") return false;
  return Expected(key, "on or off", text);
}
const char* OnOffWord(bool on) { return on ? "on" : "off"; }

// One spelling per value of an enum: a word table searched both ways.
template <typename E, size_t N>
struct Words {
  std::array<std::pair<E, const char*>, N> words;
  std::string_view what;  // "any or prefix"

  const char* Name(E value) const {
    for (const auto& [v, w] : words) {
      if (v == value) return w;
    }
    INVARIANT(false);
    return "";
  }
  Result<E> Parse(std::string_view key, std::string_view text) const {
    for (const auto& [v, w] : words) {
      if (text == w) return v;
    }
    return Expected(key, what, text);
  }
};

constexpr Words<simdisk::OrderModel, 2> kOrders{
    {{{simdisk::OrderModel::kAnySubset, "any"}, {simdisk::OrderModel::kPrefix, "prefix"}}},
    "any or prefix"};
constexpr Words<simdisk::TearShape, 3> kTears{{{{simdisk::TearShape::kNone, "none"},
                                                {simdisk::TearShape::kPrefix, "prefix"},
                                                {simdisk::TearShape::kAnySubset, "any"}}},
                                              "none, prefix or any"};
constexpr Words<simdisk::TearContent, 2> kContents{
    {{{simdisk::TearContent::kOldOrNew, "old-or-new"},
      {simdisk::TearContent::kGarbage, "garbage"}}},
    "old-or-new or garbage"};
constexpr Words<BackingKind, 3> kBackings{
    {{{BackingKind::kNone, "none"}, {BackingKind::kRaw, "raw"}, {BackingKind::kQcow2, "qcow2"}}},
    "raw, qcow2 or none"};

// A setting: its key, its text, and how to set it from text (leaving the settings unchanged on
// an error).
struct Setting {
  std::string_view key;
  std::function<std::string(const ExploreSettings&)> get;
  std::function<Status(ExploreSettings&, std::string_view)> set;
};

// A number setting with an upper bound.
Setting NumberSetting(std::string_view key, uint64_t ExploreSettings::*field,
                      uint64_t max = UINT64_MAX) {
  return {key, [field](const ExploreSettings& s) { return std::to_string(s.*field); },
          [key, field, max](ExploreSettings& s, std::string_view text) -> Status {
            ASSIGN_OR_RETURN(s.*field, ParseBoundedNumber(text, key, max));
            return Status::Ok();
          }};
}
// A number of the state selection.
Setting SelectionSetting(std::string_view key, uint64_t simdisk::StateSelection::*field,
                         uint64_t max = UINT64_MAX) {
  return {key, [field](const ExploreSettings& s) { return std::to_string(s.selection.*field); },
          [key, field, max](ExploreSettings& s, std::string_view text) -> Status {
            ASSIGN_OR_RETURN(s.selection.*field, ParseBoundedNumber(text, key, max));
            return Status::Ok();
          }};
}
Setting OnOffSetting(std::string_view key, bool ExploreSettings::*field) {
  return {key, [field](const ExploreSettings& s) { return std::string(OnOffWord(s.*field)); },
          [key, field](ExploreSettings& s, std::string_view text) -> Status {
            ASSIGN_OR_RETURN(s.*field, OnOff(key, text));
            return Status::Ok();
          }};
}
template <typename E, size_t N>
Setting ModelSetting(std::string_view key, const Words<E, N>& words,
                     E simdisk::CrashModel::*field) {
  return {key,
          [&words, field](const ExploreSettings& s) {
            return std::string(words.Name(s.selection.model.*field));
          },
          [key, &words, field](ExploreSettings& s, std::string_view text) -> Status {
            ASSIGN_OR_RETURN(s.selection.model.*field, words.Parse(key, text));
            return Status::Ok();
          }};
}

Status SetImage(ExploreSettings& s, std::string_view text) {
  CreateOptions image;
  if (Status st = ParseCreateOptions(std::string(text), image); !st.ok()) {
    return Status::InvalidArgument("image options: " + st.message());
  }
  if (Status st = image.Validate(); !st.ok()) {
    return Status::InvalidArgument("image options: " + st.message());
  }
  if (!image.backing_file.empty()) {
    return Status::InvalidArgument("image options: a backing file is a backing= setting");
  }
  s.image = image;
  return Status::Ok();
}

// The sector sizes simdisk models (SimDisk asserts one of them).
Status SetAtomicUnit(ExploreSettings& s, std::string_view text) {
  ASSIGN_OR_RETURN(uint64_t unit, ParseBoundedNumber(text, "unit"));
  if (unit != 512 && unit != 4096) {
    return Status::InvalidArgument(fmt::format("unit {}: expected 512 or 4096", unit));
  }
  s.atomic_unit = unit;
  return Status::Ok();
}

Status SetFault(ExploreSettings& s, std::string_view text) {
  if (text == "none") {
    s.fault.reset();
    return Status::Ok();
  }
  auto fault = simdisk::ParseFault(text);
  if (!fault.ok()) return fault.status().WithContext("fault");
  s.fault = *fault;
  return Status::Ok();
}

const std::vector<Setting>& Settings() {
  static const std::vector<Setting> settings = {
      {"image", [](const ExploreSettings& s) { return s.image.ToString(); }, SetImage},
      {"cache", [](const ExploreSettings& s) { return std::string(CacheModeName(s.cache_mode)); },
       [](ExploreSettings& s, std::string_view text) -> Status {
         auto mode = ParseCacheMode(text);
         if (!mode.ok()) return mode.status();
         s.cache_mode = *mode;
         return Status::Ok();
       }},
      {"crash",
       [](const ExploreSettings& s) {
         return std::string(simdisk::CrashKindName(s.selection.kind));
       },
       [](ExploreSettings& s, std::string_view text) -> Status {
         std::optional<simdisk::CrashKind> kind = simdisk::ParseCrashKind(text);
         if (!kind) return Expected("crash", "power-loss or process-kill", text);
         s.selection.kind = *kind;
         return Status::Ok();
       }},
      ModelSetting("order", kOrders, &simdisk::CrashModel::order),
      ModelSetting("tears", kTears, &simdisk::CrashModel::tears),
      ModelSetting("content", kContents, &simdisk::CrashModel::content),
      {"unit", [](const ExploreSettings& s) { return std::to_string(s.atomic_unit); },
       SetAtomicUnit},
      SelectionSetting("seed", &simdisk::StateSelection::seed),
      SelectionSetting("k", &simdisk::StateSelection::k, kMaxDeviations),
      SelectionSetting("budget", &simdisk::StateSelection::exhaustive_budget),
      SelectionSetting("samples", &simdisk::StateSelection::samples),
      OnOffSetting("metadata-first", &ExploreSettings::metadata_first),
      OnOffSetting("writes-after-repair", &ExploreSettings::writes_after_repair),
      NumberSetting("repair-crash-states", &ExploreSettings::repair_crash_states,
                    kMaxRepairCrashStates),
      {"backing", [](const ExploreSettings& s) { return std::string(kBackings.Name(s.backing)); },
       [](ExploreSettings& s, std::string_view text) -> Status {
         ASSIGN_OR_RETURN(s.backing, kBackings.Parse("backing", text));
         return Status::Ok();
       }},
      {"fault",
       [](const ExploreSettings& s) {
         return s.fault ? simdisk::FaultText(*s.fault) : std::string("none");
       },
       SetFault},
  };
  return settings;
}

const Setting* Find(std::string_view key) {
  for (const Setting& s : Settings()) {
    if (s.key == key) return &s;
  }
  return nullptr;
}

}  // namespace

const char* BackingKindName(BackingKind kind) { return kBackings.Name(kind); }

bool ExploreSettings::operator==(const ExploreSettings& other) const {
  for (const Setting& s : Settings()) {
    if (s.get(*this) != s.get(other)) return false;
  }
  return true;
}

ExploreSettings PresetSettings(SettingsPreset preset) {
  ExploreSettings s;
  switch (preset) {
    case SettingsPreset::kExplore:
      s.selection.seed = 1;  // the built-in default workload's (properties/random_workload.h)
      s.repair_crash_states = 4;
      break;
    case SettingsPreset::kProperty:
      s.selection.exhaustive_budget = 64;
      s.selection.samples = 2;
      s.repair_crash_states = 2;
      break;
    case SettingsPreset::kValidate:
      s.selection.exhaustive_budget = 2;
      s.selection.samples = 1;
      s.selection.seed = 1;
      break;
  }
  return s;
}

std::string SettingValue(const ExploreSettings& settings, std::string_view key) {
  const Setting* s = Find(key);
  INVARIANT(s != nullptr);
  return s->get(settings);
}

Status SetSetting(ExploreSettings& settings, std::string_view key, std::string_view value) {
  const Setting* s = Find(key);
  if (s == nullptr) {
    return Status::InvalidArgument(fmt::format("unknown setting '{}'", ClipForMessage(key)));
  }
  return s->set(settings, value);  // each setter assigns only once the text has parsed
}

std::string SettingsText(const ExploreSettings& settings,
                         std::initializer_list<std::string_view> keys) {
  std::string text;
  for (std::string_view key : keys) {
    if (!text.empty()) text += ' ';
    text += fmt::format("{}={}", key, SettingValue(settings, key));
  }
  return text;
}

std::span<const std::string_view> SettingKeys() {
  static const std::vector<std::string_view> keys = [] {
    std::vector<std::string_view> k;
    for (const Setting& s : Settings()) k.push_back(s.key);
    return k;
  }();
  return keys;
}

simdisk::EnumerationOptions EnumerationOptionsFor(const ExploreSettings& settings) {
  simdisk::EnumerationOptions e;
  e.selection = settings.selection;
  e.exhaustive_tags = settings.metadata_first ? simdisk::kMetadataTags : simdisk::kAllTags;
  e.dedupe = false;
  return e;
}

}  // namespace crashsim
