// `crashsim validate --target qemu`: crash-tests a third-party qcow2 writer on simdisk through
// crashsim's NBD server (validate/validate.h). One run records the target driving the guest
// workload, enumerates its crash states and holds each to the crash property, with the target's
// checker as a second opinion and the target's own repairs tried on every dirty state.
// By default it runs every configuration: writethrough, directsync and writeback, lazy refcounts
// off and on, power loss and process kill, one table row each; -t, --lazy and --crash each pin
// their dimension (all three: one run, printed in full). --matrix is the default, kept for
// scripts that name it.
#include <fmt/format.h>
#include <unistd.h>

#include <chrono>

#include "tools/common.h"
#include "tools/junit.h"
#include "tools/progress.h"
#include "tools/settings_flags.h"
#include "validate/validate.h"

namespace crashsim::tools {
namespace {

struct ValidateArgs {
  std::string target = "qemu";
  // -t, --seed, --crash, -k, --budget, --samples.
  std::shared_ptr<SettingsFlags> settings;
  // The run's other options, bound to their flags: --ops, --max-states, --repair-states, -o,
  // --trace-dir.
  validate::ValidateOptions options;
  std::string lazy = "off";
  CLI::Option* lazy_option = nullptr;  // given or not: pins lazy refcounts
  std::string workload_file;
  bool matrix = false;  // the default; accepted for scripts
  bool quiet = false;
  std::string junit;  // --junit FILE
  bool no_second_opinion = false;
  bool no_repair_study = false;
  bool no_read_back = false;
  std::string create_options;  // --create-options, qemu-img -o syntax
  std::string disk_size;       // --disk-size, qemu's size syntax
};

Result<validate::ValidateOptions> BuildOptions(const ValidateArgs& a) {
  validate::ValidateOptions o = a.options;
  ASSIGN_OR_RETURN(o.target, validate::TargetSpec::Load(a.target));
  ASSIGN_OR_RETURN(o.settings, a.settings->Settings());
  if (a.lazy != "on" && a.lazy != "off") return Status::InvalidArgument("--lazy: on or off");
  o.settings.image.lazy_refcounts = a.lazy == "on";
  o.second_opinion = !a.no_second_opinion;
  o.repair_study = !a.no_repair_study;
  o.read_back = !a.no_read_back;
  if (!a.create_options.empty()) {
    CreateOptions image = o.settings.image;
    RETURN_IF_ERROR(ParseCreateOptions(a.create_options, image).WithContext("--create-options"));
    if (image.size != o.settings.image.size || !image.backing_file.empty()) {
      return Status::InvalidArgument(
          "--create-options: size and backing_file are not for a validate run (--disk-size "
          "sets the guest disk)");
    }
    o.settings.image = image;
  }
  if (!a.disk_size.empty()) {
    if (!a.workload_file.empty()) {
      return Status::InvalidArgument(
          "--disk-size shapes a generated workload; a workload file names its own disk size");
    }
    auto size = ParseSize(a.disk_size);
    if (!size.ok()) return size.status().WithContext("--disk-size");
    if (*size < 512 || *size % 512 != 0 || *size > (uint64_t{1} << 30)) {
      return Status::InvalidArgument(fmt::format(
          "--disk-size {}: must be a positive multiple of 512 bytes, at most 1G", a.disk_size));
    }
    o.disk_size = *size;
  }
  // The export holds the image file: room for the whole guest disk twice over, and metadata.
  o.export_size = std::max<uint64_t>(o.export_size, 2 * o.disk_size + (16 << 20));
  if (!a.workload_file.empty()) {
    ASSIGN_OR_RETURN(o.workload, ReadWorkloadFile(a.workload_file));
    o.workload_name = a.workload_file;
  }
  return o;
}

Result<validate::ValidateReport> RunOne(const validate::ValidateOptions& o, double* seconds,
                                        ProgressStyle style, const std::string& label) {
  auto start = std::chrono::steady_clock::now();
  validate::Validator validator(o);
  RETURN_IF_ERROR(validator.Record());
  ProgressMeter meter(label, "states", style);
  validate::ValidateReport report =
      validator.Run([&](const ExploreProgress& p) { meter.Update(p.explored, p.expected); });
  meter.Finish();
  *seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return report;
}

// The JUnit case of one configuration: its findings, each with its trace and replay command.
JunitCase ValidateCase(const validate::ValidateReport& r, double seconds) {
  JunitCase c;
  c.classname = "crashsim.validate." + r.target_name;
  c.name = r.config;
  c.seconds = seconds;
  c.output = r.Summary();
  if (r.findings.empty()) return c;
  c.failure_message = fmt::format("{} finding(s); the first, at {}: {}", r.findings.size(),
                                  r.findings[0].state, r.findings[0].detail);
  for (const validate::ValidateFinding& f : r.findings) {
    c.failure_text += fmt::format("{}: {}\n", f.state, f.detail);
    c.failure_text += TraceLines(f.trace_path, "run with --trace-dir DIR");
  }
  return c;
}

int WriteValidateJunit(const ValidateArgs& a, const std::vector<JunitCase>& cases, int code) {
  if (a.junit.empty()) return code;
  if (Status st = WriteJunit(a.junit, "crashsim validate", cases); !st.ok()) return Fail(st);
  return code;
}

int RunValidate(const ValidateArgs& a) {
  auto base = BuildOptions(a);
  if (!base.ok()) return Fail(base.status());
  const ProgressStyle style = ProgressStyleFor(a.quiet, STDERR_FILENO);
  // Every configuration a flag does not pin.
  std::vector<CacheMode> caches = {CacheMode::kWritethrough, CacheMode::kDirectsync,
                                   CacheMode::kWriteback};
  if (a.settings->Given("cache")) caches = {base->settings.cache_mode};
  std::vector<bool> lazies = {false, true};
  if (a.lazy_option->count() > 0) lazies = {base->settings.image.lazy_refcounts};
  std::vector<simdisk::CrashKind> crashes = {simdisk::CrashKind::kPowerLoss,
                                             simdisk::CrashKind::kProcessKill};
  if (a.settings->Given("crash")) crashes = {base->settings.selection.kind};
  const size_t rows = caches.size() * lazies.size() * crashes.size();
  if (rows == 1) {
    double seconds = 0;
    auto report = RunOne(*base, &seconds, style, "validate");
    if (!report.ok()) return Fail(report.status());
    fmt::print("{}  {:.1f} s\n", report->Summary(), seconds);
    return WriteValidateJunit(a, {ValidateCase(*report, seconds)},
                              report->findings.empty() ? 0 : 2);
  }
  // The matrix: one table row per configuration.
  std::string table = fmt::format(
      "| cache | lazy | crash | dev ops | states | clean | leaks | dirty->repaired | FAIL | "
      "2nd-opinion disagreements | findings | s "
      "|\n|---|---|---|---|---|---|---|---|---|---|---|---|\n");
  std::string details;
  size_t findings = 0;
  std::string version;
  std::vector<JunitCase> cases;
  int row = 0;
  for (CacheMode cache : caches) {
    for (bool lazy : lazies) {
      for (simdisk::CrashKind crash : crashes) {
        validate::ValidateOptions o = *base;
        o.settings.cache_mode = cache;
        o.settings.image.lazy_refcounts = lazy;
        o.settings.selection.kind = crash;
        double seconds = 0;
        ++row;
        auto r = RunOne(o, &seconds, style,
                        fmt::format("row {}/{} {} lazy {} {}", row, rows, CacheModeName(cache),
                                    lazy ? "on" : "off", simdisk::CrashKindName(crash)));
        if (!r.ok()) return Fail(r.status());
        version = r->target_version;
        cases.push_back(ValidateCase(*r, seconds));
        findings += r->findings.size();
        table +=
            fmt::format("| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {:.1f} |\n",
                        CacheModeName(cache), lazy ? "on" : "off",
                        crash == simdisk::CrashKind::kPowerLoss ? "power" : "kill", r->device_ops,
                        r->explored, r->outcomes[0], r->outcomes[1], r->outcomes[2], r->outcomes[3],
                        r->disagreements.size(), r->findings.size(), seconds);
        details += "\n" + r->Summary();
      }
    }
  }
  fmt::print("{}\n{}{}", version, table, details);
  return WriteValidateJunit(a, cases, findings == 0 ? 0 : 2);
}

void AddValidateCommand(CLI::App& app, int& exit_code) {
  auto args = std::make_shared<ValidateArgs>();
  CLI::App* cmd = app.add_subcommand(
      "validate", "crash-test a third-party qcow2 writer (QEMU) on simdisk through NBD");
  cmd->add_option("--target", args->target, "built-in target (qemu) or a .target file");
  std::vector<SettingFlag> flags = SelectionFlags();
  flags.push_back({"cache", "-t,--cache",
                   "the target's cache mode (default: writethrough, directsync and writeback, a "
                   "row each)",
                   "MODE"});
  args->settings = std::make_shared<SettingsFlags>(cmd, args->options.settings, flags);
  cmd->get_option("--crash")->description(
      "power-loss (power) or process-kill (kill) (default: both, a row each)");
  cmd->add_option("-o,--image-opts", args->options.image_opts,
                  "extra driver options for the target");
  args->lazy_option = cmd->add_option(
      "--lazy", args->lazy, "create with lazy_refcounts on or off (default: both, a row each)");
  // Unpinned, these three run every value: there is no one default to show.
  for (const char* name : {"--crash", "--cache", "--lazy"}) cmd->get_option(name)->default_str("");
  cmd->add_option("--create-options", args->create_options,
                  "image options for the target's create, qemu-img -o syntax (cluster_size, "
                  "refcount_bits, extended_l2, compression_type, compat); --lazy sets "
                  "lazy_refcounts");
  cmd->add_option("--disk-size", args->disk_size,
                  "guest disk of the generated workload (k/M/G suffixes; default 4M)");
  cmd->add_option("--ops", args->options.workload_ops,
                  "guest operations in the generated workload");
  cmd->add_option("--workload", args->workload_file, "workload file instead of a seed");
  cmd->add_option("--max-states", args->options.max_states, "states per run (0: all enumerated)");
  cmd->add_option("--junit", args->junit,
                  "also write the result as JUnit XML here: a test case per configuration, with "
                  "each finding's trace and replay command");
  cmd->add_flag("-q,--quiet", args->quiet,
                "no progress display (on a terminal: a line redrawn in place; otherwise a line "
                "every 5 s)");
  cmd->add_option("--repair-states", args->options.repair_states,
                  "dirty states per run given to the target's repairs (0: all)");
  cmd->add_option("--trace-dir", args->options.trace_dir, "keep findings here");
  cmd->add_flag("--matrix", args->matrix,
                "every configuration -t, --lazy and --crash leave open (the default; accepted "
                "for scripts)");
  cmd->add_flag("--no-second-opinion", args->no_second_opinion, "skip the target's checker");
  cmd->add_flag("--no-repair-study", args->no_repair_study, "skip the target's repairs");
  cmd->add_flag("--no-read-back", args->no_read_back,
                "skip the target's reading of each state and repair");
  cmd->callback([args, &exit_code] { exit_code = RunValidate(*args); });
}

static const RegisterCommand kRegisterValidate(AddValidateCommand);

}  // namespace
}  // namespace crashsim::tools
