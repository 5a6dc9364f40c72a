// validate's findings (validate.h): a failing crash state minimised, its evidence kept as files
// and a version 2 trace that replays without the target; and the run's summary.
#include <fmt/format.h>

#include <filesystem>

#include "engine/atomic_output_file.h"
#include "engine/posix_device.h"
#include "simdisk/materialise.h"
#include "traces/embedded.h"
#include "traces/trace.h"
#include "validate/device_files.h"
#include "validate/validate.h"

namespace crashsim::validate {
namespace fs = std::filesystem;

ExploreSettings Validator::TraceSettingsOf() const {
  // What this run did: validate applies the image, cache mode and state selection; it injects no
  // fault, creates no backing file, and checks each state as CheckCrashedImage does (no writes
  // after repair, no repair crashes: the target's own repairs are studied instead).
  ExploreSettings s = options_.settings;
  s.image.size = report_.workload.disk_size;
  s.atomic_unit = recording_->atomic_unit();
  s.backing = BackingKind::kNone;
  s.fault.reset();
  s.writes_after_repair = false;
  s.repair_crash_states = 0;
  // The target's create command may choose options these settings do not (a .target file's
  // cluster_size=4096, say): the trace names the image it made.
  if (const std::optional<QcowHeader>& header = created_header_) {
    s.image.version = header->version;
    s.image.cluster_size = header->cluster_size();
    s.image.refcount_bits = header->refcount_bits();
    s.image.lazy_refcounts = header->lazy_refcounts();
    s.image.extended_l2 = header->extended_l2();
    s.image.compression_type = header->compression_type;
  }
  return s;
}

std::string Validator::WriteStateTrace(const std::string& dir, const simdisk::CrashState& state,
                                       const std::string& note) {
  Outcome outcome = Outcome::kClean;
  bool dirty = false;
  StateResult r;
  r.state = state;
  r.detail = CheckProperty(state, &outcome, &dirty);
  r.outcome = r.detail.empty() ? outcome : Outcome::kFailure;
  r.dirty = dirty;
  traces::Trace trace =
      traces::MakeEmbeddedTrace(report_.target_name, report_.target_version, report_.workload,
                                TraceSettingsOf(), *recording_, r);
  trace.comments.push_back(
      fmt::format("crashsim validate --target {}: {}", report_.target_name, report_.config));
  if (!note.empty()) trace.comments.push_back(note);
  const std::string path = dir + "/trace.cstrace";
  if (!traces::WriteTraceFile(path, trace).ok()) return "";
  return path;
}

void Validator::RecordFinding(const simdisk::CrashState& state, const std::string& failure) {
  simdisk::CrashState best = state;
  std::string detail = failure;
  if (options_.minimise) {
    for (bool changed = true; changed;) {
      changed = false;
      for (size_t i = 0; i < best.fates.size(); ++i) {
        simdisk::CrashState candidate = best;
        candidate.fates.erase(candidate.fates.begin() + static_cast<ptrdiff_t>(i));
        Outcome outcome;
        bool dirty;
        std::string f = CheckProperty(candidate, &outcome, &dirty);
        if (!f.empty()) {
          best = candidate;
          detail = f;
          changed = true;
          break;
        }
      }
    }
  }
  ValidateFinding finding{best.ToText(), state.ToText(), detail, ""};
  if (!options_.trace_dir.empty()) {
    std::string slug = report_.config;
    std::replace(slug.begin(), slug.end(), ' ', '_');
    std::replace(slug.begin(), slug.end(), '=', '-');
    const std::string dir = fmt::format("{}/{}-{}-{}", options_.trace_dir, report_.target_name,
                                        slug, report_.findings.size());
    fs::create_directories(dir);
    // Each file appears whole or not at all (the finding is reported either way).
    auto medium = simdisk::Materialise(*recording_, best);
    if (medium.ok()) (void)SaveDeviceAsOutput(**medium, dir + "/crash.qcow2");
    (void)WriteFileAtomically(dir + "/workload.txt", report_.workload.ToText());
    std::string ops;
    for (const simdisk::OpRecord& op : recording_->ops()) ops += simdisk::OpRecordToText(op) + "\n";
    (void)WriteFileAtomically(dir + "/device-ops.txt", ops);
    (void)WriteFileAtomically(
        dir + "/finding.txt",
        fmt::format("target: {} ({})\nconfig: {}\nstate: {}\nas enumerated: {}\nproperty: {}\n",
                    report_.target_name, report_.target_version, report_.config, best.ToText(),
                    state.ToText(), detail));
    const std::string trace = WriteStateTrace(
        dir, best, best == state ? "" : "crash state minimised from " + state.ToText());
    (void)WriteFileAtomically(
        dir + "/repro.sh",
        "#!/bin/sh\n# The crash image is crash.qcow2 (the state above, materialised);\n"
        "# trace.cstrace rebuilds it from the recorded writes (crashsim replay / show).\n"
        "crashsim replay trace.cstrace\n"
        "qemu-img check -f qcow2 crash.qcow2\ncrashsim check crash.qcow2\n");
    finding.trace_path = trace.empty() ? dir : trace;
  }
  report_.findings.push_back(std::move(finding));
}

std::string Validator::FindingDir(const std::string& suffix, const std::string& image_file) {
  std::string slug = report_.config;
  std::replace(slug.begin(), slug.end(), ' ', '_');
  std::replace(slug.begin(), slug.end(), '=', '-');
  const std::string dir =
      fmt::format("{}/{}-{}-{}", options_.trace_dir, report_.target_name, slug, suffix);
  fs::create_directories(dir);
  // Each file appears whole or not at all (the finding is reported either way).
  auto image = PosixDevice::Open(image_file, PosixOpenOptions{.read_only = true});
  if (image.ok()) (void)SaveDeviceAsOutput(**image, dir + "/crash.qcow2");
  (void)WriteFileAtomically(dir + "/workload.txt", report_.workload.ToText());
  return dir;
}

void Validator::RecordRepairFinding(const std::string& repair, const std::string& command,
                                    const std::string& image_file, uint64_t point,
                                    const std::string& what) {
  ValidateFinding finding{fmt::format("crash point {}", point), "",
                          fmt::format("target repair '{}' ({}): {}", repair, command, what), ""};
  if (!options_.trace_dir.empty()) {
    const std::string dir = FindingDir("repair-" + repair, image_file);
    (void)WriteFileAtomically(
        dir + "/finding.txt",
        fmt::format("target: {} ({})\nconfig: {}\ncrash point: {}\nrepair: {}\nresult: {}\n",
                    report_.target_name, report_.target_version, report_.config, point, command,
                    what));
    if (current_state_) {
      (void)WriteStateTrace(
          dir, *current_state_,
          fmt::format("the crash state the target's repair '{}' started from", repair));
    }
    (void)WriteFileAtomically(
        dir + "/repro.sh",
        "#!/bin/sh\n# crash.qcow2: the dirty crash state before the repair (trace.cstrace\n"
        "# rebuilds it: crashsim replay --image crash.qcow2 trace.cstrace).\nset -x\n"
        "cp crash.qcow2 work.qcow2\nqemu-img check -r leaks work.qcow2; echo exit $?\n"
        "qemu-img info work.qcow2 | grep 'cleanly'\n"
        "qemu-io -c 'write -P 0xbb 2M 256k' work.qcow2\nqemu-img check work.qcow2\n");
    finding.trace_path = dir;
  }
  report_.findings.push_back(std::move(finding));
}

void Validator::RecordReadBackFinding(const std::string& image_file, uint64_t point,
                                      const std::string& what) {
  ValidateFinding finding{fmt::format("crash point {}", point), "",
                          fmt::format("target read-back ({}): {}", options_.target.read, what), ""};
  if (!options_.trace_dir.empty()) {
    const std::string dir =
        FindingDir(fmt::format("read-back-{}", report_.read_back_failures), image_file);
    (void)WriteFileAtomically(
        dir + "/finding.txt",
        fmt::format("target: {} ({})\nconfig: {}\ncrash point: {}\nread: {}\nresult: {}\n",
                    report_.target_name, report_.target_version, report_.config, point,
                    options_.target.read, what));
    if (current_state_) {
      (void)WriteStateTrace(dir, *current_state_, "the crash state the target read back");
    }
    finding.trace_path = dir;
  }
  report_.findings.push_back(std::move(finding));
}

// ---------------------------------------------------------------------------------------------

std::string ValidateReport::Summary() const {
  std::string out = fmt::format("target {} ({})\nconfig {}\n", target_name, target_version, config);
  out += fmt::format(
      "workload {} guest ops; device ops {} (writes {}, metadata writes {}, FUA {}, flushes {})\n",
      workload.ops.size(), device_ops, device_writes, metadata_writes, device_fua, device_flushes);
  out += fmt::format(
      "crash points {}, states possible {}, within bound {}, explored {}\n",
      enumeration.crash_points,
      enumeration.possible == simdisk::kSaturated ? std::string("2^64+")
                                                  : std::to_string(enumeration.possible),
      enumeration.within_bound == simdisk::kSaturated ? std::string("2^64+")
                                                      : std::to_string(enumeration.within_bound),
      explored);
  for (int i = 0; i < kOutcomeCount; ++i) {
    out += fmt::format("  {:<16} {}\n", OutcomeName(static_cast<Outcome>(i)), outcomes[i]);
  }
  out += fmt::format("second opinion: {} states checked by the target too, {} disagreements\n",
                     second_opinions, disagreements.size());
  for (size_t i = 0; i < disagreements.size() && i < 3; ++i) {
    out += fmt::format("  {}: crashsim {} / target {}\n", disagreements[i].state,
                       disagreements[i].crashsim, disagreements[i].target);
  }
  if (read_backs > 0) {
    out += fmt::format("read-back: {} states and repairs read by the target, {} illegal\n",
                       read_backs, read_back_failures);
  }
  if (!repairs.empty() && dirty_states > 0) {
    out += fmt::format("target repairs on {} dirty states:\n", dirty_states);
    out += fmt::format("  {:<16} {:>5} {:>6} {:>7} {:>7} {:>7} {:>9} {:>13}\n", "repair", "tried",
                       "exit 0", "refused", "clean", "dirty", "data lost", "broken writes");
    for (const RepairStudy& r : repairs) {
      out += fmt::format("  {:<16} {:>5} {:>6} {:>7} {:>7} {:>7} {:>9} {:>13}\n", r.name,
                         r.attempted, r.exit_zero, r.refused, r.clean_after, r.still_dirty,
                         r.data_lost, r.broken_after_writes);
      for (const std::string& ex : r.examples) out += "      e.g. " + ex + "\n";
    }
  }
  out += fmt::format("findings {}\n", findings.size());
  for (const ValidateFinding& f : findings) {
    out += fmt::format("  FINDING {}: {}{}\n", f.state, f.detail,
                       f.trace_path.empty() ? "" : " (kept in " + f.trace_path + ")");
  }
  return out;
}

}  // namespace crashsim::validate
