#include "tools/settings_flags.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace crashsim::tools {
namespace {

using ::testing::HasSubstr;

// Parses `args` with the flags of explore's kind over the explore preset.
Result<ExploreSettings> Parse(std::vector<std::string> args) {
  CLI::App app("test");
  std::vector<SettingFlag> all = SelectionFlags();
  all.push_back({"cache", "-t,--cache", "cache mode", "MODE"});
  all.push_back({"unit", "--atomic-unit", "unit", "UINT"});
  SettingsFlags flags(&app, PresetSettings(SettingsPreset::kExplore), all);
  std::vector<const char*> argv = {"test"};
  for (const std::string& a : args) argv.push_back(a.c_str());
  app.parse(static_cast<int>(argv.size()), argv.data());
  return flags.Settings();
}

TEST(SettingsFlags, UnsetFlagsKeepThePreset) {
  auto s = Parse({});
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ(*s, PresetSettings(SettingsPreset::kExplore));
}

TEST(SettingsFlags, FlagsSetTheirSettings) {
  auto s = Parse({"-t", "directsync", "--crash", "process-kill", "-k", "2"});
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ(s->cache_mode, CacheMode::kDirectsync);
  EXPECT_EQ(s->selection.kind, simdisk::CrashKind::kProcessKill);
  EXPECT_EQ(s->selection.k, 2u);
}

TEST(SettingsFlags, AliasesStandForTheirValue) {
  auto kill = Parse({"--crash", "kill"});
  ASSERT_TRUE(kill.ok());
  EXPECT_EQ(kill->selection.kind, simdisk::CrashKind::kProcessKill);
  auto power = Parse({"--crash", "power"});
  ASSERT_TRUE(power.ok());
  EXPECT_EQ(power->selection.kind, simdisk::CrashKind::kPowerLoss);
}

TEST(SettingsFlags, ABadValueIsNamedByItsFlag) {
  auto unit = Parse({"--atomic-unit", "1024"});
  ASSERT_FALSE(unit.ok());
  EXPECT_EQ(unit.status().message(), "--atomic-unit 1024: expected 512 or 4096");
  auto crash = Parse({"--crash", "flood"});
  ASSERT_FALSE(crash.ok());
  EXPECT_EQ(crash.status().message(), "--crash: expected power-loss or process-kill, got 'flood'");
  auto cache = Parse({"-t", "bogus"});
  ASSERT_FALSE(cache.ok());
  EXPECT_THAT(cache.status().message(), HasSubstr("--cache: Invalid cache mode 'bogus'"));
  auto k = Parse({"-k", "65"});
  ASSERT_FALSE(k.ok());
  EXPECT_EQ(k.status().message(), "-k 65 is out of range (at most 64)");
}

}  // namespace
}  // namespace crashsim::tools
