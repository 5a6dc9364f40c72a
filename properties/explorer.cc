#include "properties/explorer.h"

#include <fmt/format.h>

#include "engine/check/check.h"
#include "engine/image.h"
#include "engine/memory_device.h"
#include "simdisk/materialise.h"
#include "simdisk/medium.h"
#include "simdisk/sim_disk.h"

namespace crashsim {
namespace {

bool IsMetadataTag(IoTag tag) { return tag != IoTag::kData && tag != IoTag::kCowData; }

// What the guest must read back right now, before any crash: the content each op left, with
// the bytes a discard may or may not have dropped marked unknown.
struct LiveModel {
  std::vector<uint8_t> content;
  std::vector<bool> known;

  void Apply(const WorkloadOp& op, uint64_t cluster_size) {
    if (op.kind == WorkloadOpKind::kWrite) {
      FillPattern(op.pattern, op.offset, std::span(content).subspan(op.offset, op.length));
      std::fill_n(known.begin() + static_cast<ptrdiff_t>(op.offset), op.length, true);
    } else if (op.kind == WorkloadOpKind::kZero) {
      std::fill_n(content.begin() + static_cast<ptrdiff_t>(op.offset), op.length, 0);
      std::fill_n(known.begin() + static_cast<ptrdiff_t>(op.offset), op.length, true);
    } else if (op.kind == WorkloadOpKind::kDiscard) {
      uint64_t start = AlignUp(op.offset, cluster_size);
      uint64_t end = std::max(start, AlignDown(op.offset + op.length, cluster_size));
      if (op.offset + op.length == content.size()) end = content.size();
      for (uint64_t b = start; b < end; ++b) known[b] = false;
    }
  }

  Status Verify(uint64_t offset, std::span<const uint8_t> got) const {
    for (uint64_t i = 0; i < got.size(); ++i) {
      uint64_t b = offset + i;
      if (known[b] && got[i] != content[b]) {
        return Status::Corruption(fmt::format("live read: guest byte {:#x} reads {:#04x}, the "
                                              "workload left {:#04x} there", b, got[i],
                                              content[b]));
      }
    }
    return Status::Ok();
  }
};

Status Execute(std::unique_ptr<Image>& image, const WorkloadOp& op, size_t index,
               BlockDevice& device, const OpenOptions& open, LiveModel& live,
               uint64_t cluster_size) {
  live.Apply(op, cluster_size);
  switch (op.kind) {
    case WorkloadOpKind::kWrite: {
      std::vector<uint8_t> data(op.length);
      FillPattern(op.pattern, op.offset, data);
      return image->Write(op.offset, data);
    }
    case WorkloadOpKind::kZero: return image->WriteZeroes(op.offset, op.length, op.unmap);
    case WorkloadOpKind::kDiscard: return image->Discard(op.offset, op.length);
    case WorkloadOpKind::kFlush: return image->Flush();
    case WorkloadOpKind::kSnapshot: {
      // Images that cannot hold snapshots (v2, 1-bit refcounts) skip the op: the guest sees
      // nothing either way.
      const QcowHeader& h = image->header();
      if (h.version < 3 || h.refcount_order == 0) return Status::Ok();
      return image->CreateSnapshot(std::to_string(index + 1), fmt::format("snap{}", index + 1));
    }
    case WorkloadOpKind::kRead: {
      std::vector<uint8_t> data(op.length);
      RETURN_IF_ERROR(image->Read(op.offset, data));
      return live.Verify(op.offset, data);
    }
    case WorkloadOpKind::kReopen: {
      RETURN_IF_ERROR(image->Close());
      image.reset();
      ASSIGN_OR_RETURN(image, Image::Open(device, open));
      return Status::Ok();
    }
  }
  return Status::InvalidArgument("unknown workload op");
}

}  // namespace

const char* BackingKindName(BackingKind kind) {
  switch (kind) {
    case BackingKind::kNone: return "none";
    case BackingKind::kRaw: return "raw";
    case BackingKind::kQcow2: return "qcow2";
  }
  return "?";
}

constexpr uint32_t kBackingPattern = 0xbac4;

simdisk::CacheMode SimdiskCacheMode(CacheMode mode) {
  switch (mode) {
    case CacheMode::kWriteback: return simdisk::CacheMode::kWriteback;
    case CacheMode::kWritethrough: return simdisk::CacheMode::kWritethrough;
    case CacheMode::kDirectsync: return simdisk::CacheMode::kDirectsync;
    case CacheMode::kNone: return simdisk::CacheMode::kNone;
    case CacheMode::kUnsafe: return simdisk::CacheMode::kUnsafe;
  }
  return simdisk::CacheMode::kWriteback;
}

std::string ExploreReport::Summary() const {
  std::string out = fmt::format(
      "device ops {}, crash points {}, states possible {}, within bound {}, explored {}\n",
      device_ops, enumeration.crash_points,
      enumeration.possible == simdisk::kSaturated ? std::string("2^64+")
                                                   : std::to_string(enumeration.possible),
      enumeration.within_bound == simdisk::kSaturated ? std::string("2^64+")
                                                       : std::to_string(enumeration.within_bound),
      explored);
  for (int i = 0; i < kOutcomeCount; ++i) {
    out += fmt::format("  {:<16} {}\n", OutcomeName(static_cast<Outcome>(i)), outcomes[i]);
  }
  out += fmt::format("  torn/lost metadata states {}, repair crash states {}\n",
                     torn_metadata_states, repair_crash_states);
  return out;
}

std::unique_ptr<GuestOracle> OracleForRun(const Workload& workload, CacheMode mode,
                                          simdisk::CrashKind crash,
                                          const simdisk::Recording& recording,
                                          std::vector<uint8_t> initial) {
  // The oracle sees the close as a flush: it makes everything before it durable.
  Workload with_close = workload;
  with_close.ops.push_back({.kind = WorkloadOpKind::kFlush});
  std::vector<OpTiming> timings(with_close.ops.size());
  for (const simdisk::GuestOp& g : recording.guest_ops()) {
    if (g.id < timings.size()) timings[g.id] = {g.begin_seq, g.ack_seq, kNever};
  }
  AssignDurability(with_close, mode,
                   crash == simdisk::CrashKind::kPowerLoss ? CrashKindForOracle::kPowerLoss
                                                           : CrashKindForOracle::kProcessKill,
                   timings);
  return std::make_unique<GuestOracle>(with_close, std::move(timings), std::move(initial));
}

Result<std::unique_ptr<Explorer>> Explorer::Record(const Workload& workload,
                                                   const ExploreOptions& options) {
  std::unique_ptr<Explorer> e(new Explorer(workload, options));
  RETURN_IF_ERROR(e->RecordRun());
  return e;
}

Status Explorer::BuildBacking() {
  initial_guest_.assign(workload_.disk_size, 0);
  if (options_.backing == BackingKind::kNone) return Status::Ok();
  // The backing file covers the first three quarters of the disk, so reads past its end (zeros)
  // are exercised too.
  const uint64_t backing_size = AlignDown(workload_.disk_size * 3 / 4, 512);
  std::vector<uint8_t> content(backing_size);
  FillPattern(kBackingPattern, 0, content);
  std::copy(content.begin(), content.end(), initial_guest_.begin());
  if (options_.backing == BackingKind::kRaw) {
    backing_bytes_ = std::make_shared<std::vector<uint8_t>>(std::move(content));
    return Status::Ok();
  }
  MemoryDevice dev;
  CreateOptions bo;
  bo.size = backing_size;
  bo.cluster_size = options_.image.cluster_size;
  RETURN_IF_ERROR(Image::Create(dev, bo));
  ASSIGN_OR_RETURN(std::unique_ptr<Image> image, Image::Open(dev, OpenOptions{}));
  RETURN_IF_ERROR(image->Write(0, content));
  RETURN_IF_ERROR(image->Close());
  backing_bytes_ = std::make_shared<std::vector<uint8_t>>(dev.bytes());
  return Status::Ok();
}

OpenOptions Explorer::OpenFor(bool read_only) const {
  OpenOptions o;
  o.read_only = read_only;
  o.cache_mode = options_.cache_mode;
  if (backing_bytes_) {
    auto bytes = backing_bytes_;
    o.open_backing = [bytes](const std::string&) -> Result<std::unique_ptr<BlockDevice>> {
      return std::unique_ptr<BlockDevice>(new MemoryDevice(*bytes));
    };
  }
  return o;
}

Status Explorer::RecordRun() {
  RETURN_IF_ERROR(BuildBacking());
  CreateOptions create = options_.image;
  create.size = workload_.disk_size;
  if (options_.backing != BackingKind::kNone) {
    create.backing_file = "backing.img";
    create.backing_format = BackingKindName(options_.backing);
  }
  MemoryDevice base;
  RETURN_IF_ERROR(Image::Create(base, create, OpenFor(true).open_backing));
  auto initial = std::make_shared<simdisk::Medium>();
  initial->WriteAt(0, base.bytes());

  simdisk::SimDiskOptions so;
  so.cache_mode = SimdiskCacheMode(options_.cache_mode);
  so.atomic_unit = options_.atomic_unit;
  simdisk::SimDisk disk(so, initial);
  const OpenOptions open = OpenFor(false);
  ASSIGN_OR_RETURN(std::unique_ptr<Image> image, Image::Open(disk, open));
  LiveModel live{initial_guest_, std::vector<bool>(workload_.disk_size, true)};
  for (size_t i = 0; i < workload_.ops.size(); ++i) {
    disk.BeginGuestOp(i, workload_.ops[i].ToText());
    Status st = Execute(image, workload_.ops[i], i, disk, open, live, options_.image.cluster_size);
    if (!st.ok()) return st.WithContext(fmt::format("guest op #{} ({})", i,
                                                    workload_.ops[i].ToText()));
    disk.AckGuestOp();
  }
  // The clean close is part of the run: a crash during it is explored like any other.
  disk.BeginGuestOp(workload_.ops.size(), "close");
  RETURN_IF_ERROR(image->Close().WithContext("close"));
  disk.AckGuestOp();
  recording_ = disk.SnapshotRecording();
  run_io_ = disk.totals();

  oracle_ = OracleForRun(workload_, options_.cache_mode, options_.crash, *recording_,
                         initial_guest_);
  return Status::Ok();
}

simdisk::EnumerationOptions Explorer::EnumerationFor() const {
  simdisk::EnumerationOptions e;
  e.kind = options_.crash;
  e.model = options_.model;
  e.k = options_.k;
  e.exhaustive_budget = options_.exhaustive_budget;
  e.samples = options_.samples;
  e.seed = options_.seed;
  e.exhaustive_tags = options_.metadata_first ? simdisk::kMetadataTags : simdisk::kAllTags;
  // A state's bytes are checked against the durability promised at its own crash point, so a
  // state seen at an earlier point is not a duplicate.
  e.dedupe = false;
  return e;
}

std::string Explorer::CheckData(BlockDevice& device, uint64_t crash_point, const char* when) {
  return CheckGuestData(device, *oracle_, OpenFor(true), crash_point, when);
}

std::string Explorer::CheckWritesAfterRepair(BlockDevice& device) {
  const uint64_t size = workload_.disk_size;
  std::vector<uint8_t> before(size), after(size);
  {
    auto image = Image::Open(device, OpenFor(true));
    if (!image.ok()) return "cannot reopen after repair: " + image.status().ToString();
    if (Status st = (*image)->Read(0, before); !st.ok()) return "read after repair: " + st.ToString();
  }
  // Two writes: one over the start of the disk (overwrites, COW) and one in the middle.
  const uint64_t cs = options_.image.cluster_size;
  WorkloadOp a{.kind = WorkloadOpKind::kWrite, .offset = 0,
               .length = std::min<uint64_t>(size, 2 * cs + 512), .pattern = 0xfeed01};
  WorkloadOp b{.kind = WorkloadOpKind::kWrite, .offset = size / 2 + 512,
               .length = std::min<uint64_t>(size / 2 - 512, cs + 1000), .pattern = 0xfeed02};
  {
    auto image = Image::Open(device, OpenFor(false));
    if (!image.ok()) return "cannot open read-write after repair: " + image.status().ToString();
    for (const WorkloadOp& op : {a, b}) {
      std::vector<uint8_t> data(op.length);
      FillPattern(op.pattern, op.offset, data);
      if (Status st = (*image)->Write(op.offset, data); !st.ok()) {
        return "write after repair failed: " + st.ToString();
      }
      std::copy(data.begin(), data.end(), before.begin() + static_cast<ptrdiff_t>(op.offset));
    }
    if (Status st = (*image)->Close(); !st.ok()) return "close after repair: " + st.ToString();
  }
  CheckReport report = Check(device);
  if (!report.status.ok() || report.corruptions > 0 || report.check_errors > 0) {
    return "writes after repair corrupted the image (a cluster used twice?): " +
           FirstFindings(report);
  }
  auto image = Image::Open(device, OpenFor(true));
  if (!image.ok()) return "cannot reopen after writes: " + image.status().ToString();
  if (Status st = (*image)->Read(0, after); !st.ok()) return "read after writes: " + st.ToString();
  for (uint64_t i = 0; i < size; ++i) {
    if (before[i] != after[i]) {
      return fmt::format("after repair and two more writes, guest byte {:#x} reads {:#04x}, "
                         "expected {:#04x}", i, after[i], before[i]);
    }
  }
  return "";
}

std::string Explorer::CheckRepairCrashes(BlockDevice& device, uint64_t crash_point) {
  // Record the repair itself on a simulated disk that starts from the crashed image.
  auto start = std::make_shared<simdisk::Medium>();
  {
    auto size = device.Size();
    std::vector<uint8_t> bytes(size.ok() ? *size : 0);
    if (!device.Read(0, bytes).ok()) return "cannot copy the crashed image";
    start->WriteAt(0, bytes);
  }
  simdisk::SimDiskOptions so;
  so.cache_mode = simdisk::CacheMode::kWriteback;  // qemu-img check's default
  so.atomic_unit = options_.atomic_unit;
  simdisk::SimDisk disk(so, start);
  CheckReport first = Repair(disk, RepairMode::kAll);
  if (!first.status.ok()) return "";  // the plain repair path reports this failure
  auto recording = disk.SnapshotRecording();
  simdisk::EnumerationOptions e;
  e.kind = simdisk::CrashKind::kPowerLoss;
  e.k = 1;
  e.exhaustive_budget = options_.repair_crash_states;
  e.samples = 1;
  e.seed = options_.seed ^ 0x5eedull;
  e.dedupe = true;
  simdisk::CrashEnumerator en(recording, e);
  uint64_t checked = 0;
  while (auto state = en.Next()) {
    if (checked++ >= options_.repair_crash_states) break;
    auto medium = simdisk::Materialise(*recording, *state);
    if (!medium.ok()) return "cannot materialise a repair crash state: " +
                             medium.status().ToString();
    CheckReport second = Repair(**medium, RepairMode::kAll);
    if (!second.status.ok() || CheckExitCode(second) != 0) {
      return fmt::format("a crash during repair ({}) left an image a second repair cannot fix: "
                         "{}", state->ToText(), FirstFindings(second));
    }
    std::string data = CheckData(**medium, crash_point, "after a crashed repair and a second one");
    if (!data.empty()) return data + " (repair crash " + state->ToText() + ")";
  }
  // A repair that fails (here: an I/O error on its n-th write) must leave the dirty bit set, and
  // a later repair must still succeed.
  uint64_t repair_writes = 0;
  for (const simdisk::OpRecord& op : recording->ops()) {
    repair_writes += op.kind == simdisk::OpKind::kWrite;
  }
  for (uint64_t n = 0; n < std::min(repair_writes, options_.repair_crash_states); ++n) {
    simdisk::SimDisk faulty(so, start);
    faulty.SetFaultPlan(simdisk::FaultPlan::FailNth(simdisk::OpKind::kWrite, n));
    CheckReport failed = Repair(faulty, RepairMode::kAll);
    if (failed.status.ok() && CheckExitCode(failed) == 0) continue;  // the error was survived
    auto header = ReadImageHeader(faulty, /*for_check=*/true);
    if (header.ok() && !header->dirty()) {
      CheckReport after = Check(faulty);
      if (after.corruptions || after.check_errors || !after.status.ok()) {
        return fmt::format("a repair that failed (I/O error on its write #{}) cleared the dirty "
                           "bit of an image that is not clean: {}", n, FirstFindings(after));
      }
    }
    CheckReport again = Repair(faulty, RepairMode::kAll);
    if (!again.status.ok() || CheckExitCode(again) != 0) {
      return fmt::format("after a repair failed on its write #{}, a second repair failed: {}", n,
                         FirstFindings(again));
    }
    std::string data = CheckData(faulty, crash_point, "after a failed repair and a second one");
    if (!data.empty()) return data + fmt::format(" (repair write #{} failed)", n);
  }
  return "";
}

std::string Explorer::CheckDevice(BlockDevice& device, uint64_t crash_point,
                                  StateResult& result, bool allow_repair_crashes) {
  std::function<std::string()> before_repair;
  if (allow_repair_crashes && options_.repair_crash_states > 0) {
    before_repair = [&] { return CheckRepairCrashes(device, crash_point); };
  }
  CrashCheckResult r = CheckCrashedImage(device, *oracle_, OpenFor(true), crash_point,
                                         before_repair);
  result.dirty = r.dirty;
  result.outcome = r.outcome;
  if (!r.failure.empty()) return r.failure;
  if (options_.writes_after_repair) return CheckWritesAfterRepair(device);
  return "";
}

StateResult Explorer::CheckState(const simdisk::CrashState& state) {
  StateResult result;
  result.state = state;
  for (const simdisk::WriteFate& fate : state.fates) {
    if (fate.op < recording_->ops().size() && IsMetadataTag(recording_->ops()[fate.op].tag) &&
        recording_->ops()[fate.op].kind == simdisk::OpKind::kWrite) {
      result.torn_metadata = true;
    }
  }
  auto medium = simdisk::Materialise(*recording_, state);
  if (!medium.ok()) {
    result.outcome = Outcome::kFailure;
    result.detail = "cannot materialise the crash state: " + medium.status().ToString();
    return result;
  }
  result.detail = CheckDevice(**medium, state.point, result, /*allow_repair_crashes=*/true);
  if (!result.detail.empty()) result.outcome = Outcome::kFailure;
  return result;
}

ExploreReport Explorer::Run(const std::function<void(uint64_t)>& progress) {
  ExploreReport report;
  report.device_ops = recording_->op_count();
  report.run_io = run_io_;
  for (const WorkloadOp& op : workload_.ops) report.guest_writes += op.TouchesData();
  report.recording_digest = recording_->Digest();
  simdisk::CrashEnumerator enumerator(recording_, EnumerationFor());
  uint64_t index = 0;
  while (auto state = enumerator.Next()) {
    if (index++ % options_.shard_count != options_.shard_index) continue;
    if (options_.max_states && report.explored >= options_.max_states) break;
    StateResult r = CheckState(*state);
    ++report.explored;
    ++report.outcomes[static_cast<int>(r.outcome)];
    if (r.torn_metadata) ++report.torn_metadata_states;
    if (r.dirty && options_.repair_crash_states) ++report.repair_crash_states;
    if (r.outcome == Outcome::kFailure) {
      report.failures.push_back(std::move(r));
      if (options_.max_failures && report.failures.size() >= options_.max_failures) break;
    }
    if (progress) progress(report.explored);
  }
  report.enumeration = enumerator.stats();
  return report;
}

}  // namespace crashsim
