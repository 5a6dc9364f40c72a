#include "simdisk/crash_state.h"

#include <fmt/format.h>

#include <charconv>

#include "simdisk/hash.h"

namespace crashsim::simdisk {

namespace {

std::optional<uint64_t> ParseNumber(std::string_view text, int base) {
  uint64_t value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value, base);
  if (ec != std::errc() || end != text.data() + text.size() || text.empty()) return std::nullopt;
  return value;
}

Status Bad(std::string_view text, std::string_view why) {
  return Status::InvalidArgument(fmt::format("crash state \"{}\": {}", text, why));
}

// "9:3f0" or "11:1/2" -> fate.
std::optional<WriteFate> ParseTear(std::string_view value) {
  const size_t colon = value.find(':');
  if (colon == std::string_view::npos) return std::nullopt;
  auto op = ParseNumber(value.substr(0, colon), 10);
  std::string_view masks = value.substr(colon + 1);
  const size_t slash = masks.find('/');
  auto kept = UnitMask::FromHex(masks.substr(0, slash));
  std::optional<UnitMask> garbage = UnitMask();
  if (slash != std::string_view::npos) garbage = UnitMask::FromHex(masks.substr(slash + 1));
  if (!op || !kept || !garbage) return std::nullopt;
  return WriteFate{*op, std::move(*kept), std::move(*garbage)};
}

}  // namespace

const char* CrashKindName(CrashKind kind) {
  return kind == CrashKind::kPowerLoss ? "power-loss" : "process-kill";
}

std::optional<CrashKind> ParseCrashKind(std::string_view name) {
  if (name == "power-loss") return CrashKind::kPowerLoss;
  if (name == "process-kill") return CrashKind::kProcessKill;
  return std::nullopt;
}

bool CrashState::HasGarbage() const {
  for (const WriteFate& fate : fates) {
    if (!fate.garbage.empty()) return true;
  }
  return false;
}

std::string CrashState::ToText() const {
  std::string text = fmt::format("{}@{}", CrashKindName(kind), point);
  for (const WriteFate& fate : fates) {
    if (fate.dropped()) {
      text += fmt::format(" drop={}", fate.op);
    } else {
      text += fmt::format(" tear={}:{}", fate.op, fate.kept.ToHex());
      if (!fate.garbage.empty()) text += fmt::format("/{}", fate.garbage.ToHex());
    }
  }
  if (HasGarbage()) text += fmt::format(" gseed={:x}", garbage_seed);
  return text;
}

Result<CrashState> CrashState::Parse(std::string_view text) {
  CrashState state;
  size_t pos = 0;
  bool first = true;
  while (pos < text.size()) {
    const size_t end = std::min(text.find(' ', pos), text.size());
    const std::string_view token = text.substr(pos, end - pos);
    pos = end + 1;
    if (token.empty()) continue;
    if (first) {
      first = false;
      const size_t at = token.find('@');
      const std::string_view kind = token.substr(0, at);
      const std::optional<CrashKind> parsed = ParseCrashKind(kind);
      if (!parsed) return Bad(text, "expected power-loss@N or process-kill@N");
      state.kind = *parsed;
      auto point =
          at == std::string_view::npos ? std::nullopt : ParseNumber(token.substr(at + 1), 10);
      if (!point) return Bad(text, "bad crash point");
      state.point = *point;
      continue;
    }
    const size_t eq = token.find('=');
    const std::string_view key = token.substr(0, eq);
    const std::string_view value = eq == std::string_view::npos ? "" : token.substr(eq + 1);
    std::optional<WriteFate> fate;
    if (key == "drop") {
      if (auto op = ParseNumber(value, 10)) fate = WriteFate{*op, {}, {}};
    } else if (key == "tear") {
      fate = ParseTear(value);
      if (fate && fate->dropped()) return Bad(text, "a tear that keeps nothing is a drop");
    } else if (key == "gseed") {
      auto seed = ParseNumber(value, 16);
      if (!seed) return Bad(text, "bad gseed");
      state.garbage_seed = *seed;
      continue;
    } else {
      return Bad(text, fmt::format("unknown field \"{}\"", key));
    }
    if (!fate) return Bad(text, fmt::format("bad field \"{}\"", token));
    if (!state.fates.empty() && state.fates.back().op >= fate->op) {
      return Bad(text, "fates must name ops in increasing order");
    }
    if (fate->kept.Intersects(fate->garbage)) return Bad(text, "a unit both kept and garbage");
    state.fates.push_back(std::move(*fate));
  }
  if (first) return Bad(text, "empty");
  if (state.kind == CrashKind::kProcessKill && !state.fates.empty()) {
    return Bad(text, "a process kill loses no writes");
  }
  return state;
}

uint64_t CrashState::Hash() const { return HashString(ToText()); }

}  // namespace crashsim::simdisk
