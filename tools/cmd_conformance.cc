// `crashsim conformance --reader CMD`: builds the reader-conformance corpus (one qcow2 image per
// feature, made by crashsim's engine, with the expected guest content) and runs each reader on
// every image, printing a per-feature pass/fail table (validate/conformance.h). Built-in
// readers: qemu or qemu-img (qemu-img convert -O raw) and libqcow (python3-libqcow); any other
// value is a command template with {image} and {output}.
#include <fmt/format.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>

#include "tools/common.h"
#include "tools/junit.h"
#include "tools/progress.h"
#include "validate/conformance.h"

namespace crashsim::tools {
namespace {

struct ConformanceArgs {
  std::vector<std::string> readers;
  std::string dir;
  int timeout_ms = 60000;
  bool quiet = false;
  std::string junit;  // --junit FILE
};

int RunConformance(const ConformanceArgs& a) {
  std::vector<std::string> readers = a.readers;
  if (readers.empty()) readers = {"qemu", "libqcow"};
  for (const std::string& r : readers) {
    if (auto command = validate::ReaderTemplate(r); !command.ok()) return Fail(command.status());
  }
  std::string dir = a.dir;
  bool own = false;
  if (dir.empty()) {
    std::string templ =
        (std::filesystem::temp_directory_path() / "crashsim-conformance-XXXXXX").string();
    if (!mkdtemp(templ.data())) return Fail("cannot make a scratch directory");
    dir = templ;
    own = true;
  }
  auto corpus = validate::BuildCorpus(dir);
  if (!corpus.ok()) return Fail(corpus.status());
  std::vector<std::vector<validate::ReaderOutcome>> results;
  const ProgressStyle style = ProgressStyleFor(a.quiet, STDERR_FILENO);
  for (const std::string& r : readers) {
    ProgressMeter meter("conformance " + r, "images", style);
    results.push_back(validate::RunReader(
        *corpus, r, dir, a.timeout_ms, [&](size_t done) { meter.Update(done, corpus->size()); }));
  }
  std::string header = "| feature |", rule = "|---|";
  for (const std::string& r : readers) {
    header += " " + r + " |";
    rule += "---|";
  }
  fmt::print("{}\n{}\n", header, rule);
  size_t failures = 0;
  std::string notes;
  std::vector<JunitCase> cases;
  for (size_t i = 0; i < corpus->size(); ++i) {
    std::string row = "| " + (*corpus)[i].feature + " |";
    for (size_t j = 0; j < readers.size(); ++j) {
      const validate::ReaderOutcome& o = results[j][i];
      row += o.pass ? " pass |" : " FAIL |";
      JunitCase c;
      c.classname = "crashsim.conformance." + readers[j];
      c.name = o.feature;
      if (!o.pass) {
        c.failure_message = o.detail;
        c.failure_text = fmt::format("{} reads the corpus image for '{}' wrong: {}\n", readers[j],
                                     o.feature, o.detail);
      }
      cases.push_back(std::move(c));
      if (!o.pass) {
        ++failures;
        notes += fmt::format("- {} on {}: {}\n", readers[j], o.feature, o.detail);
      }
    }
    fmt::print("{}\n", row);
  }
  if (!notes.empty()) fmt::print("\n{}", notes);
  if (own) std::filesystem::remove_all(dir);
  if (!a.junit.empty()) {
    if (Status st = WriteJunit(a.junit, "crashsim conformance", cases); !st.ok()) return Fail(st);
  }
  return failures == 0 ? 0 : 2;
}

void AddConformanceCommand(CLI::App& app, int& exit_code) {
  auto args = std::make_shared<ConformanceArgs>();
  CLI::App* cmd = app.add_subcommand(
      "conformance", "run qcow2 readers over a corpus of engine-made images, per feature");
  cmd->add_option("--reader", args->readers,
                  "qemu (or qemu-img), libqcow, or a command template with {image} and {output}; "
                  "may repeat");
  cmd->add_option("--dir", args->dir, "keep the corpus and outputs here");
  cmd->add_option("--junit", args->junit,
                  "also write the table as JUnit XML here: a test case per reader and feature");
  cmd->add_flag("-q,--quiet", args->quiet,
                "no progress display (on a terminal: a line redrawn in place; otherwise a line "
                "every 5 s)");
  cmd->callback([args, &exit_code] { exit_code = RunConformance(*args); });
}

static const RegisterCommand kRegisterConformance(AddConformanceCommand);

}  // namespace
}  // namespace crashsim::tools
