#include "simdisk/fault_plan.h"

#include <algorithm>

#include <fmt/format.h>

namespace crashsim::simdisk {

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
    return Status(rule.code, fmt::format("simdisk: injected {} on {} at {:#x}+{}",
                                         StatusCodeName(rule.code), OpKindName(kind), offset,
                                         length));
  }
  return Status::Ok();
}

bool FaultPlan::FailsReads() const {
  return std::any_of(rules_.begin(), rules_.end(),
                     [](const Armed& a) { return a.rule.kind == OpKind::kRead; });
}

}  // namespace crashsim::simdisk
