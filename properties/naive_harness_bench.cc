// The naive crash harness, for bench/explore_bench.sh to compare `crashsim explore` against:
// records the same seeded workload `explore` would, enumerates the same crash states, and for an
// evenly spaced sample of them does what a harness without simdisk's sharing and verdict cache
// would do per state: build the crashed image, write it out as a file, and run `qemu-img check`
// on it. Prints one line of figures per state class and the medians the script reads.
//
// Usage: naive_harness_bench --seed N --ops N --disk-size BYTES --cache MODE --lazy on|off
//                            [--sample N] [--dir DIR] [--qemu-img PATH]
//        naive_harness_bench --seed N --ops N --disk-size BYTES --workload-text
//          prints the seeded workload's text form (for runs of the same ops on other disks)
// Output (last line, for scripts):
//   naive states=TOTAL sampled=N median_cpu_ms=X median_wall_ms=Y image_mib=Z exit0=A exit1=B...
#include <fcntl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <string>
#include <vector>

#include "process/subprocess.h"
#include "properties/explorer.h"
#include "properties/random_workload.h"
#include "simdisk/crash_enumerator.h"
#include "simdisk/materialise.h"

namespace crashsim {
namespace {

struct Args {
  uint64_t seed = kDefaultWorkloadSeed;
  size_t ops = kDefaultWorkloadOps;
  uint64_t disk_size = kDefaultDiskSize;
  std::string cache = "writethrough";
  bool lazy = false;
  size_t sample = 50;
  std::string dir = "/tmp";
  std::string qemu_img = "qemu-img";
  bool workload_text = false;
};

[[noreturn]] void Usage(const char* why) {
  std::fprintf(stderr,
               "naive_harness_bench: %s\n(usage: see the head of "
               "properties/naive_harness_bench.cc)\n",
               why);
  std::exit(2);
}

Args Parse(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    const std::string flag = argv[i];
    if (flag == "--workload-text") {
      a.workload_text = true;
      continue;
    }
    if (i + 1 >= argc) Usage(("flag " + flag + " needs a value").c_str());
    const std::string value = argv[++i];
    char* end = nullptr;
    auto number = [&]() {
      const unsigned long long n = std::strtoull(value.c_str(), &end, 10);
      if (value.empty() || *end != '\0') Usage((flag + " wants a number, got " + value).c_str());
      return static_cast<uint64_t>(n);
    };
    if (flag == "--seed")
      a.seed = number();
    else if (flag == "--ops")
      a.ops = number();
    else if (flag == "--disk-size")
      a.disk_size = number();
    else if (flag == "--sample")
      a.sample = std::max<uint64_t>(1, number());
    else if (flag == "--cache")
      a.cache = value;
    else if (flag == "--lazy")
      a.lazy = value == "on";
    else if (flag == "--dir")
      a.dir = value;
    else if (flag == "--qemu-img")
      a.qemu_img = value;
    else
      Usage(("unknown flag " + flag).c_str());
  }
  if (a.disk_size == 0 || a.disk_size % 512 != 0) Usage("--disk-size: a multiple of 512");
  return a;
}

double CpuSeconds(int who) {
  rusage u{};
  getrusage(who, &u);
  return u.ru_utime.tv_sec + u.ru_stime.tv_sec + (u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

// Writes every byte of `medium` to `path`, as a harness that copies each state out would.
void WriteImage(const simdisk::Medium& medium, const std::string& path) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd < 0) Usage(("cannot create " + path).c_str());
  std::vector<uint8_t> buffer(1 << 20);
  for (uint64_t offset = 0; offset < medium.size(); offset += buffer.size()) {
    const size_t n = std::min<uint64_t>(buffer.size(), medium.size() - offset);
    medium.ReadAt(offset, std::span(buffer.data(), n));
    if (::pwrite(fd, buffer.data(), n, static_cast<off_t>(offset)) != static_cast<ssize_t>(n)) {
      Usage(("write to " + path + " failed").c_str());
    }
  }
  ::close(fd);
}

// qemu-img's CPU time reaches CpuSeconds(RUSAGE_CHILDREN) once RunCommand has reaped it.
int QemuImgCheck(const std::string& qemu_img, const std::string& path) {
  const ProcessResult r = RunCommand({qemu_img, "check", "-q", "-f", "qcow2", path}, 600000);
  if (r.exit_code == 127) Usage(("cannot run " + qemu_img + ": " + r.output).c_str());
  return r.exit_code;
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

int Main(int argc, char** argv) {
  const Args a = Parse(argc, argv);
  ExploreOptions o;  // the same enumeration `crashsim explore` makes with its defaults
  o.settings = PresetSettings(SettingsPreset::kExplore);
  o.settings.image.lazy_refcounts = a.lazy;
  auto mode = ParseCacheMode(a.cache);
  if (!mode.ok()) Usage(("--cache: " + mode.status().ToString()).c_str());
  o.settings.cache_mode = *mode;
  o.settings.selection.seed = a.seed;
  const Workload w = RandomWorkload(a.seed, a.ops, a.disk_size, o.settings.image.cluster_size);
  if (a.workload_text) {
    std::fputs(w.ToText().c_str(), stdout);
    return 0;
  }
  auto explorer = Explorer::Record(w, o);
  if (!explorer.ok()) Usage(explorer.status().ToString().c_str());
  const std::shared_ptr<const simdisk::Recording> recording = (*explorer)->shared_recording();
  simdisk::CrashEnumerator enumerator(recording, (*explorer)->EnumerationFor());
  std::vector<simdisk::CrashState> states;
  while (auto s = enumerator.Next()) states.push_back(std::move(*s));
  if (states.empty()) Usage("the workload has no crash states");

  const std::string path = a.dir + "/naive-harness-" + std::to_string(::getpid()) + ".qcow2";
  std::vector<double> cpu_ms, wall_ms;
  std::map<int, size_t> exits;
  uint64_t image_bytes = 0;
  const size_t n = std::min(a.sample, states.size());
  for (size_t i = 0; i < n; ++i) {
    const simdisk::CrashState& state = states[i * states.size() / n];
    const double cpu0 = CpuSeconds(RUSAGE_SELF) + CpuSeconds(RUSAGE_CHILDREN);
    const auto wall0 = std::chrono::steady_clock::now();
    auto medium = simdisk::Materialise(*recording, state);
    if (!medium.ok()) Usage(medium.status().ToString().c_str());
    WriteImage(**medium, path);
    ++exits[QemuImgCheck(a.qemu_img, path)];
    wall_ms.push_back(
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - wall0)
            .count());
    cpu_ms.push_back((CpuSeconds(RUSAGE_SELF) + CpuSeconds(RUSAGE_CHILDREN) - cpu0) * 1e3);
    image_bytes += (*medium)->size();
  }
  ::unlink(path.c_str());
  std::printf("naive states=%zu sampled=%zu median_cpu_ms=%.3f median_wall_ms=%.3f image_mib=%.2f",
              states.size(), n, Median(cpu_ms), Median(wall_ms),
              image_bytes / double(n) / (1 << 20));
  for (const auto& [code, count] : exits) std::printf(" exit%d=%zu", code, count);
  std::printf("\n");
  return 0;
}

}  // namespace
}  // namespace crashsim

int main(int argc, char** argv) { return crashsim::Main(argc, argv); }
