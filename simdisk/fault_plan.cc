#include "simdisk/fault_plan.h"

#include <fmt/format.h>

#include <algorithm>

namespace crashsim::simdisk {

namespace {

constexpr OpKind kFaultKinds[] = {OpKind::kRead, OpKind::kWrite, OpKind::kFlush, OpKind::kResize};
constexpr StatusCode kFaultCodes[] = {StatusCode::kIoError, StatusCode::kNoSpace};

const char* ErrnoName(StatusCode code) { return code == StatusCode::kNoSpace ? "ENOSPC" : "EIO"; }

}  // namespace

std::string FaultText(const FaultRule& rule) {
  INVARIANT(rule.count == 1 && !rule.tag.has_value());
  return fmt::format("{}#{}:{}", OpKindName(rule.kind), rule.skip, ErrnoName(rule.code));
}

Result<FaultRule> ParseFault(std::string_view text) {
  auto bad = [&](std::string_view why) {
    return Status::InvalidArgument(fmt::format(
        "fault '{}': {} (expected KIND#N:ERROR, KIND read, write, flush or resize, ERROR EIO or "
        "ENOSPC, e.g. write#3:EIO)",
        text.substr(0, 64), why));
  };
  const size_t hash = text.find('#');
  const size_t colon = text.rfind(':');
  if (hash == text.npos || colon == text.npos || colon < hash) return bad("malformed");
  FaultRule rule;
  const std::string_view kind = text.substr(0, hash);
  bool known = false;
  for (OpKind k : kFaultKinds) {
    if (kind == OpKindName(k)) {
      rule.kind = k;
      known = true;
    }
  }
  if (!known) return bad("unknown operation kind");
  const std::string_view number = text.substr(hash + 1, colon - hash - 1);
  if (number.empty() || number.size() > 19 ||
      number.find_first_not_of("0123456789") != number.npos) {
    return bad("the op number is not a decimal number");
  }
  if (number.size() > 1 && number[0] == '0') return bad("the op number has a leading zero");
  rule.skip = std::stoull(std::string(number));
  const std::string_view code = text.substr(colon + 1);
  if (code == "EIO") {
    rule.code = StatusCode::kIoError;
  } else if (code == "ENOSPC") {
    rule.code = StatusCode::kNoSpace;
  } else {
    return bad("unknown error");
  }
  return rule;
}

std::vector<FaultRule> EveryFaultOf(const Recording& recording) {
  std::vector<FaultRule> rules;
  for (OpKind kind : kFaultKinds) {
    uint64_t count = 0;
    for (const OpRecord& op : recording.ops()) count += op.kind == kind && op.ok();
    for (uint64_t n = 0; n < count; ++n) {
      for (StatusCode code : kFaultCodes) {
        rules.push_back({.kind = kind, .tag = std::nullopt, .skip = n, .count = 1, .code = code});
      }
    }
  }
  return rules;
}

FaultPlan::FaultPlan(std::vector<FaultRule> rules) {
  for (FaultRule& rule : rules) Add(rule);
}

FaultPlan FaultPlan::FailNth(OpKind kind, uint64_t n, StatusCode code) {
  FaultRule rule;
  rule.kind = kind;
  rule.skip = n;
  rule.code = code;
  return FaultPlan({rule});
}

void FaultPlan::Add(FaultRule rule) {
  INVARIANT(rule.code == StatusCode::kIoError || rule.code == StatusCode::kNoSpace);
  rules_.push_back({rule});
}

Status FaultPlan::Check(OpKind kind, IoTag tag, uint64_t offset, uint64_t length) {
  for (Armed& armed : rules_) {
    const FaultRule& rule = armed.rule;
    if (rule.kind != kind || (rule.tag.has_value() && *rule.tag != tag)) continue;
    if (rule.count != 0 && armed.failed >= rule.count) continue;
    if (armed.seen++ < rule.skip) continue;
    ++armed.failed;
    return Status(rule.code,
                  fmt::format("simdisk: injected {} on {} at {:#x}+{}", StatusCodeName(rule.code),
                              OpKindName(kind), offset, length));
  }
  return Status::Ok();
}

bool FaultPlan::FailsReads() const {
  return std::any_of(rules_.begin(), rules_.end(),
                     [](const Armed& a) { return a.rule.kind == OpKind::kRead; });
}

}  // namespace crashsim::simdisk
