// A trace's settings lines (trace_settings.h, FORMAT.md).
#include "traces/trace_settings.h"

#include <fmt/format.h>

#include "traces/line_reader.h"
#include "traces/trace.h"

namespace crashsim::traces {
namespace {

// The key=value words of one line, each set through SetSetting; an error names the line.
Status SetKeys(const LineReader& r, const KeyValues& kv,
               std::initializer_list<std::string_view> keys, ExploreSettings& s) {
  for (std::string_view key : keys) {
    std::optional<std::string_view> value = kv.Get(key);
    if (!value) continue;  // an optional key left out
    if (Status st = SetSetting(s, key, *value); !st.ok()) return r.Error(st.message());
  }
  return Status::Ok();
}

// A line of one word, set as setting `key`.
Status SetOneWord(LineReader& r, std::string_view key, std::string_view shape, ExploreSettings& s,
                  std::vector<std::string>* comments = nullptr) {
  ASSIGN_OR_RETURN(auto w, r.Expect(key, shape, comments));
  RETURN_IF_ERROR(ExpectCount(r, w, 1, shape));
  if (Status st = SetSetting(s, key, w[0]); !st.ok()) return r.Error(st.message());
  return Status::Ok();
}

constexpr std::string_view kModelShape =
    "model order=any|prefix tears=none|prefix|any content=old-or-new|garbage unit=512|4096";
constexpr std::string_view kExploreShape =
    "explore seed=N k=N budget=N samples=N metadata-first=on|off";
constexpr std::string_view kCheckShape =
    "check writes-after-repair=on|off repair-crash-states=N [backing=raw|qcow2] "
    "[fault=KIND#N:EIO|ENOSPC]";

}  // namespace

std::string TraceSettingsText(const ExploreSettings& s, uint64_t disk_size) {
  ExploreSettings sized = s;
  sized.image.size = disk_size;
  std::string out;
  out += fmt::format("image {}\ncache {}\ncrash {}\n", SettingValue(sized, "image"),
                     SettingValue(s, "cache"), SettingValue(s, "crash"));
  out += "model " + SettingsText(s, {"order", "tears", "content", "unit"}) + "\n";
  out += "explore " + SettingsText(s, {"seed", "k", "budget", "samples", "metadata-first"}) + "\n";
  out += "check " + SettingsText(s, {"writes-after-repair", "repair-crash-states"});
  if (s.backing != BackingKind::kNone) out += " " + SettingsText(s, {"backing"});
  if (s.fault) out += " " + SettingsText(s, {"fault"});
  return out + "\n";
}

Status ParseTraceSettings(LineReader& r, ExploreSettings& s, std::vector<std::string>& comments) {
  RETURN_IF_ERROR(SetOneWord(r, "image", "image OPTIONS", s, &comments));
  for (std::string& c : comments) c = Unescape(c);
  RETURN_IF_ERROR(SetOneWord(r, "cache", "cache MODE", s));
  RETURN_IF_ERROR(SetOneWord(r, "crash", "crash power-loss|process-kill", s));
  {
    ASSIGN_OR_RETURN(auto w, r.Expect("model", kModelShape));
    ASSIGN_OR_RETURN(KeyValues kv,
                     KeyValues::Parse(r, w, {"order", "tears", "content", "unit"}, kModelShape));
    RETURN_IF_ERROR(SetKeys(r, kv, {"order", "tears", "content", "unit"}, s));
  }
  {
    ASSIGN_OR_RETURN(auto w, r.Expect("explore", kExploreShape));
    ASSIGN_OR_RETURN(KeyValues kv,
                     KeyValues::Parse(r, w, {"seed", "k", "budget", "samples", "metadata-first"},
                                      kExploreShape));
    RETURN_IF_ERROR(SetKeys(r, kv, {"seed", "k", "budget", "samples", "metadata-first"}, s));
  }
  {
    ASSIGN_OR_RETURN(auto w, r.Expect("check", kCheckShape));
    ASSIGN_OR_RETURN(KeyValues kv,
                     KeyValues::Parse(r, w, {"writes-after-repair", "repair-crash-states"},
                                      kCheckShape, {"backing", "fault"}));
    RETURN_IF_ERROR(
        SetKeys(r, kv, {"writes-after-repair", "repair-crash-states", "backing", "fault"}, s));
  }
  return Status::Ok();
}

}  // namespace crashsim::traces
