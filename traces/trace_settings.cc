// A trace's settings lines (trace_settings.h, FORMAT.md).
#include "traces/trace_settings.h"

#include <fmt/format.h>

#include "traces/line_reader.h"
#include "traces/trace.h"

namespace crashsim::traces {
namespace {

const char* OrderWord(simdisk::OrderModel o) {
  return o == simdisk::OrderModel::kPrefix ? "prefix" : "any";
}
const char* TearsWord(simdisk::TearShape t) {
  switch (t) {
    case simdisk::TearShape::kNone:
      return "none";
    case simdisk::TearShape::kPrefix:
      return "prefix";
    case simdisk::TearShape::kAnySubset:
      return "any";
  }
  return "?";
}
const char* ContentWord(simdisk::TearContent c) {
  return c == simdisk::TearContent::kGarbage ? "garbage" : "old-or-new";
}
const char* OnOff(bool b) { return b ? "on" : "off"; }

}  // namespace

TraceSettings SettingsFrom(const ExploreOptions& o) {
  TraceSettings s;
  s.image = o.image;
  s.cache_mode = o.cache_mode;
  s.crash = o.crash;
  s.model = o.model;
  s.atomic_unit = o.atomic_unit;
  s.seed = o.seed;
  s.k = o.k;
  s.exhaustive_budget = o.exhaustive_budget;
  s.samples = o.samples;
  s.metadata_first = o.metadata_first;
  s.writes_after_repair = o.writes_after_repair;
  s.repair_crash_states = o.repair_crash_states;
  s.backing = o.backing;
  s.fault = o.fault;
  return s;
}

bool TraceSettings::operator==(const TraceSettings& o) const {
  return image.ToString() == o.image.ToString() && cache_mode == o.cache_mode && crash == o.crash &&
         model.order == o.model.order && model.tears == o.model.tears &&
         model.content == o.model.content && atomic_unit == o.atomic_unit && seed == o.seed &&
         k == o.k && exhaustive_budget == o.exhaustive_budget && samples == o.samples &&
         metadata_first == o.metadata_first && writes_after_repair == o.writes_after_repair &&
         repair_crash_states == o.repair_crash_states && backing == o.backing &&
         fault.has_value() == o.fault.has_value() &&
         (!fault || simdisk::FaultText(*fault) == simdisk::FaultText(*o.fault));
}

ExploreOptions ExploreOptionsFor(const TraceSettings& s) {
  ExploreOptions o;
  o.image = s.image;
  o.cache_mode = s.cache_mode;
  o.crash = s.crash;
  o.model = s.model;
  o.atomic_unit = s.atomic_unit;
  o.seed = s.seed;
  o.k = s.k;
  o.exhaustive_budget = s.exhaustive_budget;
  o.samples = s.samples;
  o.metadata_first = s.metadata_first;
  o.writes_after_repair = s.writes_after_repair;
  o.repair_crash_states = s.repair_crash_states;
  o.backing = s.backing;
  o.fault = s.fault;
  o.max_failures = 0;
  return o;
}

std::string TraceSettingsText(const TraceSettings& s, uint64_t disk_size) {
  CreateOptions image = s.image;
  image.size = disk_size;
  std::string out;
  out += fmt::format("image {}\ncache {}\ncrash {}\n", image.ToString(),
                     CacheModeName(s.cache_mode), simdisk::CrashKindName(s.crash));
  out += fmt::format("model order={} tears={} content={} unit={}\n", OrderWord(s.model.order),
                     TearsWord(s.model.tears), ContentWord(s.model.content), s.atomic_unit);
  out += fmt::format("explore seed={} k={} budget={} samples={} metadata-first={}\n", s.seed, s.k,
                     s.exhaustive_budget, s.samples, OnOff(s.metadata_first));
  out += fmt::format("check writes-after-repair={} repair-crash-states={}{}{}\n",
                     OnOff(s.writes_after_repair), s.repair_crash_states,
                     s.backing == BackingKind::kNone
                         ? std::string()
                         : std::string(" backing=") + BackingKindName(s.backing),
                     s.fault ? " fault=" + simdisk::FaultText(*s.fault) : std::string());
  return out;
}

Status ParseTraceSettings(LineReader& r, TraceSettings& s, std::vector<std::string>& comments) {
  {
    ASSIGN_OR_RETURN(auto w, r.Expect("image", "image OPTIONS", &comments));
    for (std::string& c : comments) c = Unescape(c);
    RETURN_IF_ERROR(ExpectCount(r, w, 1, "image OPTIONS"));
    CreateOptions image;
    if (Status st = ParseCreateOptions(w[0], image); !st.ok()) {
      return r.Error("image options: " + st.message());
    }
    if (Status st = image.Validate(); !st.ok()) return r.Error("image options: " + st.message());
    if (!image.backing_file.empty()) return r.Error("image options: backing files are not traced");
    s.image = image;
  }
  {
    ASSIGN_OR_RETURN(auto w, r.Expect("cache", "cache MODE"));
    RETURN_IF_ERROR(ExpectCount(r, w, 1, "cache MODE"));
    auto mode = ParseCacheMode(w[0]);
    if (!mode.ok()) return r.Error(mode.status().message());
    s.cache_mode = *mode;
  }
  {
    ASSIGN_OR_RETURN(auto w, r.Expect("crash", "crash power-loss|process-kill"));
    RETURN_IF_ERROR(ExpectCount(r, w, 1, "crash power-loss|process-kill"));
    if (w[0] == "power-loss") {
      s.crash = simdisk::CrashKind::kPowerLoss;
    } else if (w[0] == "process-kill") {
      s.crash = simdisk::CrashKind::kProcessKill;
    } else {
      return r.Error(fmt::format("expected crash kind power-loss or process-kill, got '{}'",
                                 LineReader::Clip(w[0])));
    }
  }
  {
    constexpr std::string_view kShape =
        "model order=any|prefix tears=none|prefix|any content=old-or-new|garbage unit=512|4096";
    ASSIGN_OR_RETURN(auto w, r.Expect("model", kShape));
    ASSIGN_OR_RETURN(KeyValues kv,
                     KeyValues::Parse(r, w, {"order", "tears", "content", "unit"}, kShape));
    std::string_view order = *kv.Get("order"), tears = *kv.Get("tears"),
                     content = *kv.Get("content");
    if (order == "any") {
      s.model.order = simdisk::OrderModel::kAnySubset;
    } else if (order == "prefix") {
      s.model.order = simdisk::OrderModel::kPrefix;
    } else {
      return r.Error(
          fmt::format("order: expected any or prefix, got '{}'", LineReader::Clip(order)));
    }
    if (tears == "none") {
      s.model.tears = simdisk::TearShape::kNone;
    } else if (tears == "prefix") {
      s.model.tears = simdisk::TearShape::kPrefix;
    } else if (tears == "any") {
      s.model.tears = simdisk::TearShape::kAnySubset;
    } else {
      return r.Error(
          fmt::format("tears: expected none, prefix or any, got '{}'", LineReader::Clip(tears)));
    }
    if (content == "old-or-new") {
      s.model.content = simdisk::TearContent::kOldOrNew;
    } else if (content == "garbage") {
      s.model.content = simdisk::TearContent::kGarbage;
    } else {
      return r.Error(fmt::format("content: expected old-or-new or garbage, got '{}'",
                                 LineReader::Clip(content)));
    }
    ASSIGN_OR_RETURN(s.atomic_unit, Number(r, *kv.Get("unit"), "unit", kMaxTraceAtomicUnit));
    if (s.atomic_unit == 0 || (s.atomic_unit & (s.atomic_unit - 1)) != 0) {
      return r.Error(fmt::format("unit {} is not a power of two", s.atomic_unit));
    }
  }
  {
    constexpr std::string_view kShape =
        "explore seed=N k=N budget=N samples=N metadata-first=on|off";
    ASSIGN_OR_RETURN(auto w, r.Expect("explore", kShape));
    ASSIGN_OR_RETURN(
        KeyValues kv,
        KeyValues::Parse(r, w, {"seed", "k", "budget", "samples", "metadata-first"}, kShape));
    ASSIGN_OR_RETURN(s.seed, Number(r, *kv.Get("seed"), "seed"));
    ASSIGN_OR_RETURN(s.k, Number(r, *kv.Get("k"), "k", 64));
    ASSIGN_OR_RETURN(s.exhaustive_budget, Number(r, *kv.Get("budget"), "budget"));
    ASSIGN_OR_RETURN(s.samples, Number(r, *kv.Get("samples"), "samples"));
    ASSIGN_OR_RETURN(s.metadata_first, OnOffWord(r, *kv.Get("metadata-first"), "metadata-first"));
  }
  {
    constexpr std::string_view kShape =
        "check writes-after-repair=on|off repair-crash-states=N [backing=raw|qcow2] "
        "[fault=KIND#N:EIO|ENOSPC]";
    ASSIGN_OR_RETURN(auto w, r.Expect("check", kShape));
    // backing= and fault= are optional, so they are taken out before the required keys.
    for (auto it = w.begin(); it != w.end(); ++it) {
      if (!it->starts_with("fault=")) continue;
      auto fault = simdisk::ParseFault(it->substr(6));
      if (!fault.ok()) return r.Error(fault.status().message());
      s.fault = *fault;
      w.erase(it);
      break;
    }
    for (auto it = w.begin(); it != w.end(); ++it) {
      if (!it->starts_with("backing=")) continue;
      std::string_view kind = it->substr(8);
      if (kind == "raw") {
        s.backing = BackingKind::kRaw;
      } else if (kind == "qcow2") {
        s.backing = BackingKind::kQcow2;
      } else if (kind == "none") {
        s.backing = BackingKind::kNone;
      } else {
        return r.Error(
            fmt::format("backing: expected raw, qcow2 or none, got '{}'", LineReader::Clip(kind)));
      }
      w.erase(it);
      break;
    }
    ASSIGN_OR_RETURN(
        KeyValues kv,
        KeyValues::Parse(r, w, {"writes-after-repair", "repair-crash-states"}, kShape));
    ASSIGN_OR_RETURN(s.writes_after_repair,
                     OnOffWord(r, *kv.Get("writes-after-repair"), "writes-after-repair"));
    ASSIGN_OR_RETURN(s.repair_crash_states,
                     Number(r, *kv.Get("repair-crash-states"), "repair-crash-states", 1 << 20));
  }
  return Status::Ok();
}

}  // namespace crashsim::traces
