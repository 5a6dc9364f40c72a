// The validate driver (validate.h): recording a target's run over NBD, tagging it, and checking
// every crash state with crashsim's property, the target's checker and the target's repairs.
#include "validate/validate.h"

#include <fmt/format.h>

#include <algorithm>
#include <filesystem>
#include <map>
#include <mutex>

#include "engine/check/check.h"
#include "engine/format/header.h"
#include "engine/image.h"
#include "engine/posix_device.h"
#include "engine/snapshot.h"
#include "process/subprocess.h"
#include "properties/crash_check.h"
#include "properties/guest_delta.h"
#include "properties/snapshot_ops.h"
#include "simdisk/materialise.h"
#include "simdisk/medium.h"
#include "simdisk/sim_disk.h"
#include "traces/embedded.h"
#include "traces/trace.h"
#include "validate/device_files.h"
#include "validate/metadata_tags.h"
#include "validate/nbd_server.h"
#include "validate/workload_generator.h"

namespace crashsim::validate {
namespace fs = std::filesystem;
namespace {

std::string Verdict(int exit_code, int64_t corruptions, int64_t leaks) {
  return fmt::format("exit {}: {} corruptions, {} leaks", exit_code, corruptions, leaks);
}

// Reads "key": N from qemu-img's JSON; absent keys are 0.
int64_t JsonInt(const std::string& json, const std::string& key) {
  size_t at = json.find("\"" + key + "\":");
  if (at == std::string::npos) return 0;
  return std::strtoll(json.c_str() + at + key.size() + 3, nullptr, 10);
}

std::vector<std::string> SplitCommands(const std::string& text) {
  std::vector<std::string> out;
  size_t start = 0;
  for (;;) {
    size_t at = text.find(";;", start);
    std::string part = text.substr(start, at == std::string::npos ? at : at - start);
    size_t b = part.find_first_not_of(' '), e = part.find_last_not_of(' ');
    if (b != std::string::npos) out.push_back(part.substr(b, e - b + 1));
    if (at == std::string::npos) break;
    start = at + 2;
  }
  return out;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Recording the target's run.

struct Validator::Impl {
  std::string work_dir;
  bool own_work_dir = false;
  std::map<std::string, std::string> vars;
  uint64_t file_counter = 0;

  std::string File(const std::string& name) { return work_dir + "/" + name; }
};

Validator::Validator(ValidateOptions options) : options_(std::move(options)), impl_(new Impl) {}

Validator::~Validator() {
  if (impl_->own_work_dir && !impl_->work_dir.empty()) {
    std::error_code ec;
    fs::remove_all(impl_->work_dir, ec);
  }
}

namespace {

// The target file's op.KEY for a guest op: the op's own name, zero_unmap for an unmapping zero.
std::string OpKey(const WorkloadOp& op) {
  if (op.kind == WorkloadOpKind::kZero && op.unmap) return "zero_unmap";
  if (op.kind == WorkloadOpKind::kWrite && op.compressed) return "write-compressed";
  return WorkloadOpKindName(op.kind);
}

// Whether the target runs every image operation a generated workload may hold.
bool HasImageOps(const TargetSpec& t) {
  for (WorkloadOpKind kind : {WorkloadOpKind::kSnapshot, WorkloadOpKind::kApplySnapshot,
                              WorkloadOpKind::kDeleteSnapshot, WorkloadOpKind::kResize}) {
    if (!t.ops.count(WorkloadOpKindName(kind))) return false;
  }
  return true;
}

// The target's interactive driver, sent one guest op at a time; the op's bounds are marked on
// the recording disk (under the NBD server's lock) so crash points can name guest ops.
class GuestDriver {
 public:
  GuestDriver(const TargetSpec& target, int timeout_ms, simdisk::SimDisk& disk, std::mutex& mutex,
              std::unique_ptr<Interactive> driver)
      : target_(target),
        timeout_ms_(timeout_ms),
        disk_(disk),
        mutex_(mutex),
        driver_(std::move(driver)) {}

  // Waits for the driver's first prompt.
  Status Started() {
    auto opened = driver_->ReadUntil(target_.prompt, timeout_ms_);
    if (opened.ok() && !AnswerIsError(target_, *opened)) return Status::Ok();
    return Status::IoError(fmt::format("{} driver did not start: {} {}", target_.name,
                                       opened.status().ToString(),
                                       driver_->output_so_far() + (opened.ok() ? *opened : "")));
  }

  // Sends one guest op's commands; `last`: the driver then exits (the close). A command that
  // starts with '!' is a program run on its own (the NBD export stays served), for image
  // operations the driver has no command for; the driver's own commands close and reopen the
  // image around it.
  Status Run(uint64_t id, const std::string& label, const std::vector<std::string>& cmds,
             bool last) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      disk_.BeginGuestOp(id, label);
    }
    for (const std::string& cmd : cmds) {
      if (cmd.starts_with('!')) {
        RETURN_IF_ERROR(RunProgram(cmd.substr(1)));
        continue;
      }
      RETURN_IF_ERROR(driver_->SendLine(cmd));
      if (last) {
        ProcessResult r = driver_->Finish(timeout_ms_);
        if (r.exit_code != 0 || AnswerIsError(target_, r.output)) {
          return Status::IoError(
              fmt::format("'{}' ended with exit {}: {}", cmd, r.exit_code, r.output));
        }
        break;
      }
      auto answer = driver_->ReadUntil(target_.prompt, timeout_ms_);
      if (!answer.ok()) return answer.status().WithContext(fmt::format("'{}'", cmd));
      if (AnswerIsError(target_, *answer)) {
        return Status::IoError(fmt::format("'{}' failed: {}", cmd, *answer));
      }
    }
    std::lock_guard<std::mutex> lock(mutex_);
    disk_.AckGuestOp();
    return Status::Ok();
  }

 private:
  Status RunProgram(const std::string& cmd) {
    ASSIGN_OR_RETURN(std::vector<std::string> argv, ExpandCommand(cmd, {}));
    if (argv.empty()) return Status::InvalidArgument("'!' with no program after it");
    ProcessResult r = RunCommand(argv, timeout_ms_);
    if (r.exit_code != 0 || AnswerIsError(target_, r.output)) {
      return Status::IoError(fmt::format("'{}' ended with exit {}{}: {}", cmd, r.exit_code,
                                         r.timed_out ? " (timed out)" : "", r.output));
    }
    return Status::Ok();
  }

  const TargetSpec& target_;
  const int timeout_ms_;
  simdisk::SimDisk& disk_;
  std::mutex& mutex_;
  std::unique_ptr<Interactive> driver_;
};

}  // namespace

Status Validator::MakeWorkDir() {
  if (!options_.work_dir.empty()) {
    impl_->work_dir = options_.work_dir;
    fs::create_directories(impl_->work_dir);
    return Status::Ok();
  }
  std::string templ = (fs::temp_directory_path() / "crashsim-validate-XXXXXX").string();
  if (!mkdtemp(templ.data())) return Status::IoError("cannot make a scratch directory");
  impl_->work_dir = templ;
  impl_->own_work_dir = true;
  return Status::Ok();
}

void Validator::DescribeRun() {
  const TargetSpec& t = options_.target;
  report_.target_name = t.name;
  if (!t.version.empty()) {
    auto argv = ExpandCommand(t.version, {});
    if (argv.ok()) {
      ProcessResult v = RunCommand(*argv, options_.timeout_ms);
      report_.target_version = v.output.substr(0, v.output.find('\n'));
    }
  }
  report_.workload = options_.workload
                         ? *options_.workload
                         : GenerateWorkload(options_.settings.selection.seed, options_.disk_size,
                                            options_.settings.image.cluster_size,
                                            options_.workload_ops, HasImageOps(t));
  const ExploreSettings& s = options_.settings;
  const std::string socket = impl_->File("nbd.sock");
  impl_->vars = {
      {"socket", socket},
      {"uri", "nbd+unix:///?socket=" + socket},
      {"size", std::to_string(report_.workload.disk_size)},
      {"cache", SettingValue(s, "cache")},
      {"create_opts",
       fmt::format("compat={},cluster_size={},lazy_refcounts={},refcount_bits={},extended_l2={},"
                   "compression_type={}",
                   s.image.version == 2 ? "0.10" : "1.1", s.image.cluster_size,
                   s.image.lazy_refcounts ? "on" : "off", s.image.refcount_bits,
                   s.image.extended_l2 ? "on" : "off",
                   s.image.compression_type == CompressionType::kZstd ? "zstd" : "zlib")},
      {"image_opts", options_.image_opts.empty() ? "" : "," + options_.image_opts}};
}

std::string Validator::ConfigLine() const {
  const ExploreSettings& s = options_.settings;
  const bool lazy = created_header_ ? created_header_->lazy_refcounts() : s.image.lazy_refcounts;
  // The seed draws a generated workload and the sampled states; with a workload file it only
  // draws the states, and the line names the file instead.
  const std::string source =
      options_.workload ? fmt::format("workload={} states-seed={}",
                                      options_.workload_name.empty()
                                          ? std::string("given")
                                          : fs::path(options_.workload_name).filename().string(),
                                      SettingValue(s, "seed"))
                        : fmt::format("seed={}", SettingValue(s, "seed"));
  return fmt::format("cache={} lazy={} crash={} {}", SettingValue(s, "cache"), lazy ? "on" : "off",
                     SettingValue(s, "crash"), source);
}

Result<std::shared_ptr<simdisk::Medium>> Validator::CreateImage(
    const simdisk::SimDiskOptions& disk_options) {
  const TargetSpec& t = options_.target;
  std::mutex mutex;
  simdisk::SimDisk create_disk(disk_options);
  NbdServer server(create_disk, mutex, {.socket_path = impl_->vars.at("socket")});
  RETURN_IF_ERROR(server.Start());
  ASSIGN_OR_RETURN(auto argv, ExpandCommand(t.create, impl_->vars));
  ProcessResult r = RunCommand(argv, options_.timeout_ms);
  server.Stop();
  if (r.exit_code != 0) {
    return Status::IoError(
        fmt::format("{} create failed (exit {}): {}", t.name, r.exit_code, r.output));
  }
  return std::make_shared<simdisk::Medium>(create_disk.live());
}

Status Validator::DriveWorkload(simdisk::SimDisk& disk) {
  const TargetSpec& t = options_.target;
  const Workload& workload = report_.workload;
  std::mutex mutex;
  NbdServer server(disk, mutex, {.socket_path = impl_->vars.at("socket")});
  RETURN_IF_ERROR(server.Start());
  ASSIGN_OR_RETURN(auto drive_argv, ExpandCommand(t.drive, impl_->vars));
  ASSIGN_OR_RETURN(auto interactive, Interactive::Start(drive_argv));
  GuestDriver driver(t, options_.timeout_ms, disk, mutex, std::move(interactive));
  RETURN_IF_ERROR(driver.Started());
  const std::vector<SnapshotOpTarget> snapshot_ops = SnapshotOpTargets(
      workload, created_header_ &&
                    CanHoldSnapshots(created_header_->version, created_header_->refcount_bits()));
  for (size_t i = 0; i < workload.ops.size(); ++i) {
    const WorkloadOp& op = workload.ops[i];
    std::map<std::string, std::string> v = impl_->vars;
    v["offset"] = std::to_string(op.offset);
    v["length"] = std::to_string(op.length);
    v["new_size"] = std::to_string(op.new_size);
    v["snapshot"] = snapshot_ops[i].name;
    if (op.kind == WorkloadOpKind::kWrite) {
      std::vector<uint8_t> data(op.length);
      FillPattern(op.pattern, op.offset, data);
      v["data_file"] = impl_->File("data.bin");
      RETURN_IF_ERROR(WriteBytes(v["data_file"], data));
    }
    // A snapshot op with nothing to act on flushes instead, as the reference engine does.
    const std::string key = snapshot_ops[i].skipped ? "flush" : OpKey(op);
    auto it = t.ops.find(key);
    if (it == t.ops.end()) {
      return Status::NotSupported(
          fmt::format("target {} has no op.{} for '{}'", t.name, key, op.ToText()));
    }
    ASSIGN_OR_RETURN(std::string cmds, Expand(it->second, v));
    Status st = driver.Run(i, op.ToText(), SplitCommands(cmds), false);
    if (!st.ok()) return st.WithContext(fmt::format("guest op #{} ({})", i, op.ToText()));
  }
  RETURN_IF_ERROR(
      driver.Run(workload.ops.size(), "close", {t.ops.at("close")}, true).WithContext("close"));
  server.Stop();
  return Status::Ok();
}

Status Validator::Record() {
  RETURN_IF_ERROR(MakeWorkDir());
  DescribeRun();
  // 1. Creation, outside the crash run.
  simdisk::SimDiskOptions so;
  so.cache_mode = CacheMode::kWriteback;  // every flush and FUA is honoured and recorded
  so.initial_size = options_.export_size;
  ASSIGN_OR_RETURN(std::shared_ptr<simdisk::Medium> initial, CreateImage(so));
  {
    simdisk::Medium created = *initial;
    if (auto header = ReadImageHeader(created, /*for_check=*/true); header.ok()) {
      created_header_ = *header;
    }
  }
  report_.config = ConfigLine();
  // 2. The workload, one guest operation at a time.
  simdisk::SimDisk disk(so, initial);
  RETURN_IF_ERROR(DriveWorkload(disk));
  recording_ = TagByImageMetadata(disk.recording());
  for (const simdisk::OpRecord& op : recording_->ops()) {
    if (op.kind == simdisk::OpKind::kWrite) {
      ++report_.device_writes;
      if (op.fua) ++report_.device_fua;
      if (op.tag != IoTag::kData) ++report_.metadata_writes;
    }
    if (op.kind == simdisk::OpKind::kFlush) ++report_.device_flushes;
  }
  report_.device_ops = recording_->op_count();
  // The oracle, as the explorer builds it (the close is a flush); replay of the traces builds
  // the same one (traces/embedded.h).
  oracle_ = traces::OracleFor(report_.workload, options_.settings.cache_mode,
                              options_.settings.selection.kind, *recording_);
  return Status::Ok();
}

// ---------------------------------------------------------------------------------------------
// The crash property, with crashsim's checker and oracle (the explorer's CheckDevice sequence).

namespace {

std::string CheckData(BlockDevice& device, const GuestOracle& oracle, uint64_t point,
                      const char* when) {
  OpenOptions ro;
  ro.read_only = true;
  return CheckGuestData(device, oracle, ro, point, when);
}

// The guest clusters an image maps (anything but unallocated): the only ones that can read
// differently from another image with the same backing file.
Result<ByteRanges> MappedGuestRanges(BlockDevice& device) {
  OpenOptions ro;
  ro.read_only = true;
  ASSIGN_OR_RETURN(auto image, Image::Open(device, ro));
  const uint64_t cs = image->geometry().cluster_size();
  ByteRanges ranges;
  RETURN_IF_ERROR(image->ForEachMappedCluster([&](uint64_t guest, ClusterType) {
    ranges.push_back({guest, std::min(guest + cs, image->virtual_size())});
    return Status::Ok();
  }));
  return ranges;
}

Result<std::vector<uint8_t>> ReadGuestRange(BlockDevice& device, uint64_t offset, uint64_t length) {
  OpenOptions ro;
  ro.read_only = true;
  ASSIGN_OR_RETURN(auto image, Image::Open(device, ro));
  std::vector<uint8_t> out(length);
  RETURN_IF_ERROR(image->Read(offset, out));
  return out;
}

}  // namespace

std::string Validator::CheckProperty(const simdisk::CrashState& state, Outcome* outcome,
                                     bool* dirty) {
  auto medium = simdisk::Materialise(*recording_, state);
  if (!medium.ok()) return "cannot materialise the crash state: " + medium.status().ToString();
  OpenOptions ro;
  ro.read_only = true;
  CrashCheckResult r = CheckCrashedImage(**medium, *oracle_, ro, state.point);
  *outcome = r.outcome;
  *dirty = r.dirty;
  return r.failure;
}

namespace {

struct TargetCheck {
  bool ran = false;
  int exit_code = -1;
  int64_t corruptions = 0, leaks = 0, check_errors = 0;
  std::string output;
};

}  // namespace

ValidateReport Validator::Run(const std::function<void(const ExploreProgress&)>& progress) {
  ValidateReport& report = report_;
  const TargetSpec& t = options_.target;
  simdisk::EnumerationOptions e = EnumerationOptionsFor(options_.settings);
  // A bounded run spreads its states over the whole run: evenly spaced crash points, the last
  // (the end of the clean close) always among them.
  const uint64_t per_point = std::max<uint64_t>(
      1, options_.settings.selection.exhaustive_budget + options_.settings.selection.samples);
  std::vector<uint64_t> points = simdisk::CrashPoints(*recording_);
  if (options_.max_states && points.size() * per_point > options_.max_states) {
    e.points = simdisk::EvenlySpaced(points, std::max<size_t>(1, options_.max_states / per_point));
  }
  simdisk::CrashEnumerator enumerator(recording_, e);
  for (const auto& repair : t.repairs) {
    RepairStudy study;
    study.name = repair.first;
    report.repairs.push_back(study);
  }

  const std::string image_file = impl_->File("crash.qcow2");

  uint64_t index = 0;
  while (auto state = enumerator.Next()) {
    if (options_.max_states && report.explored >= options_.max_states) break;
    ++index;
    Outcome outcome = Outcome::kClean;
    bool dirty = false;
    std::string failure = CheckProperty(*state, &outcome, &dirty);
    if (!failure.empty()) outcome = Outcome::kFailure;
    ++report.explored;
    ++report.outcomes[static_cast<int>(outcome)];
    if (dirty) ++report.dirty_states;

    auto medium = simdisk::Materialise(*recording_, *state);
    const bool saved = medium.ok() && SaveDevice(**medium, image_file).ok();

    // The target's checker as a second opinion on the state as it is.
    if (saved && options_.second_opinion && !t.check.empty()) {
      CheckReport ours = Check(**medium);
      ProcessResult r = RunOnFile(t.check, {{"image", image_file}});
      ++report.second_opinions;
      const int64_t corruptions = JsonInt(r.output, "corruptions");
      const int64_t leaks = JsonInt(r.output, "leaks");
      const int ours_exit = CheckExitCode(ours);
      if (ours_exit != r.exit_code || ours.corruptions != corruptions || ours.leaks != leaks) {
        report.disagreements.push_back({state->ToText(),
                                        Verdict(ours_exit, ours.corruptions, ours.leaks),
                                        Verdict(r.exit_code, corruptions, leaks)});
      }
    }

    // The target reads the state back: what it returns must be legal at the crash point. A
    // state whose data crashsim's own reading already finds illegal counts, but is one finding.
    current_state_ = &*state;
    std::string read_back;
    if (saved && options_.read_back && !t.read.empty()) {
      ++report.read_backs;
      read_back = TargetReadBack(image_file, state->point, "as the crash left it");
      if (!read_back.empty()) ++report.read_back_failures;
    }

    // The target's own repairs on every dirty state.
    if (saved && dirty && options_.repair_study &&
        (options_.repair_states == 0 || report.dirty_states <= options_.repair_states)) {
      for (size_t i = 0; i < t.repairs.size(); ++i) {
        StudyRepair(t.repairs[i].second, image_file, state->point, report.repairs[i]);
      }
    }

    if (!read_back.empty() && outcome != Outcome::kFailure) {
      RecordReadBackFinding(image_file, state->point, read_back);
    }
    current_state_ = nullptr;
    if (outcome == Outcome::kFailure) RecordFinding(*state, failure);
    if (progress) {
      // Points start one by one here: the plan is whole only once the last has started.
      const simdisk::EnumerationStats& stats = enumerator.stats();
      uint64_t expected = stats.crash_points == stats.points_total ? stats.planned : 0;
      if (options_.max_states)
        expected = expected ? std::min(expected, options_.max_states) : options_.max_states;
      progress({report.explored, expected});
    }
  }
  report.enumeration = enumerator.stats();
  return report;
}

std::string Validator::TargetReadBack(const std::string& image, uint64_t point, const char* when) {
  const std::string output = impl_->File("read-back.raw");
  std::error_code ec;
  fs::remove(output, ec);
  ProcessResult r = RunOnFile(options_.target.read, {{"image", image}, {"output", output}});
  if (r.exit_code != 0) {
    return fmt::format("the target could not read the image {} (exit {}): {}", when, r.exit_code,
                       r.output.substr(0, r.output.find('\n')));
  }
  // Only the raw file's data extents are read: its holes read as zeros, which the oracle judges
  // without reading (implied runs), so the cost follows what the target wrote, not the disk.
  auto disk = PosixDevice::Open(output, PosixOpenOptions{.read_only = true});
  auto extents = DataExtents(output);
  if (!disk.ok() || !extents.ok()) {
    return fmt::format("no guest disk from the target {}: {}", when,
                       (disk.ok() ? extents.status() : disk.status()).ToString());
  }
  auto size = (*disk)->Size();
  if (!size.ok()) return fmt::format("no guest disk from the target {}", when);
  const ImpliedRuns runs = [&](uint64_t offset) -> ImpliedRun {
    auto it =
        std::upper_bound(extents->begin(), extents->end(), std::make_pair(offset, UINT64_MAX));
    if (it != extents->begin() && std::prev(it)->second > offset) {
      return {std::prev(it)->second, ImpliedContent::kRead};
    }
    return {it == extents->end() ? UINT64_MAX : it->first, ImpliedContent::kZero};
  };
  auto read = [&](uint64_t offset, std::span<uint8_t> data) { return (*disk)->Read(offset, data); };
  auto violation = oracle_->Check(point, *size, read, &runs);
  if (!violation.ok()) {
    return fmt::format("cannot read the target's guest disk {}: {}", when,
                       violation.status().ToString());
  }
  std::optional<DataViolation> bad = *violation;
  // Ranges no op touched: holes must be legal as zeros, data must read as the initial content.
  std::vector<uint8_t> buf;
  uint64_t pos = 0;
  for (const auto& [begin, end] : *extents) {
    if (bad) break;
    if (pos < begin && !oracle_->ImpliedLegal(point, pos, begin, ImpliedContent::kZero)) {
      bad = DataViolation{pos, fmt::format("guest bytes {:#x}..{:#x} read as zeros", pos, begin)};
    }
    oracle_->ForEachUntouched(begin, std::min(end, *size), [&](uint64_t b, uint64_t e) {
      for (uint64_t at = b; at < e && !bad; at += 1 << 20) {
        buf.resize(std::min<uint64_t>(e - at, 1 << 20));
        if (!read(at, buf).ok()) {
          bad = DataViolation{at, "the target's output cannot be read"};
        } else {
          bad = oracle_->CheckUntouched(at, buf);
        }
      }
    });
    pos = end;
  }
  if (!bad && pos < *size && !oracle_->ImpliedLegal(point, pos, *size, ImpliedContent::kZero)) {
    bad = DataViolation{pos, fmt::format("guest bytes {:#x}..{:#x} read as zeros", pos, *size)};
  }
  if (bad) {
    return fmt::format("the target reads lost or illegal guest data {}: {}", when, bad->message);
  }
  return "";
}

ProcessResult Validator::RunOnFile(const std::string& templ,
                                   const std::map<std::string, std::string>& extra) {
  std::map<std::string, std::string> v = impl_->vars;
  for (const auto& [k, val] : extra) v[k] = val;
  auto argv = ExpandCommand(templ, v);
  if (!argv.ok()) return ProcessResult{.exit_code = 127, .output = argv.status().ToString()};
  return RunCommand(*argv, options_.timeout_ms);
}

// ---------------------------------------------------------------------------------------------
// The target's own repair on a dirty state, then more writes with the target.

void Validator::StudyRepair(const std::string& command, const std::string& image_file,
                            uint64_t point, RepairStudy& study) {
  const std::string copy = impl_->File("repair.qcow2");
  std::error_code ec;
  fs::copy_file(image_file, copy, fs::copy_options::overwrite_existing, ec);
  if (ec) return;
  auto note = [&](const std::string& what) {
    if (study.examples.size() < 3) study.examples.push_back(what);
  };
  // Lost durable data or a cluster used twice after the target's own repair is a finding; the
  // first per repair and run is kept with the image it started from.
  auto finding = [&](const std::string& what) {
    note(what);
    if (study.data_lost + study.broken_after_writes == 1) {
      RecordRepairFinding(study.name, command, image_file, point, what);
    }
  };
  ++study.attempted;
  ProcessResult r = RunOnFile(command, {{"image", copy}});
  if (r.exit_code == 0) {
    ++study.exit_zero;
  } else {
    ++study.refused;
    std::string first = r.output.substr(0, r.output.find('\n'));
    note(fmt::format("exit {}: {}", r.exit_code, first));
  }
  auto repaired = LoadFile(copy);
  if (!repaired.ok()) return;
  auto header = ReadImageHeader(**repaired, true);
  const bool dirty = header.ok() && header->dirty();
  if (dirty) ++study.still_dirty;
  CheckReport after = Check(**repaired);
  if (!dirty && after.status.ok() && after.corruptions == 0 && after.check_errors == 0) {
    ++study.clean_after;
  } else if (r.exit_code == 0) {
    note(fmt::format("exit 0 but crashsim's check then says {}{}",
                     Verdict(CheckExitCode(after), after.corruptions, after.leaks),
                     dirty ? ", dirty bit still set" : ""));
  }
  if (std::string s = CheckData(**repaired, *oracle_, point, "after the target's repair");
      !s.empty()) {
    ++study.data_lost;
    finding(s);
  } else if (options_.read_back && !options_.target.read.empty()) {
    // And as the target itself reads the repaired image.
    ++report_.read_backs;
    if (std::string bad = TargetReadBack(copy, point, "after the target's repair"); !bad.empty()) {
      ++report_.read_back_failures;
      ++study.data_lost;
      finding(bad);
    }
  }

  // Keep writing with the target: two writes, then everything must read back and check clean.
  const uint64_t size = report_.workload.disk_size;
  auto mapped_before = MappedGuestRanges(**repaired);
  if (!mapped_before.ok()) return;
  const uint64_t cs = options_.settings.image.cluster_size;
  const WorkloadOp writes[2] = {{.kind = WorkloadOpKind::kWrite,
                                 .offset = 0,
                                 .length = std::min<uint64_t>(size, 2 * cs + 512),
                                 .pattern = 0xfeed01},
                                {.kind = WorkloadOpKind::kWrite,
                                 .offset = size / 2 + 512,
                                 .length = std::min<uint64_t>(size / 2 - 512, cs + 1000),
                                 .pattern = 0xfeed02}};
  for (const WorkloadOp& w : writes) {
    std::vector<uint8_t> data(w.length);
    FillPattern(w.pattern, w.offset, data);
    const std::string data_file = impl_->File("after.bin");
    if (!WriteBytes(data_file, data).ok()) return;
    ProcessResult wr =
        RunOnFile(options_.target.write_file, {{"image", copy},
                                               {"data_file", data_file},
                                               {"offset", std::to_string(w.offset)},
                                               {"length", std::to_string(w.length)}});
    if (wr.exit_code != 0 || AnswerIsError(options_.target, wr.output)) {
      ++study.broken_after_writes;
      note(fmt::format("a write after the repair failed (exit {}): {}", wr.exit_code,
                       wr.output.substr(0, wr.output.find('\n'))));
      return;
    }
  }
  auto written = LoadFile(copy);
  if (!written.ok()) return;
  CheckReport final_check = Check(**written);
  if (!final_check.status.ok() || final_check.corruptions > 0 || final_check.check_errors > 0) {
    ++study.broken_after_writes;
    finding("after the repair and two writes, crashsim's check: " + FirstFindings(final_check));
    return;
  }
  // Every guest byte must read as before but for the two writes. Only clusters either image
  // maps can differ (the rest read through to the same backing file, or as zeros).
  auto mapped_after = MappedGuestRanges(**written);
  bool same = mapped_after.ok();
  ByteRanges ranges = same ? *mapped_after : ByteRanges{};
  ranges.insert(ranges.end(), mapped_before->begin(), mapped_before->end());
  for (const WorkloadOp& w : writes) ranges.push_back({w.offset, w.offset + w.length});
  NormaliseRanges(ranges);
  for (const auto& [begin, end] : ranges) {
    if (!same) break;
    auto old_bytes = ReadGuestRange(**repaired, begin, end - begin);
    auto got = ReadGuestRange(**written, begin, end - begin);
    if (!old_bytes.ok() || !got.ok()) {
      same = false;
      break;
    }
    for (const WorkloadOp& w : writes) {
      const uint64_t from = std::max(begin, w.offset);
      const uint64_t to = std::min(end, w.offset + w.length);
      if (from < to)
        FillPattern(w.pattern, from, std::span(*old_bytes).subspan(from - begin, to - from));
    }
    same = *got == *old_bytes;
  }
  if (!same) {
    ++study.broken_after_writes;
    finding(
        "after the repair and two writes, guest data differs from what was there plus the "
        "writes");
  }
}

}  // namespace crashsim::validate
