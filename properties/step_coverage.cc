#include "properties/step_coverage.h"

#include <fmt/format.h>

namespace crashsim {
namespace {

bool IsWrite(const simdisk::OpRecord& op) { return op.ok() && op.kind == simdisk::OpKind::kWrite; }

}  // namespace

void StepCoverage::AddRun(const simdisk::Recording& recording) {
  for (const simdisk::OpRecord& op : recording.ops()) {
    if (!IsWrite(op)) continue;
    ++run_step[op.step < kDurableStepCount ? op.step : 0];
    ++run_tag[static_cast<int>(op.tag)];
  }
}

void StepCoverage::Add(const simdisk::Recording& recording, const simdisk::CrashState& state) {
  ++states;
  const auto& ops = recording.ops();
  for (uint64_t seq = state.point; seq > 0; --seq) {
    const simdisk::OpRecord& op = ops[seq - 1];
    if (!IsWrite(op)) continue;
    ++after_step[op.step < kDurableStepCount ? op.step : 0];
    ++after_tag[static_cast<int>(op.tag)];
    break;
  }
  for (const simdisk::WriteFate& fate : state.fates) {
    const simdisk::OpRecord& op = ops[fate.op];
    if (op.kind != simdisk::OpKind::kWrite) continue;  // a resize
    ++lost_step[op.step < kDurableStepCount ? op.step : 0];
    ++lost_tag[static_cast<int>(op.tag)];
  }
}

StepCoverage& StepCoverage::operator+=(const StepCoverage& other) {
  states += other.states;
  for (int i = 0; i < kDurableStepCount; ++i) {
    after_step[i] += other.after_step[i];
    lost_step[i] += other.lost_step[i];
    run_step[i] += other.run_step[i];
  }
  for (int i = 0; i < kIoTagCount; ++i) {
    after_tag[i] += other.after_tag[i];
    lost_tag[i] += other.lost_tag[i];
    run_tag[i] += other.run_tag[i];
  }
  return *this;
}

std::vector<DurableStep> StepCoverage::StepsNeverCrashed() const {
  std::vector<DurableStep> never;
  for (int i = 1; i < kDurableStepCount; ++i) {
    if (after_step[i] == 0) never.push_back(static_cast<DurableStep>(i));
  }
  return never;
}

std::string StepCoverage::Table() const {
  std::string out = fmt::format("{:<22} {:>12} {:>14} {:>14}\n", "step / structure", "run writes",
                                "crashed after", "lost or torn");
  for (int i = 1; i < kDurableStepCount; ++i) {
    out +=
        fmt::format("{:<22} {:>12} {:>14} {:>14}\n", DurableStepName(static_cast<DurableStep>(i)),
                    run_step[i], after_step[i], lost_step[i]);
  }
  if (run_step[0] != 0) {
    out += fmt::format("{:<22} {:>12} {:>14} {:>14}\n", "(no step named)", run_step[0],
                       after_step[0], lost_step[0]);
  }
  for (int i = 1; i < kIoTagCount; ++i) {
    out += fmt::format("{:<22} {:>12} {:>14} {:>14}\n",
                       fmt::format("[{}]", IoTagName(static_cast<IoTag>(i))), run_tag[i],
                       after_tag[i], lost_tag[i]);
  }
  std::string never;
  for (DurableStep step : StepsNeverCrashed()) {
    never += fmt::format("{}{}", never.empty() ? "" : ", ", DurableStepName(step));
  }
  out += "steps no state crashed after: " + (never.empty() ? std::string("none") : never) + "\n";
  return out;
}

}  // namespace crashsim
