// Implementation of the check test helpers (check_test_util.h). Named *_test.cc so that the
// engine's CMake globs it into the test binary and not into crashsim_engine.
#include "engine/check/check_test_util.h"

#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>

#include <filesystem>
#include <fstream>
#include <regex>

#include "engine/coding.h"

namespace crashsim::check_test {

CommandResult RunCommand(const std::string& command) {
  CommandResult r;
  FILE* pipe = popen((command + " 2>/dev/null").c_str(), "r");
  if (!pipe) return r;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, pipe)) > 0) r.output.append(buf, n);
  int status = pclose(pipe);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return r;
}

bool HaveQemu() {
  static const bool have = RunCommand("qemu-img --version").exit_code == 0 &&
                           RunCommand("qemu-io --version").exit_code == 0;
  return have;
}

TempDir::TempDir() {
  char tmpl[] = "/tmp/crashsim-check-XXXXXX";
  char* d = mkdtemp(tmpl);
  dir_ = d ? d : "/tmp";
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(dir_, ec);
}

std::vector<uint8_t> LoadFile(const std::string& path) {
  // Sized first and read in one call: a byte-at-a-time istreambuf_iterator copy of a 64 MiB raw
  // export took seconds under ASan, most of CheckDiffTest's and RepairCrashTest's time.
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  if (!in) return {};
  std::vector<uint8_t> bytes(static_cast<size_t>(in.tellg()));
  in.seekg(0);
  in.read(reinterpret_cast<char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  bytes.resize(static_cast<size_t>(in.gcount()));
  return bytes;
}

void SaveFile(const std::string& path, const std::vector<uint8_t>& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(bytes.data()),
            static_cast<std::streamsize>(bytes.size()));
}

namespace {
int64_t JsonInt(const std::string& json, const std::string& key) {
  std::smatch m;
  std::regex re("\"" + key + "\": (\\d+)");
  return std::regex_search(json, m, re) ? std::stoll(m[1]) : 0;
}
}  // namespace

QemuCheck QemuImgCheck(const std::string& path, const std::string& repair) {
  std::string cmd = "qemu-img check --output=json ";
  if (!repair.empty()) cmd += "-r " + repair + " ";
  CommandResult r = RunCommand(cmd + "'" + path + "'");
  QemuCheck q;
  q.exit_code = r.exit_code;
  q.corruptions = JsonInt(r.output, "corruptions");
  q.leaks = JsonInt(r.output, "leaks");
  q.check_errors = JsonInt(r.output, "check-errors");
  q.corruptions_fixed = JsonInt(r.output, "corruptions-fixed");
  q.leaks_fixed = JsonInt(r.output, "leaks-fixed");
  q.image_end_offset = JsonInt(r.output, "image-end-offset");
  q.allocated = JsonInt(r.output, "allocated-clusters");
  q.fragmented = JsonInt(r.output, "fragmented-clusters");
  q.compressed = JsonInt(r.output, "compressed-clusters");
  q.total = JsonInt(r.output, "total-clusters");
  return q;
}

uint64_t ImageEditor::Get64(uint64_t offset) const { return LoadBE64(&bytes.at(offset)); }
uint32_t ImageEditor::Get32(uint64_t offset) const { return LoadBE32(&bytes.at(offset)); }
void ImageEditor::Set64(uint64_t offset, uint64_t value) { StoreBE64(&bytes.at(offset), value); }
void ImageEditor::Set32(uint64_t offset, uint32_t value) { StoreBE32(&bytes.at(offset), value); }

void ImageEditor::SetRefcount16(uint64_t cluster, uint16_t value) {
  uint64_t block = Get64(reftable_offset()) & ~uint64_t{0x1ff};
  StoreBE16(&bytes.at(block + cluster * 2), value);
}

}  // namespace crashsim::check_test
