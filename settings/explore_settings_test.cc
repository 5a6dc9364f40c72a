#include "settings/explore_settings.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace crashsim {
namespace {

using ::testing::HasSubstr;

// Settings with every field away from its default, each set through its text.
ExploreSettings Unusual() {
  ExploreSettings s;
  const std::pair<const char*, const char*> words[] = {
      {"image", "compat=1.1,lazy_refcounts=on,cluster_size=4096,refcount_bits=64"},
      {"backing", "qcow2"},
      {"cache", "directsync"},
      {"crash", "process-kill"},
      {"order", "prefix"},
      {"tears", "none"},
      {"content", "garbage"},
      {"unit", "4096"},
      {"seed", "0x2a"},
      {"k", "2"},
      {"budget", "7"},
      {"samples", "3"},
      {"metadata-first", "off"},
      {"writes-after-repair", "off"},
      {"repair-crash-states", "5"},
      {"fault", "write#3:EIO"},
  };
  for (const auto& [key, value] : words) {
    Status st = SetSetting(s, key, value);
    EXPECT_TRUE(st.ok()) << key << "=" << value << ": " << st.ToString();
  }
  return s;
}

TEST(ExploreSettings, EveryKeyRoundTripsThroughItsText) {
  const ExploreSettings unusual = Unusual();
  EXPECT_EQ(unusual.selection.seed, 42u);
  EXPECT_EQ(unusual.cache_mode, CacheMode::kDirectsync);
  EXPECT_EQ(unusual.selection.kind, simdisk::CrashKind::kProcessKill);
  EXPECT_EQ(unusual.backing, BackingKind::kQcow2);
  ASSERT_TRUE(unusual.fault.has_value());
  for (std::string_view key : SettingKeys()) {
    ExploreSettings s;
    ASSERT_NE(SettingValue(s, key), SettingValue(unusual, key)) << key << " is not exercised";
    ASSERT_TRUE(SetSetting(s, key, SettingValue(unusual, key)).ok()) << key;
    EXPECT_EQ(SettingValue(s, key), SettingValue(unusual, key)) << key;
  }
}

TEST(ExploreSettings, EqualityComparesEverySetting) {
  const ExploreSettings unusual = Unusual();
  EXPECT_EQ(unusual, Unusual());
  for (std::string_view key : SettingKeys()) {
    ExploreSettings s;
    ASSERT_TRUE(SetSetting(s, key, SettingValue(unusual, key)).ok());
    EXPECT_NE(s, ExploreSettings{}) << key;
  }
}

TEST(ExploreSettings, BadValuesNameTheKeyAndChangeNothing) {
  const std::pair<const char*, const char*> bad[] = {
      {"cache", "sometimes"},
      {"crash", "meteor"},
      {"order", "sideways"},
      {"tears", "all"},
      {"content", "zeros"},
      {"unit", "1000"},
      {"unit", "256"},
      {"unit", "0x200000"},
      {"k", "65"},
      {"seed", "-1"},
      {"budget", "12x"},
      {"samples", ""},
      {"metadata-first", "yes"},
      {"writes-after-repair", "1"},
      {"repair-crash-states", "9999999"},
      {"backing", "vmdk"},
      {"fault", "write#x:EIO"},
      {"image", "cluster_size=3"},
      {"image", "backing_file=/etc/passwd"},
  };
  for (const auto& [key, value] : bad) {
    ExploreSettings s = Unusual();
    Status st = SetSetting(s, key, value);
    EXPECT_FALSE(st.ok()) << key << "=" << value;
    EXPECT_THAT(st.message(), HasSubstr(std::string(key) == "image" ? "image options" : key))
        << st.message();
    EXPECT_EQ(s, Unusual()) << key << "=" << value << " changed the settings";
  }
  ExploreSettings s;
  Status st = SetSetting(s, "colour", "blue");
  EXPECT_FALSE(st.ok());
  EXPECT_THAT(st.message(), HasSubstr("unknown setting 'colour'"));
}

TEST(ExploreSettings, EachValueHasOneSpelling) {
  // The command line's short forms (power, kill) are its flags' aliases (tools/settings_flags.h),
  // not settings: a trace spells the crash kind one way.
  ExploreSettings s;
  EXPECT_FALSE(SetSetting(s, "crash", "kill").ok());
  EXPECT_FALSE(SetSetting(s, "crash", "power").ok());
  EXPECT_FALSE(SetSetting(s, "metadata-first", "true").ok());
  EXPECT_FALSE(SetSetting(s, "cache", "WriteBack").ok());
  ASSERT_TRUE(SetSetting(s, "crash", "process-kill").ok());
  EXPECT_EQ(SettingValue(s, "crash"), "process-kill");
}

TEST(ExploreSettings, SettingsTextIsKeyValueWords) {
  ExploreSettings s;
  EXPECT_EQ(SettingsText(s, {"cache", "k", "metadata-first", "fault"}),
            "cache=writethrough k=1 metadata-first=on fault=none");
}

TEST(ExploreSettings, PresetsDifferOnlyInTheirBudgets) {
  const ExploreSettings plain;
  const ExploreSettings cli = PresetSettings(SettingsPreset::kExplore);
  const ExploreSettings property = PresetSettings(SettingsPreset::kProperty);
  const ExploreSettings validate = PresetSettings(SettingsPreset::kValidate);
  EXPECT_EQ(cli.repair_crash_states, 4u);
  EXPECT_EQ(cli.selection.seed, 1u);
  EXPECT_EQ(property.selection.exhaustive_budget, 64u);
  EXPECT_EQ(property.selection.samples, 2u);
  EXPECT_EQ(property.repair_crash_states, 2u);
  EXPECT_EQ(validate.selection.exhaustive_budget, 2u);
  EXPECT_EQ(validate.selection.samples, 1u);
  EXPECT_EQ(validate.selection.seed, 1u);
  for (const ExploreSettings* preset : {&cli, &property, &validate}) {
    for (std::string_view key : {"image", "cache", "crash", "order", "tears", "content", "unit",
                                 "k", "metadata-first", "writes-after-repair", "backing"}) {
      EXPECT_EQ(SettingValue(*preset, key), SettingValue(plain, key)) << key;
    }
  }
}

TEST(ExploreSettings, EnumerationFollowsTheSettings) {
  const ExploreSettings s = Unusual();
  const simdisk::EnumerationOptions e = EnumerationOptionsFor(s);
  EXPECT_EQ(e.selection.kind, simdisk::CrashKind::kProcessKill);
  EXPECT_EQ(e.selection.model.order, simdisk::OrderModel::kPrefix);
  EXPECT_EQ(e.selection.model.tears, simdisk::TearShape::kNone);
  EXPECT_EQ(e.selection.model.content, simdisk::TearContent::kGarbage);
  EXPECT_EQ(e.selection.k, 2u);
  EXPECT_EQ(e.selection.exhaustive_budget, 7u);
  EXPECT_EQ(e.selection.samples, 3u);
  EXPECT_EQ(e.selection.seed, 42u);
  EXPECT_EQ(e.exhaustive_tags, simdisk::kAllTags);  // metadata-first=off
  EXPECT_FALSE(e.dedupe);
  EXPECT_EQ(EnumerationOptionsFor(ExploreSettings{}).exhaustive_tags, simdisk::kMetadataTags);
}

}  // namespace
}  // namespace crashsim
