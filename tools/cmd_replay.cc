// `crashsim replay TRACE [--image OUT] [--portable] [--write-trace OUT] [-q]`: rebuilds the
// trace's exact crash state on this build, re-runs the crash property and compares the verdict.
// Exit codes (traces/replay.h): 0 the recorded verdict reproduced (a failure still fails, a
// pass still passes), 1 usage, I/O or parse error, 2 the verdict differs, 3 this engine issued
// different device ops than the trace recorded (try --portable, which replays the guest
// workload alone and maps the crash point onto this build's run). A trace of a third-party run
// (format 2, `crashsim validate --trace-dir`) carries its device data and replays without any
// engine run: the crash state is rebuilt from the data and checked with the same property.
#include <fmt/format.h>

#include <memory>
#include <string>

#include "engine/atomic_output_file.h"
#include "simdisk/materialise.h"
#include "tools/common.h"
#include "traces/capture.h"
#include "traces/replay.h"
#include "traces/trace.h"

namespace crashsim::tools {
namespace {

struct ReplayArgs {
  std::string trace;
  std::string image;
  std::string write_trace;
  bool portable = false;
  bool quiet = false;
  uint64_t max_states = 4096;
};

int RunReplay(const ReplayArgs& args) {
  auto trace = traces::ReadTraceFile(args.trace);
  if (!trace.ok()) return Fail(trace.status());
  traces::ReplayOptions options;
  options.portable = args.portable;
  options.max_states = args.max_states;
  auto result = traces::Replay(*trace, options);
  if (!result.ok()) return Fail(InFile(args.trace, result.status().message()));
  if (!args.quiet) fmt::print("{}\n", result->message);
  if (!args.image.empty()) {
    if (result->code == traces::kReplayDeviceLogDiffers) {
      return Fail(
          "--image: the crash state cannot be rebuilt on this build (device log "
          "differs)");
    }
    auto medium = simdisk::Materialise(*result->recording, result->state);
    if (!medium.ok()) return Fail(medium.status());
    std::vector<uint8_t> bytes((*medium)->size());
    (*medium)->ReadAt(0, bytes);
    std::string_view view(reinterpret_cast<const char*>(bytes.data()), bytes.size());
    if (Status st = WriteFileAtomically(args.image, view); !st.ok()) {
      return Fail(st);
    }
    if (!args.quiet) {
      fmt::print("crashed image ({} bytes, before any check or repair) written to {}\n",
                 bytes.size(), args.image);
    }
  }
  if (!args.write_trace.empty()) {
    if (result->code == traces::kReplayDeviceLogDiffers) {
      return Fail("--write-trace: nothing was checked on this build (device log differs)");
    }
    traces::Trace rebased = *trace;
    if (result->explorer) {
      rebased = traces::MakeTrace(trace->workload, result->explorer->options().settings,
                                  result->explorer->recording(), result->actual);
    } else {  // an embedded run: the same data, this build's verdict
      rebased.verdict = result->actual.outcome;
      rebased.dirty = result->actual.dirty;
      rebased.detail = result->actual.detail;
    }
    rebased.comments = trace->comments;
    rebased.comments.push_back(
        fmt::format("replayed{} from {}", args.portable ? " (portable)" : "", args.trace));
    if (Status st = traces::WriteTraceFile(args.write_trace, rebased); !st.ok()) {
      return Fail(st);
    }
    if (!args.quiet) fmt::print("this build's trace written to {}\n", args.write_trace);
  }
  const char* verdict = result->code == traces::kReplayMatch            ? "REPRODUCED"
                        : result->code == traces::kReplayVerdictDiffers ? "VERDICT DIFFERS"
                                                                        : "DEVICE LOG DIFFERS";
  fmt::print("{}: {} (exit {})\n", args.trace, verdict, result->code);
  return result->code;
}

}  // namespace

void AddReplayCommand(CLI::App& app, int& exit_code) {
  auto args = std::make_shared<ReplayArgs>();
  CLI::App* cmd =
      app.add_subcommand("replay",
                         "rebuild a trace's crash state, re-run the checks and compare the verdict "
                         "(exit 0 reproduced, 2 verdict differs, 3 device log differs)");
  cmd->add_option("trace", args->trace, "trace file (.cstrace)")->required();
  cmd->add_option("--image", args->image,
                  "write the crashed image (before check and repair) to this file");
  cmd->add_flag("--portable", args->portable,
                "replay the guest workload alone: map the crash point onto this build's run");
  cmd->add_option("--max-states", args->max_states,
                  "--portable: crash states to check at the mapped point");
  cmd->add_option("--write-trace", args->write_trace,
                  "write the trace of this build's run and verdict (e.g. after --portable)");
  cmd->add_flag("-q,--quiet", args->quiet, "print only the final line");
  cmd->callback([args, &exit_code] { exit_code = RunReplay(*args); });
}

static const RegisterCommand kRegisterReplay(AddReplayCommand);

}  // namespace crashsim::tools
