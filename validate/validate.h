// The validate driver: crash-tests a third-party qcow2 writer (a TargetSpec, QEMU first) on
// simdisk. It
//   1. creates the image with the target's create command on a simulated disk served over NBD
//      (the creation is not part of the crash run, as in `crashsim explore`);
//   2. runs the guest workload through the target's interactive driver (qemu-io), one command at
//      a time: BeginGuestOp, send, wait for the prompt, AckGuestOp, so each acknowledgement sits
//      in the device-op sequence right after the last device op it depended on;
//   3. tags each recorded write with the qcow2 structure it hit (read off the image's own
//      metadata, since NBD carries no tags), so the exhaustive budget goes to metadata ordering;
//   4. enumerates crash states exactly as `explore` does and holds each to the crash property
//      with crashsim's checker and oracle (dirty -> repairable to clean; clean -> no corruptions;
//      durable guest data intact; writes after repair use no cluster twice);
//   5. runs the target's own checker as a second opinion and reports disagreements;
//   6. on every dirty state, runs each of the target's repairs on a copy, keeps writing with the
//      target, and reports what happened (exit code, clean or not, data lost, cluster reuse).
// Violations are findings: the crash state is minimised (fewest lost or torn writes that still
// fail) and kept in the trace directory with the image, logs, a reproduction script and a
// version 2 trace (trace.cstrace) that embeds the target's device writes, so `crashsim replay`
// rebuilds the crash state and re-checks it and `crashsim show` draws it without the target.
//
// Determinism: the workload is a pure function of the seed (own PRNG); the device-op log is
// whatever the target sends, serialised by the NBD server, so it may differ between target
// versions, and the target's version is part of the report.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "engine/format/header.h"
#include "engine/options.h"
#include "engine/status.h"
#include "process/subprocess.h"
#include "properties/explorer.h"
#include "properties/oracle.h"
#include "properties/workload.h"
#include "settings/explore_settings.h"
#include "simdisk/crash_enumerator.h"
#include "simdisk/recording.h"
#include "simdisk/sim_disk.h"
#include "traces/trace.h"
#include "validate/target.h"

namespace crashsim::validate {

struct ValidateOptions {
  TargetSpec target;
  // What is explored: the target's cache mode ({cache}), the image's cluster size and lazy
  // refcounts ({cluster_size}, {lazy}: the only image options the target's create command
  // gets), the state selection (crash kind, model, k, budget, samples, seed; a generated
  // workload is drawn from the same seed) and metadata-first. Backing, fault,
  // writes-after-repair and repair-crash-states are the reference engine's and are not applied
  // (the trace of a finding says so).
  ExploreSettings settings = PresetSettings(SettingsPreset::kValidate);
  std::string image_opts;            // extra driver options ({image_opts}, e.g. lazy-refcounts=on)
  std::optional<Workload> workload;  // unset: generated from the seed
  std::string workload_name;         // where `workload` came from (a file name), for reports
  size_t workload_ops = 10;
  uint64_t disk_size = 4 << 20;     // guest disk of generated workloads
  uint64_t export_size = 32 << 20;  // the simulated disk the image file lives on
  uint64_t max_states = 60;         // 0: every enumerated state
  bool second_opinion = true;
  bool repair_study = true;
  bool read_back = true;  // the target reads each state (and each repair) back: TargetSpec::read
  uint64_t repair_states = 0;  // dirty states per run given to the target's repairs (0: all)
  bool minimise = true;
  std::string trace_dir;   // findings are kept here when set
  std::string work_dir;    // scratch files; a fresh directory is made when empty
  int timeout_ms = 30000;  // per target command
};

struct RepairStudy {
  std::string name;  // "check-r-leaks", ...
  uint64_t attempted = 0;
  uint64_t exit_zero = 0;    // the command reported success
  uint64_t refused = 0;      // nonzero exit
  uint64_t clean_after = 0;  // crashsim's check finds no corruption and no dirty bit after it
  uint64_t still_dirty = 0;  // dirty bit still set after it
  uint64_t data_lost = 0;    // durable guest data gone or illegal after it
  uint64_t broken_after_writes = 0;   // further writes by the target corrupted it / lost data
  std::vector<std::string> examples;  // first few notable results
};

struct Disagreement {
  std::string state;
  std::string crashsim;  // "exit 2: 4 corruptions, 0 leaks"
  std::string target;
};

struct ValidateFinding {
  std::string state;     // minimised crash state (text form)
  std::string original;  // as enumerated
  std::string detail;
  std::string trace_path;
};

struct ValidateReport {
  std::string target_name;
  std::string target_version;
  std::string config;  // "cache=writethrough lazy=on crash=power-loss seed=1"
  Workload workload;
  uint64_t device_ops = 0;
  uint64_t device_writes = 0, device_flushes = 0, device_fua = 0;
  uint64_t metadata_writes = 0;  // writes tagged as qcow2 metadata
  simdisk::EnumerationStats enumeration;
  uint64_t explored = 0;
  uint64_t outcomes[kOutcomeCount] = {};
  uint64_t dirty_states = 0;
  uint64_t second_opinions = 0;
  uint64_t read_backs = 0;          // states (and repaired copies) the target read back
  uint64_t read_back_failures = 0;  // of those, read as no legal content (each a finding)
  std::vector<Disagreement> disagreements;
  std::vector<RepairStudy> repairs;
  std::vector<ValidateFinding> findings;

  std::string Summary() const;
};

class Validator {
 public:
  explicit Validator(ValidateOptions options);
  ~Validator();

  // Records the target's run of the workload. Fails if the target fails to create the image or
  // answers an operation with an error.
  Status Record();
  // Explores the crash states (after Record). `progress` after each state.
  ValidateReport Run(const std::function<void(const ExploreProgress&)>& progress = {});

  const simdisk::Recording& recording() const { return *recording_; }
  const ValidateOptions& options() const { return options_; }
  // Checks one crash state with crashsim's property; returns the failure, or empty. Public for
  // tests and minimisation.
  std::string CheckProperty(const simdisk::CrashState& state, Outcome* outcome, bool* dirty);
  // The settings a trace of this run records (after Record): the image as the target created
  // it (its header's version, cluster size, refcount width, lazy refcounts, extended L2 and
  // compression type, whatever the target's create command chose), the cache mode and state
  // selection this run applied.
  ExploreSettings TraceSettingsOf() const;

 private:
  // Record's steps: the scratch directory; the version, workload and command variables; the
  // image the target creates (and with it the config line); the target driving the workload on
  // `disk`.
  Status MakeWorkDir();
  void DescribeRun();
  // The config line (report and trace notes, finding directory names); lazy refcounts as the
  // created image's header says, where it could be read.
  std::string ConfigLine() const;
  Result<std::shared_ptr<simdisk::Medium>> CreateImage(const simdisk::SimDiskOptions& disk_options);
  Status DriveWorkload(simdisk::SimDisk& disk);
  struct Impl;
  ProcessResult RunOnFile(const std::string& templ,
                          const std::map<std::string, std::string>& extra);
  void StudyRepair(const std::string& command, const std::string& image_file, uint64_t point,
                   RepairStudy& study);
  void RecordFinding(const simdisk::CrashState& state, const std::string& failure);
  // A version 2 trace (embedded data) of `state` written to DIR/trace.cstrace; returns its path,
  // or empty if it could not be written.
  std::string WriteStateTrace(const std::string& dir, const simdisk::CrashState& state,
                              const std::string& note);
  // The target reads `image` back (TargetSpec::read); returns what is wrong with what it read at
  // crash point `point` (or that it could not read), or "".
  std::string TargetReadBack(const std::string& image, uint64_t point, const char* when);
  // A finding's directory under the trace dir (`suffix` names it) with the crash image and the
  // workload in it.
  std::string FindingDir(const std::string& suffix, const std::string& image_file);
  void RecordReadBackFinding(const std::string& image_file, uint64_t point,
                             const std::string& what);
  void RecordRepairFinding(const std::string& repair, const std::string& command,
                           const std::string& image_file, uint64_t point, const std::string& what);

  ValidateOptions options_;
  std::unique_ptr<Impl> impl_;
  std::shared_ptr<const simdisk::Recording> recording_;
  std::unique_ptr<GuestOracle> oracle_;
  // The header of the image the target created, unless it could not be read: what traces and
  // the config line report (a .target's create command may choose its own options). Lazy
  // refcounts switched on at open time (--image-opts lazy-refcounts=on) do not show in it.
  std::optional<QcowHeader> created_header_;
  ValidateReport report_;
  const simdisk::CrashState* current_state_ = nullptr;  // the state Run is studying
};

}  // namespace crashsim::validate
