// `crashsim demo`: the README's main job until the crash explorer exists. In a temporary
// directory it (1) creates images with crashsim across compat 0.10/1.1 x lazy refcounts off/on,
// writes patterns with `crashsim io`, and has QEMU judge them (`qemu-img check` must exit 0,
// `qemu-img compare` must find them equal to a raw file given the same writes by qemu-io); then
// (2) kills a lazy-refcounts qemu-io writer (`sigraise 9`) and shows that crashsim reports the
// image dirty, reads its data read-only, finds the errors with its checker and repairs them so
// that qemu-img check is clean and the data intact. Prints a compact table; exits 1 if any step
// fails.
// Everything runs as child processes, crashsim included, exactly as a user would type it.
#include <fmt/format.h>
#include <stdlib.h>

#include <filesystem>
#include <sstream>
#include <string>
#include <vector>

#include "process/subprocess.h"
#include "tools/common.h"

namespace crashsim::tools {
namespace {

// The guest writes both sides get: aligned, unaligned and cross-cluster, an overwrite, zero
// writes, a discard.
const std::vector<std::string> kWrites = {
    "write -P 0x5a 0 4k",   "write -P 0xa5 65000 70000",
    "write -P 0x11 1M 64k", "write -P 0x22 4k 4k",
    "write -z 1M 4k",       "write -P 0x33 3M 128k",
    "discard 3M 64k",       "write -z -u 8M 64k",
};

struct DemoConfig {
  const char* label;
  const char* options;
};
const DemoConfig kConfigs[] = {
    {"compat=0.10", "compat=0.10"},
    {"compat=1.1 lazy=off", "compat=1.1,lazy_refcounts=off"},
    {"compat=1.1 lazy=on", "compat=1.1,lazy_refcounts=on"},
};

// A step runs small images through qemu-img or crashsim: seconds at most; a hung one fails.
constexpr int kStepTimeoutMs = 120000;

class Demo {
 public:
  Demo(std::string dir, std::string self) : dir_(std::move(dir)), self_(std::move(self)) {}

  // Runs a step; on failure records it and prints the command and its output.
  bool Step(const std::vector<std::string>& argv, int expected_exit = 0) {
    ProcessResult r = RunCommand(argv, kStepTimeoutMs);
    ++steps_;
    if (r.exit_code == expected_exit) return true;
    ++failures_;
    std::string cmd;
    for (const std::string& a : argv) cmd += (cmd.empty() ? "" : " ") + a;
    fmt::print("  FAILED (exit {}, expected {}): {}\n", r.exit_code, expected_exit, cmd);
    for (std::istringstream in(r.output); !in.eof();) {
      std::string line;
      std::getline(in, line);
      if (!line.empty()) fmt::print("    | {}\n", line);
    }
    return false;
  }

  // Returns the output of a command that must succeed, or "" (and counts a failure).
  std::string Output(const std::vector<std::string>& argv) {
    ProcessResult r = RunCommand(argv, kStepTimeoutMs);
    ++steps_;
    if (r.exit_code == 0) return r.output;
    ++failures_;
    fmt::print("  FAILED (exit {}): {} ...\n    | {}\n", r.exit_code, argv.at(0), r.output);
    return "";
  }

  static const char* Mark(bool ok) { return ok ? "ok" : "FAIL"; }

  void WrittenByCrashsim() {
    fmt::print("{:<22} {:<12} {:<15} {:<15} {}\n", "image (64M, crashsim)", "crashsim io",
               "qemu-img check", "crashsim check", "qemu-img compare");
    for (const DemoConfig& c : kConfigs) {
      std::string img = Path(std::string("demo-") + c.options + ".qcow2");
      std::string raw = Path(std::string("demo-") + c.options + ".raw");
      bool created = Step({self_, "create", "-q", "-o", c.options, img, "64M"}) &&
                     Step({"qemu-img", "create", "-q", "-f", "raw", raw, "64M"});
      std::vector<std::string> io = {self_, "io"}, ref = {"qemu-io", "-f", "raw"};
      for (const std::string& w : kWrites) {
        for (auto* v : {&io, &ref}) v->insert(v->end(), {"-c", w});
      }
      io.push_back(img);
      ref.push_back(raw);
      bool written = created && Step(io) && Step(ref);
      bool checked = written && Step({"qemu-img", "check", "-q", img});
      bool self_checked = written && Step({self_, "check", "-q", img});
      bool compared =
          written && Step({"qemu-img", "compare", "-q", "-f", "qcow2", "-F", "raw", img, raw});
      fmt::print("{:<22} {:<12} {:<15} {:<15} {}\n", c.label, Mark(written),
                 checked ? "ok (exit 0)" : Mark(false), self_checked ? "ok (exit 0)" : Mark(false),
                 compared ? "identical" : Mark(false));
    }
  }

  void KilledQemuWriter() {
    std::string img = Path("killed-lazy.qcow2");
    fmt::print(
        "\nqemu-io killed mid-run (compat=1.1, lazy_refcounts=on, write -P 0x5a 0 512, "
        "sigraise 9):\n");
    bool created = Step({"qemu-img", "create", "-q", "-f", "qcow2", "-o",
                         "compat=1.1,lazy_refcounts=on", img, "64M"});
    bool killed =
        created && Step({"qemu-io", "-c", "write -P 0x5a 0 512", "-c", "sigraise 9", img}, 128 + 9);
    fmt::print("  {:<40} {}\n", "qemu-io killed by SIGKILL", killed ? "yes (exit 137)" : "FAIL");
    std::string info = killed ? Output({self_, "info", "--output=json", img}) : "";
    bool dirty = info.find("\"dirty-flag\": true") != std::string::npos;
    if (killed && !dirty) ++failures_;
    fmt::print("  {:<40} {}\n", "crashsim info: dirty-flag", dirty ? "true" : "FAIL");
    bool read = dirty && Step({self_, "io", "-r", "-c", "read -P 0x5a 0 512", img});
    fmt::print("  {:<40} {}\n", "crashsim io -r: read -P 0x5a 0 512", Mark(read));
    std::string after = read ? Output({self_, "info", "--output=json", img}) : "";
    bool still_dirty = after.find("\"dirty-flag\": true") != std::string::npos;
    if (read && !still_dirty) ++failures_;
    fmt::print("  {:<40} {}\n", "still dirty after the read-only open",
               still_dirty ? "yes" : "FAIL");
    // Like qemu-img check: the lagging refcounts are corruptions (exit 2) until -r all.
    bool errors = still_dirty && Step({self_, "check", "-q", img}, 2);
    fmt::print("  {:<40} {}\n", "crashsim check finds the errors",
               errors ? "yes (exit 2)" : "FAIL");
    bool repaired = errors && Step({self_, "check", "-q", "-r", "all", img}) &&
                    Step({"qemu-img", "check", "-q", img}) &&
                    Step({"qemu-io", "-r", "-c", "read -P 0x5a 0 512", img});
    fmt::print("  {:<40} {}\n", "crashsim check -r all, then qemu-img ok",
               repaired ? "yes (data intact)" : "FAIL");
  }

  int Finish() const {
    if (failures_ == 0) {
      fmt::print("\ndemo: all {} steps passed\n", steps_);
      return 0;
    }
    fmt::print("\ndemo: {} of {} steps FAILED\n", failures_, steps_);
    return kExitFailure;
  }

 private:
  std::string Path(const std::string& name) const { return dir_ + "/" + name; }

  std::string dir_;
  std::string self_;
  int steps_ = 0;
  int failures_ = 0;
};

int RunDemo(bool keep) {
  for (const char* program : {"qemu-img", "qemu-io"}) {
    if (FindProgram(program).empty()) {
      return Fail(
          fmt::format("demo needs {} (Debian package qemu-utils; ci/setup installs it)", program));
    }
  }
  std::string tmpl = (std::filesystem::temp_directory_path() / "crashsim-demo.XXXXXX").string();
  if (::mkdtemp(tmpl.data()) == nullptr) return Fail("cannot create a temporary directory");
  fmt::print("crashsim demo: images written by crashsim, judged by QEMU ({})\n\n", tmpl);
  Demo demo(tmpl, SelfExecutable());
  demo.WrittenByCrashsim();
  demo.KilledQemuWriter();
  int exit_code = demo.Finish();
  std::error_code ec;
  if (!keep) std::filesystem::remove_all(tmpl, ec);
  return exit_code;
}

}  // namespace

void AddDemoCommand(CLI::App& app, int& exit_code) {
  auto keep = std::make_shared<bool>(false);
  CLI::App* cmd =
      app.add_subcommand("demo", "create and write images with crashsim, check them with qemu-img");
  cmd->add_flag("--keep", *keep, "keep the temporary directory");
  cmd->callback([keep, &exit_code] { exit_code = RunDemo(*keep); });
}

}  // namespace crashsim::tools
