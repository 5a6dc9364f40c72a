#include "properties/fault_sweep.h"

#include <fmt/format.h>

#include <algorithm>

#include "engine/image.h"
#include "simdisk/fault_plan.h"
#include "simdisk/sim_disk.h"

namespace crashsim {

std::string FaultSweepReport::Summary() const {
  return fmt::format(
      "I/O-error sweep: {} faults injected (reads {}, writes {}, flushes {}, "
      "resizes {}), {} reached the caller, {} crash states checked after them, {} "
      "dirty images left had their repair failed at each device op ({} failed "
      "repairs), {} failed creates, {} failures\n",
      faults, by_kind[0], by_kind[1], by_kind[2], by_kind[3], surfaced, states, dirty_ends,
      failed_repairs, create_faults, failures.size());
}

namespace {

size_t KindIndex(simdisk::OpKind kind) {
  switch (kind) {
    case simdisk::OpKind::kRead:
      return 0;
    case simdisk::OpKind::kWrite:
      return 1;
    case simdisk::OpKind::kFlush:
      return 2;
    default:
      return 3;
  }
}

// Image::Create failed at each of its device ops: the error must reach its caller. Returns the
// first failure, or "".
std::string SweepCreate(CreateOptions create, uint64_t atomic_unit, FaultSweepReport& report) {
  // The backing file only gives the size here, which the options already have.
  create.backing_file.clear();
  create.backing_format.clear();
  simdisk::SimDiskOptions so;
  so.atomic_unit = atomic_unit;
  so.hash_writes = false;
  for (Preallocation p : {Preallocation::kOff, Preallocation::kMetadata}) {
    create.preallocation = p;
    simdisk::SimDisk clean(so);
    if (!Image::Create(clean, create).ok()) continue;  // options this engine refuses
    for (const simdisk::FaultRule& rule : simdisk::EveryFaultOf(clean.recording())) {
      simdisk::SimDisk faulty(so);
      faulty.SetFaultPlan(simdisk::FaultPlan({rule}));
      Status st = Image::Create(faulty, create);
      ++report.create_faults;
      ++report.by_kind[KindIndex(rule.kind)];
      ++report.faults;
      const auto& ops = faulty.recording().ops();
      const bool fired =
          std::any_of(ops.begin(), ops.end(), [](const simdisk::OpRecord& op) { return !op.ok(); });
      const std::string what =
          fmt::format("{} in create ({})", simdisk::FaultText(rule), create.ToString());
      if (!fired) return what + ": the injected error never happened";
      if (st.ok()) return what + ": Image::Create returned success";
      ++report.surfaced;
    }
  }
  return "";
}

}  // namespace

Result<FaultSweepReport> SweepFaults(const Workload& workload, const ExploreOptions& base,
                                     uint64_t repair_sweeps,
                                     const std::function<void(const std::string&)>& progress) {
  ExploreOptions clean = base;
  clean.settings.fault.reset();
  ASSIGN_OR_RETURN(std::unique_ptr<Explorer> reference, Explorer::Record(workload, clean));
  FaultSweepReport report;
  // Notes a failure (with its run and state when there is one); true when the sweep should stop.
  auto fail = [&](const std::string& fault, const std::string& what,
                  std::unique_ptr<Explorer>* run = nullptr, StateResult state = {}) {
    report.failures.push_back(fault + ": " + what);
    if (run != nullptr && !report.failing_run) {
      report.failing_run = std::move(*run);
      report.failing_state = std::move(state);
      report.failing_index = report.failures.size() - 1;
    }
    return base.max_failures != 0 && report.failures.size() >= base.max_failures;
  };
  CreateOptions create = base.settings.image;
  create.size = workload.disk_size;
  if (base.shard_index == 0) {  // the create sweep is small: the first shard takes it
    if (progress) progress("create");
    if (std::string s = SweepCreate(create, base.settings.atomic_unit, report); !s.empty()) {
      if (fail("create", s)) return report;
    }
  }
  uint64_t index = 0;
  for (const simdisk::FaultRule& rule : simdisk::EveryFaultOf(reference->recording())) {
    if (index++ % base.shard_count != base.shard_index) continue;
    const std::string fault = simdisk::FaultText(rule);
    if (progress) progress(fault);
    ExploreOptions options = base;
    options.shard_index = 0;
    options.shard_count = 1;
    options.settings.fault = rule;
    ++report.faults;
    ++report.by_kind[KindIndex(rule.kind)];
    auto explorer = Explorer::Record(workload, options);
    if (!explorer.ok()) {
      if (fail(fault, "the run failed before the error: " + explorer.status().ToString())) break;
      continue;
    }
    const GuestRunResult& run = (*explorer)->run();
    // The run is the same as the reference run up to the fault, so the fault must fire.
    if (!run.fault) {
      if (fail(fault, "the injected error never happened")) break;
      continue;
    }
    // The image the run leaves: everything the device accepted (a process kill at its end, or
    // the power loss there that kept every pending write: the crash kind traces record).
    simdisk::CrashState end;
    end.kind = base.settings.selection.kind;
    end.point = (*explorer)->recording().op_count();
    if (!run.failure.empty()) {
      StateResult shown = (*explorer)->CheckState(end);  // carries the run's failure
      if (fail(fault, run.failure, &*explorer, std::move(shown))) break;
      continue;
    }
    ++report.surfaced;
    ExploreReport explored = (*explorer)->Run();
    report.states += explored.explored;
    if (!explored.ok()) {
      const StateResult& f = explored.failures.front();
      const std::string what =
          fmt::format("{} (the error hit {}: {}) at {}", f.detail, run.fault->call,
                      run.fault->returned.ToString(), f.state.ToText());
      if (fail(fault, what, &*explorer, f)) break;
      continue;
    }
    if (report.dirty_ends >= repair_sweeps) continue;
    uint64_t repairs = 0;
    std::string repair = (*explorer)->SweepRepairFaults(end, &repairs);
    report.failed_repairs += repairs;
    report.dirty_ends += repairs > 0;
    // (No trace for these: a trace replays a crash state's check, not a repair's faults.)
    if (!repair.empty() && fail(fault, repair)) break;
  }
  return report;
}

}  // namespace crashsim
