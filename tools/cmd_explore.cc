// `crashsim explore`: the crash property from the command line. Runs a guest workload (from a
// file, or drawn from a seed) on the reference engine over simdisk, enumerates the crash states
// of the run and checks each (properties/explorer.h). `--matrix` runs the built-in default across
// writethrough, directsync and writeback with lazy refcounts on and off and prints one table:
// what ci/demo shows.
#include <fmt/format.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <sstream>
#include <thread>

#include "properties/explorer.h"
#include "properties/fault_sweep.h"
#include "properties/random_workload.h"
#include "tools/common.h"
#include "tools/junit.h"
#include "tools/progress.h"
#include "tools/settings_flags.h"
#include "traces/capture.h"

namespace crashsim::tools {
namespace {

struct ExploreArgs {
  // -t, --crash, --seed, -k, --budget, --samples, --atomic-unit, --repair-crashes, --fault.
  std::shared_ptr<SettingsFlags> settings;
  std::string workload_file;
  size_t ops = kDefaultWorkloadOps;
  std::string disk_size;  // empty: the default for the cluster size
  std::vector<std::string> image_options;
  uint64_t max_states = 0;
  std::string shard = "0/1";
  std::string trace_dir;
  std::string junit;  // --junit FILE
  bool matrix = false;
  bool fault_sweep = false;
  bool quiet = false;
  bool coverage = false;  // --coverage: the protocol steps and structures the states reached
  uint32_t jobs = std::max(1u, std::thread::hardware_concurrency());
};

Status ParseShard(const std::string& text, ExploreOptions& o) {
  unsigned index = 0, count = 0;
  char slash = 0;
  std::istringstream in(text);
  if (!(in >> index >> slash >> count) || slash != '/' || count == 0 || index >= count ||
      !in.eof()) {
    return Status::InvalidArgument("--shard '" + text + "': expected I/N with 0 <= I < N");
  }
  o.shard_index = index;
  o.shard_count = count;
  return Status::Ok();
}

Result<ExploreOptions> BuildOptions(const ExploreArgs& a) {
  ExploreOptions o;
  ASSIGN_OR_RETURN(o.settings, a.settings->Settings());
  for (const std::string& opts : a.image_options) {
    RETURN_IF_ERROR(ParseCreateOptions(opts, o.settings.image));
  }
  RETURN_IF_ERROR(ParseShard(a.shard, o));
  o.max_states = a.max_states;
  o.max_failures = 0;
  if (a.jobs == 0) return Status::InvalidArgument("-j must be at least 1");
  o.jobs = a.jobs;
  return o;
}

// The workload file, or the seeded workload (the settings' seed) for the image's cluster size.
Result<Workload> LoadWorkload(const ExploreArgs& a, const ExploreSettings& settings) {
  if (a.workload_file.empty()) {
    uint64_t disk = kDefaultDiskSize;
    if (!a.disk_size.empty()) {
      auto parsed = ParseSize(a.disk_size);
      if (!parsed.ok()) return parsed.status().WithContext("--disk-size");
      if (*parsed < 512 || *parsed % 512 != 0) {
        return Status::InvalidArgument(
            fmt::format("--disk-size {}: must be a positive multiple "
                        "of 512 bytes",
                        a.disk_size));
      }
      disk = *parsed;
    }
    return RandomWorkload(settings.selection.seed, a.ops, disk, settings.image.cluster_size);
  }
  if (!a.disk_size.empty()) {
    return Status::InvalidArgument(
        "--disk-size shapes a seeded workload; a workload file names "
        "its own disk size");
  }
  return ReadWorkloadFile(a.workload_file);
}

struct RunResult {
  ExploreReport report;
  GuestRunResult explorer_run;  // what the recorded run met (an injected fault)
  double seconds = 0;
  std::vector<std::string> trace_paths;
};

Result<RunResult> RunOne(const Workload& w, const ExploreOptions& o, const std::string& trace_dir,
                         ProgressStyle style, const std::string& label = "explore") {
  ASSIGN_OR_RETURN(std::unique_ptr<Explorer> explorer, Explorer::Record(w, o));
  auto start = std::chrono::steady_clock::now();
  RunResult result;
  result.explorer_run = explorer->run();
  ProgressMeter meter(label, "states", style);
  result.report =
      explorer->Run([&](const ExploreProgress& p) { meter.Update(p.explored, p.expected); });
  meter.Finish();
  result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (!trace_dir.empty()) {
    for (const StateResult& f : result.report.failures) {
      ASSIGN_OR_RETURN(std::string path, traces::WriteFailureTrace(trace_dir, *explorer, f));
      result.trace_paths.push_back(path);
    }
  }
  return result;
}

// A configuration's name in reports: "writethrough lazy_refcounts=on power-loss".
std::string ConfigName(const ExploreSettings& s) {
  return fmt::format("{} lazy_refcounts={} {}", SettingValue(s, "cache"),
                     s.image.lazy_refcounts ? "on" : "off", SettingValue(s, "crash"));
}

// "workload: 200 guest ops on a 1073741824-byte disk; image ...; cache ...; crash ...".
std::string WorkloadLine(const Workload& w, const ExploreSettings& s) {
  ExploreSettings sized = s;
  sized.image.size = w.disk_size;  // the image is created at the workload's disk size
  return fmt::format("workload: {} guest ops on a {}-byte disk; image {}; cache {}; crash {}\n",
                     w.ops.size(), w.disk_size, SettingValue(sized, "image"),
                     SettingValue(s, "cache"), SettingValue(s, "crash"));
}

// The JUnit case of one explored configuration: its failures with their traces and the command
// that replays each.
JunitCase ExploreCase(const ExploreOptions& o, const RunResult& r) {
  JunitCase c;
  c.classname = "crashsim.explore";
  c.name = ConfigName(o.settings);
  c.seconds = r.seconds;
  c.output = r.report.Summary();
  const std::vector<StateResult>& failures = r.report.failures;
  if (failures.empty()) return c;
  c.failure_message = fmt::format("{} failing crash state(s); the first, {}: {}", failures.size(),
                                  failures[0].state.ToText(), failures[0].detail);
  for (size_t i = 0; i < failures.size(); ++i) {
    c.failure_text += fmt::format("{}: {}\n", failures[i].state.ToText(), failures[i].detail);
    c.failure_text += TraceLines(i < r.trace_paths.size() ? r.trace_paths[i] : "",
                                 "run with --trace-dir DIR (or CRASHSIM_TRACE_DIR)");
  }
  return c;
}

void PrintCoverage(const StepCoverage& coverage, const std::string& title) {
  fmt::print(
      "\ncoverage{}:\neach crash state under the last write before its crash point (that\n"
      "write's step in engine/protocol.h, and its structure); lost or torn: states in which\n"
      "a write of the step did not persist whole\n{}",
      title, coverage.Table());
}

void PrintSummary(const Workload& w, const ExploreOptions& o, const RunResult& r) {
  const ExploreReport& rep = r.report;
  fmt::print("{}", WorkloadLine(w, o.settings));
  fmt::print("{}", rep.Summary());
  fmt::print(
      "  {:.1f} s, {:.0f} states/s; run cost {} device writes, {} flushes, {:.2f} ms "
      "simulated\n",
      r.seconds, rep.explored / std::max(r.seconds, 1e-9), rep.run_io.writes, rep.run_io.flushes,
      rep.run_io.time_ns / 1e6);
  for (size_t i = 0; i < rep.failures.size(); ++i) {
    fmt::print("FAILURE {}: {}\n  {}\n", rep.failures[i].state.ToText(), rep.failures[i].detail,
               i < r.trace_paths.size() ? "trace: " + r.trace_paths[i] : "(no --trace-dir)");
  }
}

int RunMatrix(const ExploreArgs& a, const ExploreOptions& base) {
  fmt::print(
      "crashsim explore: built-in workload (seed {}, {} ops), every crash point, {}, k={}\n\n",
      base.settings.selection.seed, a.ops, SettingValue(base.settings, "crash"),
      base.settings.selection.k);
  fmt::print("{:<13} {:<5} {:>7} {:>9} {:>8} {:>7} {:>6} {:>9} {:>6} {:>8} {:>7} {:>8} {:>9}\n",
             "cache", "lazy", "points", "possible", "explored", "clean", "leaks", "repaired",
             "FAIL", "states/s", "writes", "flushes", "sim ms");
  bool failed = false;
  std::vector<JunitCase> cases;
  StepCoverage coverage;
  const ProgressStyle style = ProgressStyleFor(a.quiet, STDERR_FILENO);
  int row = 0;
  for (CacheMode cache :
       {CacheMode::kWritethrough, CacheMode::kDirectsync, CacheMode::kWriteback}) {
    for (bool lazy : {false, true}) {
      ++row;
      ExploreOptions o = base;
      o.settings.cache_mode = cache;
      o.settings.image.lazy_refcounts = lazy;
      auto w = LoadWorkload(a, o.settings);
      if (!w.ok()) return Fail(w.status());
      auto r = RunOne(
          *w, o, a.trace_dir, style,
          fmt::format("row {}/6 {} lazy {}", row, CacheModeName(cache), lazy ? "on" : "off"));
      if (!r.ok()) return Fail(r.status());
      const ExploreReport& rep = r->report;
      cases.push_back(ExploreCase(o, *r));
      coverage += rep.coverage;
      fmt::print(
          "{:<13} {:<5} {:>7} {:>9} {:>8} {:>7} {:>6} {:>9} {:>6} {:>8.0f} {:>7} {:>8} "
          "{:>9.2f}\n",
          CacheModeName(cache), lazy ? "on" : "off", rep.points_covered,
          rep.enumeration.possible == simdisk::kSaturated
              ? std::string(">2^64")
              : std::to_string(rep.enumeration.possible),
          rep.explored, rep.outcomes[0], rep.outcomes[1], rep.outcomes[2], rep.outcomes[3],
          rep.explored / std::max(r->seconds, 1e-9), rep.run_io.writes, rep.run_io.flushes,
          rep.run_io.time_ns / 1e6);
      for (size_t i = 0; i < rep.failures.size(); ++i) {
        failed = true;
        fmt::print("  FAILURE {}: {}{}\n", rep.failures[i].state.ToText(), rep.failures[i].detail,
                   i < r->trace_paths.size() ? "\n  trace: " + r->trace_paths[i] : "");
      }
    }
  }
  fmt::print(
      "\nclean: no corruptions; leaks: lost space only; repaired: dirty image repaired "
      "to clean with all durable data (with lazy refcounts off, only states after an "
      "internal snapshot's creation, deletion or revert started, which run under the dirty "
      "bit). "
      "writes/flushes/sim "
      "ms: the recorded run's device cost.\n");
  if (a.coverage) PrintCoverage(coverage, " of the six configurations together");
  if (!a.junit.empty()) {
    if (Status st = WriteJunit(a.junit, "crashsim explore --matrix", cases); !st.ok()) {
      return Fail(st);
    }
  }
  return failed ? kExitFailure : 0;
}

// --fault-sweep: every device op of the run failed once, EIO and ENOSPC (fault_sweep.h).
int RunFaultSweep(const Workload& w, const ExploreOptions& o, const ExploreArgs& a) {
  const bool tty = !a.quiet && ::isatty(STDERR_FILENO);
  auto start = std::chrono::steady_clock::now();
  auto report = SweepFaults(w, o, /*repair_sweeps=*/UINT64_MAX, [&](const std::string& fault) {
    if (tty) std::fprintf(stderr, "\r  injecting %-24s", fault.c_str());
  });
  if (tty) std::fprintf(stderr, "\r%40s\r", "");
  if (!report.ok()) return Fail(report.status());
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  fmt::print("{}{}  {:.1f} s\n", WorkloadLine(w, o.settings), report->Summary(), seconds);
  std::string trace;
  if (!a.trace_dir.empty() && report->failing_run) {
    auto path = traces::WriteFailureTrace(a.trace_dir, *report->failing_run, report->failing_state);
    if (!path.ok()) return Fail(path.status());
    trace = *path;
  }
  for (size_t i = 0; i < report->failures.size(); ++i) {
    fmt::print("FAILURE {}\n", report->failures[i]);
    if (i == report->failing_index && !trace.empty()) fmt::print("  trace: {}\n", trace);
  }
  return report->ok() ? 0 : kExitFailure;
}

int RunExplore(const ExploreArgs& a) {
  auto o = BuildOptions(a);
  if (!o.ok()) return Fail(o.status());
  const bool fault = o->settings.fault.has_value();
  if (a.fault_sweep && (a.matrix || fault)) {
    return Fail("--fault-sweep injects every fault in turn: it takes neither --matrix nor --fault");
  }
  if (a.fault_sweep && a.coverage) {
    return Fail(
        "--coverage reports the crash states of one run or of --matrix, not of --fault-sweep");
  }
  if (a.matrix && fault) {
    return Fail(
        "--fault runs one workload with one error; --matrix runs the default workload "
        "six ways without errors: choose one");
  }
  if (a.matrix) return RunMatrix(a, *o);
  auto w = LoadWorkload(a, o->settings);
  if (!w.ok()) return Fail(w.status());
  if (a.fault_sweep) return RunFaultSweep(*w, *o, a);
  auto r = RunOne(*w, *o, a.trace_dir, ProgressStyleFor(a.quiet, STDERR_FILENO));
  if (!r.ok()) return Fail(r.status());
  PrintSummary(*w, *o, *r);
  if (a.coverage) PrintCoverage(r->report.coverage, "");
  const std::string injected = SettingValue(o->settings, "fault");
  if (const GuestRunResult& run = r->explorer_run; run.fault) {
    fmt::print("injected {}: it hit {}, which returned: {}\n", injected, run.fault->call,
               run.fault->returned.ToString());
  } else if (fault) {
    fmt::print("injected {}: the run never reached it (it has fewer such device ops)\n", injected);
  }
  if (!a.junit.empty()) {
    if (Status st = WriteJunit(a.junit, "crashsim explore", {ExploreCase(*o, *r)}); !st.ok()) {
      return Fail(st);
    }
  }
  return r->report.ok() ? 0 : kExitFailure;
}

}  // namespace

void AddExploreCommand(CLI::App& app, int& exit_code) {
  auto args = std::make_shared<ExploreArgs>();
  args->trace_dir = traces::TraceDirFromEnv().value_or("");
  CLI::App* cmd = app.add_subcommand(
      "explore", "run a workload, enumerate its crash states and check every one");
  std::vector<SettingFlag> flags = SelectionFlags();
  flags.insert(
      flags.end(),
      {{"cache", "-t,--cache", "cache mode: writeback, writethrough, directsync, none, unsafe",
        "MODE"},
       {"unit", "--atomic-unit", "bytes a power loss never splits: 512 or 4096", "UINT"},
       {"repair-crash-states", "--repair-crashes",
        "crash states of the repair itself to check per dirty state", "UINT"},
       {"fault", "--fault",
        "fail one device op of the run, e.g. write#3:ENOSPC (KIND read, write, flush or resize, "
        "counted from 0; ERROR EIO or ENOSPC); only crash points after it are explored",
        "KIND#N:ERROR"}});
  args->settings =
      std::make_shared<SettingsFlags>(cmd, PresetSettings(SettingsPreset::kExplore), flags);
  cmd->add_option("--workload", args->workload_file, "workload file (text form)");
  cmd->add_option("--ops", args->ops, "guest ops in a seeded workload");
  cmd->add_option("--disk-size", args->disk_size,
                  "guest disk of a seeded workload (k, M, G, T suffixes; default 1G)");
  cmd->add_option("-o", args->image_options, "image options (qemu-img -o syntax)");
  cmd->add_option("--max-states", args->max_states,
                  "stop after about this many states, spread over every crash point (at least one "
                  "each; 0: all)");
  cmd->add_option("--shard", args->shard, "I/N: explore every N-th state starting at I");
  cmd->add_option("--trace-dir", args->trace_dir,
                  "write a trace for each failure here (default $CRASHSIM_TRACE_DIR)");
  cmd->add_option("--junit", args->junit,
                  "also write the result as JUnit XML here: a test case per configuration, with "
                  "each failure's trace and replay command");
  cmd->add_flag("--matrix", args->matrix,
                "the default across writethrough/directsync/writeback x lazy on/off");
  cmd->add_flag("--fault-sweep", args->fault_sweep,
                "the I/O-error sweep: fail each device op of the run once with EIO and once "
                "with ENOSPC, check the crash points after each error, and fail the repair of "
                "every dirty image left at each of its ops");
  cmd->add_flag("--coverage", args->coverage,
                "also print, for every durable step of the commit protocol and every on-disk "
                "structure, how many crash states crashed just after one of its writes and how "
                "many lost or tore one, and the steps no state reached");
  cmd->add_flag(
      "-q,--quiet", args->quiet,
      "no progress display (on a terminal: a line redrawn in place; otherwise a line every 5 s)");
  cmd->add_option("-j,--jobs", args->jobs,
                  "threads checking crash states (default: the machine's cores); the report is "
                  "the same for any number");
  cmd->callback([args, &exit_code] { exit_code = RunExplore(*args); });
}

static const RegisterCommand kRegisterExplore(AddExploreCommand);

}  // namespace crashsim::tools
