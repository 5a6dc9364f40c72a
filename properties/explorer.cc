#include "properties/explorer.h"

#include <fmt/format.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <mutex>
#include <thread>

#include "engine/check/check.h"
#include "engine/image.h"
#include "engine/memory_device.h"
#include "engine/snapshot.h"
#include "properties/dirty_bit_contract.h"
#include "properties/guest_run.h"
#include "properties/live_model.h"
#include "simdisk/disk_after_kill.h"
#include "simdisk/hash.h"
#include "simdisk/materialise.h"
#include "simdisk/medium.h"
#include "simdisk/sim_disk.h"
#include "simdisk/write_cache.h"

namespace crashsim {
namespace {

bool IsMetadataTag(IoTag tag) { return tag != IoTag::kData && tag != IoTag::kCowData; }

bool TearsMetadata(const simdisk::Recording& recording, const simdisk::CrashState& state) {
  for (const simdisk::WriteFate& fate : state.fates) {
    if (fate.op >= recording.ops().size()) continue;
    const simdisk::OpRecord& op = recording.ops()[fate.op];
    if (op.kind == simdisk::OpKind::kWrite && IsMetadataTag(op.tag)) return true;
  }
  return false;
}

}  // namespace

std::string ExploreReport::Summary() const {
  auto count = [](uint64_t n) {
    return n == simdisk::kSaturated ? std::string("2^64+") : std::to_string(n);
  };
  std::string out = fmt::format(
      "device ops {}, crash points covered {} of {}, states possible {}, within bound {}, "
      "explored {}\n",
      device_ops, points_covered, points_total, count(enumeration.possible),
      count(enumeration.within_bound), explored);
  for (int i = 0; i < kOutcomeCount; ++i) {
    out += fmt::format("  {:<16} {}\n", OutcomeName(static_cast<Outcome>(i)), outcomes[i]);
  }
  out += fmt::format("  torn/lost metadata states {}, repair crash states {}\n",
                     torn_metadata_states, repair_crash_states);
  out += fmt::format("  distinct images {}, verdicts computed {}, cache hits {}\n", distinct_images,
                     verdicts_computed, cache_hits);
  if (verdicts_computed > 0) {
    out += fmt::format("  checks and repairs run {} ({:.1f} per verdict computed)\n", checker_runs,
                       static_cast<double>(checker_runs) / static_cast<double>(verdicts_computed));
  }
  return out;
}

Result<std::unique_ptr<Explorer>> Explorer::Record(const Workload& workload,
                                                   const ExploreSettings& settings) {
  ExploreOptions options;
  options.settings = settings;
  options.max_failures = 0;
  return Record(workload, options);
}

Result<std::unique_ptr<Explorer>> Explorer::Record(const Workload& workload,
                                                   const ExploreOptions& options) {
  std::unique_ptr<Explorer> e(new Explorer(workload, options));
  RETURN_IF_ERROR(e->RecordRun());
  return e;
}

OpenOptions Explorer::OpenFor(bool read_only) const {
  OpenOptions o;
  o.read_only = read_only;
  o.cache_mode = options_.settings.cache_mode;
  o.open_backing = backing_.opener;
  return o;
}

Status Explorer::RecordRun() {
  RETURN_IF_ERROR(workload_.Validate());
  ASSIGN_OR_RETURN(backing_, MakeBackingFile(options_.settings.backing, workload_,
                                             options_.settings.image.cluster_size));
  CreateOptions create = options_.settings.image;
  create.size = workload_.disk_size;
  if (options_.settings.backing != BackingKind::kNone) {
    create.backing_file = "backing.img";
    create.backing_format = BackingKindName(options_.settings.backing);
  }
  MemoryDevice base;
  RETURN_IF_ERROR(Image::Create(base, create, OpenFor(true).open_backing));
  auto initial = std::make_shared<simdisk::Medium>();
  initial->WriteAt(0, base.bytes());

  simdisk::SimDiskOptions so;
  so.cache_mode = options_.settings.cache_mode;
  so.atomic_unit = options_.settings.atomic_unit;
  simdisk::SimDisk disk(so, initial);
  if (options_.settings.fault) disk.SetFaultPlan(simdisk::FaultPlan({*options_.settings.fault}));
  LiveModel live(
      backing_.initial, workload_.disk_size, options_.settings.image.cluster_size,
      CanHoldSnapshots(options_.settings.image.version, options_.settings.image.refcount_bits));
  ASSIGN_OR_RETURN(run_, RunGuestWorkload(disk, workload_, OpenFor(false), live));
  recording_ = disk.SnapshotRecording();
  run_io_ = disk.totals();

  oracle_ = OracleForRun(
      workload_, options_.settings.cache_mode, options_.settings.selection.kind, *recording_,
      backing_.initial,
      CanHoldSnapshots(options_.settings.image.version, options_.settings.image.refcount_bits));
  key_index_ = std::make_unique<simdisk::ImageKeyIndex>(recording_);
  data_check_ = std::make_unique<GuestDataCheck>(*oracle_, recording_, OpenFor(true));
  return Status::Ok();
}

simdisk::EnumerationOptions Explorer::EnumerationFor() const {
  // Every state is enumerated and counted: a state whose bytes were seen at an earlier point is
  // still a state of its own point (checked against that point's durability); the verdict cache
  // keeps it from being checked twice when its window matches too.
  simdisk::EnumerationOptions e = EnumerationOptionsFor(options_.settings);
  // A capped or sharded run spreads over every crash point before giving any a second state.
  e.order = simdisk::EnumerationOrder::kRoundRobin;
  // The points before the injected error are those of the run without it.
  const bool after_fault = options_.settings.fault && run_.fault;
  // The first point after the aging ops (0: a run that broke before they ended is explored
  // whole). The run's end is always a point after both, so the list is never empty.
  uint64_t aged = 0;
  const auto& guest_ops = recording_->guest_ops();
  const auto last_aging = std::find_if(guest_ops.begin(), guest_ops.end(), [&](const auto& op) {
    return options_.aging_ops > 0 && op.id == options_.aging_ops - 1;
  });
  if (last_aging != guest_ops.end() && last_aging->ack_seq != UINT64_MAX) {
    aged = last_aging->ack_seq + 1;
  }
  if (after_fault || aged > 0) {
    for (uint64_t point : simdisk::CrashPoints(*recording_)) {
      if ((!after_fault || point > run_.fault->seq) && point >= aged) e.points.push_back(point);
    }
  }
  return e;
}

namespace {

// The chunks of `image` it does not share with `reference`: where the two can differ.
ByteRanges ChunksNotShared(const simdisk::Medium& image, const simdisk::Medium& reference) {
  ByteRanges ranges;
  image.ForEachChunkNotSharedWith(reference, [&](uint64_t chunk) {
    const uint64_t begin = chunk * simdisk::Medium::kChunkSize;
    if (!ranges.empty() && ranges.back().second == begin) {
      ranges.back().second += simdisk::Medium::kChunkSize;
    } else {
      ranges.push_back({begin, begin + simdisk::Medium::kChunkSize});
    }
  });
  return ranges;
}

}  // namespace

std::string Explorer::CheckData(const simdisk::Medium& image, uint64_t crash_point,
                                const char* when, bool must_open) {
  auto full = [&] {
    simdisk::Medium device = image;
    return CheckGuestData(device, *oracle_, OpenFor(true), crash_point, when, must_open);
  };
  if (options_.data_check == DataCheckMode::kFull) return full();
  const std::shared_ptr<const simdisk::Medium> reference = recording_->MediumAt(crash_point);
  std::string incremental =
      data_check_->Check(image, crash_point, ChunksNotShared(image, *reference), when, must_open);
  if (options_.data_check == DataCheckMode::kIncremental) return incremental;
  if (std::string definition = full(); definition != incremental) {
    return fmt::format("the incremental data check says \"{}\" where the full one says \"{}\"",
                       incremental, definition);
  }
  return incremental;
}

const std::vector<Explorer::AfterRepairWrite>& Explorer::AfterRepairWrites() {
  std::call_once(after_repair_once_, [&] {
    // Two writes: a whole first cluster and the head of the second (an overwrite or a fresh
    // cluster, and copy-on-write of the rest of the second), and a small one in the middle of
    // the disk that copies on write at both ends.
    // Inside every size the disk has during the workload, so inside every crash state's disk.
    const uint64_t size = workload_.MinSize();
    const uint64_t cs = options_.settings.image.cluster_size;
    for (const WorkloadOp& op : {WorkloadOp{.kind = WorkloadOpKind::kWrite,
                                .offset = 0,
                                .length = std::min<uint64_t>(size, cs + 512),
                                .pattern = 0xfeed01},
                                 WorkloadOp{.kind = WorkloadOpKind::kWrite,
                                 .offset = size / 2 + 512,
                                 .length = std::min<uint64_t>(size / 2 - 512, 1000),
                                 .pattern = 0xfeed02}}) {
      std::vector<uint8_t> data(op.length);
      FillPattern(op.pattern, op.offset, data);
      after_repair_writes_.push_back({op.offset, std::move(data)});
    }
  });
  return after_repair_writes_;
}

std::optional<ByteRanges> Explorer::ChangedGuestRanges(const simdisk::Medium& before,
                                                       const simdisk::Medium& after,
                                                       uint64_t crash_point) {
  // Both images derive from the crash point's kept-everything medium, whose mapping the data
  // check has parsed: outside the clusters either differs from it in, they read alike.
  if (auto reference = data_check_->SnapshotAt(crash_point)) {
    const simdisk::Medium& base = reference->image();
    auto from_before = reference->AffectedGuestRanges(before, ChunksNotShared(before, base));
    auto from_after = reference->AffectedGuestRanges(after, ChunksNotShared(after, base));
    if (from_before && from_after) {
      from_before->insert(from_before->end(), from_after->begin(), from_after->end());
      NormaliseRanges(*from_before);
      return from_before;
    }
  }
  auto snapshot = MappingSnapshot::Of(std::make_shared<const simdisk::Medium>(before));
  if (!snapshot.ok()) return std::nullopt;
  return (*snapshot)->AffectedGuestRanges(after, ChunksNotShared(after, before));
}

std::string Explorer::CheckWritesAfterRepair(simdisk::Medium& image, uint64_t crash_point,
                                             Checker& checker) {
  const simdisk::Medium before = image;  // shares every chunk
  const std::vector<AfterRepairWrite>& writes = AfterRepairWrites();
  {
    auto opened = Image::Open(image, OpenFor(false));
    if (!opened.ok()) return "cannot open read-write after repair: " + opened.status().ToString();
    for (const AfterRepairWrite& w : writes) {
      if (Status st = (*opened)->Write(w.offset, w.data); !st.ok()) {
        return "write after repair failed: " + st.ToString();
      }
    }
    if (Status st = (*opened)->Close(); !st.ok()) return "close after repair: " + st.ToString();
  }
  CheckReport report = checker.Run(image);
  if (!report.status.ok() || report.corruptions > 0 || report.check_errors > 0) {
    return "writes after repair corrupted the image (a cluster used twice?): " +
           FirstFindings(report);
  }
  // Every guest byte must read as before, but for the two writes, which must read as written.
  // Only guest clusters whose mapping or data changed can read otherwise: compare those.
  std::optional<ByteRanges> ranges = ChangedGuestRanges(before, image, crash_point);
  if (!ranges) ranges = oracle_->segments();  // the header changed shape: all the workload touched
  for (const AfterRepairWrite& w : writes) ranges->push_back({w.offset, w.offset + w.data.size()});
  NormaliseRanges(*ranges);
  simdisk::Medium before_device = before;
  auto old_image = Image::Open(before_device, OpenFor(true));
  if (!old_image.ok()) return "cannot reopen the repaired image: " + old_image.status().ToString();
  auto new_image = Image::Open(image, OpenFor(true));
  if (!new_image.ok()) return "cannot reopen after writes: " + new_image.status().ToString();
  if ((*new_image)->virtual_size() != (*old_image)->virtual_size()) {
    return fmt::format("writes after repair changed the disk's size from {} to {} bytes",
                       (*old_image)->virtual_size(), (*new_image)->virtual_size());
  }
  ClipRanges(*ranges, (*new_image)->virtual_size());  // a resize may have left the disk smaller
  std::vector<uint8_t> expect, got;
  auto compare = [&](uint64_t begin, uint64_t end, const AfterRepairWrite* written) -> std::string {
    got.resize(end - begin);
    if (Status st = (*new_image)->Read(begin, got); !st.ok())
      return "read after writes: " + st.ToString();
    std::span<const uint8_t> want;
    if (written != nullptr) {
      want = std::span(written->data).subspan(begin - written->offset, end - begin);
    } else {
      expect.resize(end - begin);
      if (Status st = (*old_image)->Read(begin, expect); !st.ok())
        return "read after repair: " + st.ToString();
      want = expect;
    }
    if (std::memcmp(got.data(), want.data(), got.size()) == 0) return "";  // the common case, fast
    auto [x, y] = std::mismatch(got.begin(), got.end(), want.begin());
    return fmt::format(
        "after repair and two more writes, guest byte {:#x} reads {:#04x}, "
        "expected {:#04x}",
        begin + static_cast<uint64_t>(x - got.begin()), *x, *y);
  };
  for (const auto& [begin, end] : *ranges) {
    // In offset order: the parts the writes covered, and the parts between them.
    uint64_t pos = begin;
    while (pos < end) {
      const AfterRepairWrite* inside = nullptr;
      uint64_t piece_end = end;
      for (const AfterRepairWrite& w : writes) {
        const uint64_t w_end = w.offset + w.data.size();
        if (w.offset <= pos && pos < w_end) {
          inside = &w;
          piece_end = std::min(piece_end, w_end);
        } else if (w.offset > pos) {
          piece_end = std::min(piece_end, w.offset);
        }
      }
      // A chunk at a time: a range can be most of the disk (a resize's).
      for (uint64_t at = pos; at < piece_end; at = std::min(piece_end, at + (1 << 20))) {
        const uint64_t chunk_end = std::min(piece_end, at + (1 << 20));
        if (std::string s = compare(at, chunk_end, inside); !s.empty()) return s;
      }
      pos = piece_end;
    }
  }
  return "";
}

namespace {

// The disk a repair runs on: qemu-img check's default cache mode; its writes are only enumerated
// and materialised, never hashed.
simdisk::SimDiskOptions RepairDiskOptions(uint64_t atomic_unit) {
  simdisk::SimDiskOptions so;
  so.cache_mode = CacheMode::kWriteback;
  so.atomic_unit = atomic_unit;
  so.hash_writes = false;
  return so;
}

// Up to n crash points of a recorded repair, evenly spaced and the last of them included, that
// can leave an image other than the two the property already checks: the crashed image (points
// before the repair's first write) and the repaired one (the end of the recording).
// Ops before `inherited` are the killed process's, replayed (disk_after_kill.h): the repair
// starts after them (points among them leave power-loss states of the killed run, which the
// property checks at the kill point already).
std::vector<uint64_t> RepairCrashPoints(const simdisk::Recording& repair, uint64_t inherited,
                                        uint64_t n) {
  const auto& ops = repair.ops();
  const auto first_write =
      std::find_if(ops.begin() + static_cast<std::ptrdiff_t>(inherited), ops.end(),
                   [](const simdisk::OpRecord& op) { return op.kind == simdisk::OpKind::kWrite; });
  const uint64_t first = static_cast<uint64_t>(first_write - ops.begin());
  std::vector<uint64_t> candidates;
  for (uint64_t point : simdisk::CrashPoints(repair)) {
    if (point > first && point < ops.size()) candidates.push_back(point);
  }
  return simdisk::EvenlySpaced(candidates, n);
}

}  // namespace

std::string Explorer::CheckRepairCrashes(const simdisk::Medium& crashed,
                                         const simdisk::CrashState& state, Checker& checker,
                                         RecordedRepair& recorded) {
  const uint64_t crash_point = state.point;
  // Record the repair itself on a simulated disk that starts from the crashed image; it is also
  // the repair the property then holds to account (the repair is deterministic: running it again
  // on the same bytes would give the same report and image). After a process kill, what the
  // killed process had not flushed is still volatile on that disk: a power loss during or after
  // the repair can lose it, unless the repair flushes before it marks the image clean.
  const auto start = std::make_shared<const simdisk::Medium>(crashed);  // shares every chunk
  simdisk::DiskAfterKill after_kill;
  if (RepairInheritsCache(state)) {
    after_kill = simdisk::MakeDiskAfterKill(*recording_, crash_point,
                                            RepairDiskOptions(options_.settings.atomic_unit));
  } else {
    after_kill.disk =
        std::make_unique<simdisk::SimDisk>(RepairDiskOptions(options_.settings.atomic_unit), start);
  }
  simdisk::SimDisk& disk = *after_kill.disk;
  CheckReport first = checker.Run(disk, RepairMode::kAll);
  recorded.emplace(first, disk.live());
  if (!first.status.ok()) return "";  // the plain repair path reports this failure
  auto recording = disk.SnapshotRecording();
  simdisk::EnumerationOptions e;
  e.selection.kind = simdisk::CrashKind::kPowerLoss;
  e.selection.k = 1;
  e.selection.exhaustive_budget = options_.settings.repair_crash_states;
  e.selection.samples = 1;
  e.selection.seed = options_.settings.selection.seed ^ 0x5eedull;
  e.dedupe = true;
  // The budget spreads over the whole repair, its last step included, round robin. A point's
  // first state, which kept every write issued, is skipped: it is the image a repair stopped
  // there leaves, which the failed-repair study below checks. Its second drops the earliest
  // write still in the cache and keeps the later ones: the reordering a missing flush allows.
  e.points = RepairCrashPoints(*recording, after_kill.inherited_ops,
                               options_.settings.repair_crash_states);
  e.order = simdisk::EnumerationOrder::kRoundRobin;
  uint64_t checked = 0;
  // (No points: a repair whose crashes can only leave the crashed or the repaired image.)
  std::optional<simdisk::CrashEnumerator> en;
  if (!e.points.empty()) en.emplace(recording, e);
  while (auto repair_state = en ? en->Next() : std::nullopt) {
    if (repair_state->fates.empty()) continue;
    if (checked++ >= options_.settings.repair_crash_states) break;
    auto medium = simdisk::Materialise(*recording, *repair_state);
    if (!medium.ok())
      return "cannot materialise a repair crash state: " + medium.status().ToString();
    // The crash property itself, for the image the crashed repair left: still marked dirty
    // (then a second repair makes it clean), or clean already (then it checks with no
    // corruptions), and the durable guest data intact either way.
    simdisk::Medium& image = **medium;
    CrashCheckResult r = CheckCrashedImage(
        image,
        [&](const char* when, bool must_open) {
          return CheckData(image, crash_point, when, must_open);
        },
        {}, [&](BlockDevice& device, RepairMode repair) { return checker.Run(device, repair); });
    if (r.outcome == Outcome::kFailure) {
      return fmt::format(
          "a crash during repair ({}) left an image that fails the crash property: "
          "{}",
          repair_state->ToText(), r.failure);
    }
  }
  // A repair that fails (here: an I/O error on its n-th write) must leave the dirty bit set, and
  // a later repair must still succeed.
  const auto& ops = recording->ops();
  const uint64_t repair_writes = static_cast<uint64_t>(std::count_if(
      ops.begin() + static_cast<std::ptrdiff_t>(after_kill.inherited_ops), ops.end(),
      [](const simdisk::OpRecord& op) { return op.kind == simdisk::OpKind::kWrite; }));
  for (uint64_t n = 0; n < std::min(repair_writes, options_.settings.repair_crash_states); ++n) {
    simdisk::FaultRule rule;
    rule.kind = simdisk::OpKind::kWrite;
    rule.skip = n;
    if (std::string s = CheckFailedRepair(start, crash_point, checker, rule,
                                          /*start_repair_checked=*/true);
        !s.empty()) {
      return s;
    }
  }
  return "";
}

std::string Explorer::CheckFailedRepair(const std::shared_ptr<const simdisk::Medium>& start,
                                        uint64_t crash_point, Checker& checker,
                                        const simdisk::FaultRule& rule, bool start_repair_checked) {
  simdisk::SimDisk faulty(RepairDiskOptions(options_.settings.atomic_unit), start);
  faulty.SetFaultPlan(simdisk::FaultPlan({rule}));
  const std::string fault = simdisk::FaultText(rule);
  CheckReport failed = checker.Run(faulty, RepairMode::kAll);
  const auto& ops = faulty.recording().ops();
  const bool fired =
      std::any_of(ops.begin(), ops.end(), [](const simdisk::OpRecord& op) { return !op.ok(); });
  if (!fired) return "";  // the repair has fewer such ops than the rule skips
  if (failed.status.ok() && CheckExitCode(failed) == 0) {
    // A read that failed may be asked again and succeed (the check, like QEMU's, asks for each
    // cluster of a refcount block it could not load): the repaired image must then check clean
    // and hold the durable data. A failed write or flush cannot be made good by asking again:
    // reporting success after one hides it from the caller.
    if (rule.kind != simdisk::OpKind::kRead) {
      return fmt::format("a repair met an injected error ({}) but reported success", fault);
    }
    std::string repaired = CheckRepairedImage(
        faulty, [&](BlockDevice& device, RepairMode mode) { return checker.Run(device, mode); },
        [&](const char* when, bool must_open) {
          return CheckData(faulty.live(), crash_point, when, must_open);
        },
        "after a repair survived a failed read");
    if (repaired.empty()) return "";
    return fmt::format("a repair that survived a failed read ({}): {}", fault, repaired);
  }
  auto header = ReadImageHeader(faulty, /*for_check=*/true);
  if (header.ok() && !header->dirty()) {
    CheckReport after = checker.Run(faulty);
    if (after.corruptions || after.check_errors || !after.status.ok()) {
      return fmt::format(
          "a repair that failed ({}) cleared the dirty bit of an image that is "
          "not clean: {}",
          fault, FirstFindings(after));
    }
  }
  if (start_repair_checked && header.ok() && header->dirty()) {
    bool unchanged = faulty.live().size() == start->size();
    faulty.live().ForEachChunkNotSharedWith(*start, [&](uint64_t) { unchanged = false; });
    // The second repair would repair `start`'s very bytes: the plain repair, checked already.
    if (unchanged) return "";
  }
  CheckReport again = checker.Run(faulty, RepairMode::kAll);
  if (!again.status.ok() || CheckExitCode(again) != 0) {
    return fmt::format("after a repair failed ({}), a second repair failed: {}", fault,
                       FirstFindings(again));
  }
  std::string data =
      CheckData(faulty.live(), crash_point, "after a failed repair and a second one");
  if (!data.empty()) return data + fmt::format(" (the repair failed: {})", fault);
  return "";
}

std::string Explorer::SweepRepairFaults(const simdisk::CrashState& state, uint64_t* repairs) {
  auto medium = simdisk::Materialise(*recording_, state);
  if (!medium.ok())
    return "cannot materialise " + state.ToText() + ": " + medium.status().ToString();
  auto header = ReadImageHeader(**medium, /*for_check=*/true);
  if (!header.ok() || !header->dirty()) return "";
  // A plain checker of its own: a memo would skip reads of tables met before, so the repair's
  // device ops, and with them the faults swept, would depend on what was checked earlier (and,
  // with several jobs, on which thread checked it).
  Checker checker(CheckerMode::kPlain);
  const auto start = std::make_shared<const simdisk::Medium>(std::move(**medium));
  // The repair without a fault, to count its device ops of each kind.
  simdisk::SimDisk clean(RepairDiskOptions(options_.settings.atomic_unit), start);
  (void)checker.Run(clean, RepairMode::kAll);
  for (const simdisk::FaultRule& rule : simdisk::EveryFaultOf(clean.recording())) {
    if (repairs != nullptr) ++*repairs;
    std::string s = CheckFailedRepair(start, state.point, checker, rule,
                                      /*start_repair_checked=*/false);
    if (!s.empty()) return fmt::format("at {}: {}", state.ToText(), s);
  }
  return "";
}

std::string Explorer::CheckMedium(simdisk::Medium& medium, uint64_t crash_point,
                                  StateResult& result, Checker& checker) {
  std::function<std::string()> before_repair;
  RecordedRepair recorded;
  if (options_.settings.repair_crash_states > 0) {
    before_repair = [&] { return CheckRepairCrashes(medium, result.state, checker, recorded); };
  }
  auto run_check = [&](BlockDevice& device, RepairMode repair) {
    if (repair == RepairMode::kAll && &device == &medium && recorded) {
      // The repair of these very bytes was recorded for the repair-crash study: take its result.
      CheckReport report = std::move(recorded->first);
      medium = std::move(recorded->second);
      recorded.reset();
      return report;
    }
    return checker.Run(device, repair);
  };
  CrashCheckResult r = CheckCrashedImage(
      medium,
      [&](const char* when, bool must_open) {
        return CheckData(medium, crash_point, when, must_open);
      },
      before_repair, run_check);
  result.dirty = r.dirty;
  result.outcome = r.outcome;
  std::string failure = r.failure;
  if (failure.empty() && options_.settings.writes_after_repair) {
    failure = CheckWritesAfterRepair(medium, crash_point, checker);
  }
  if (std::string disagreement = checker.TakeDisagreement(); !disagreement.empty())
    return disagreement;
  return failure;
}

bool Explorer::RepairInheritsCache(const simdisk::CrashState& state) const {
  // Under the unsafe mode the run never made anything durable, so a power loss after its kill
  // may lose anything it wrote, repair or not: the property has nothing to hold the repair to.
  return state.kind == simdisk::CrashKind::kProcessKill && recording_->cache().flush_honoured;
}

uint64_t Explorer::InheritedKey(const simdisk::CrashState& state) const {
  if (options_.settings.repair_crash_states == 0 || !RepairInheritsCache(state)) return 0;
  // What the pending writes are, and what a power loss that drops them exposes: the durable
  // image at the last barrier (equal pending writes over different durable bytes differ).
  simdisk::CrashState durable;
  durable.kind = simdisk::CrashKind::kProcessKill;
  durable.point = recording_->BarrierBefore(state.point);
  return simdisk::HashCombine(simdisk::InheritedDigest(*recording_, state.point),
                              simdisk::ImageKeyHash()(key_index_->KeyOf(durable)));
}

Checker& Explorer::CheckerFor(size_t worker) {
  while (checkers_.size() <= worker) {
    checkers_.push_back(std::make_unique<Checker>(options_.checker));
  }
  return *checkers_[worker];
}

StateResult Explorer::CheckState(const simdisk::CrashState& state) {
  return CheckState(state, CheckerFor(0));
}

StateResult Explorer::CheckState(const simdisk::CrashState& state, Checker& checker) {
  StateResult result;
  result.state = state;
  result.torn_metadata = TearsMetadata(*recording_, state);
  if (!run_.failure.empty()) {
    // The run broke the property before any crash (an injected error swallowed): every state of
    // it carries that failure, so a trace of any of them reproduces it.
    result.outcome = Outcome::kFailure;
    result.detail = "the run itself: " + run_.failure;
    return result;
  }
  Status valid = simdisk::ValidateCrashState(*recording_, state);
  auto medium = valid.ok() ? simdisk::Materialise(*recording_, key_index_->Canonicalise(state))
                           : Result<std::unique_ptr<simdisk::Medium>>(valid);
  if (!medium.ok()) {
    result.outcome = Outcome::kFailure;
    result.detail = "cannot materialise the crash state: " + medium.status().ToString();
    return result;
  }
  result.detail = CheckMedium(**medium, state.point, result, checker);
  if (result.detail.empty()) result.detail = DirtyBitContract(state, result.dirty);
  if (!result.detail.empty()) result.outcome = Outcome::kFailure;
  return result;
}

std::string Explorer::DirtyBitContract(const simdisk::CrashState& state, bool dirty) const {
  if (!dirty || options_.settings.image.lazy_refcounts) return "";
  std::optional<uint64_t> fault_seq;
  if (run_.fault) fault_seq = run_.fault->seq;
  return DirtyBitContractViolation(*recording_, workload_, state.point, fault_seq);
}

namespace {

// Runs fn(i, worker) for i in [0, n) on up to `jobs` threads (the calling thread is worker 0).
void ParallelFor(size_t n, uint32_t jobs, const std::function<void(size_t, size_t)>& fn) {
  const size_t threads = std::min<size_t>(std::max<uint32_t>(jobs, 1), n);
  if (threads <= 1) {
    for (size_t i = 0; i < n; ++i) fn(i, 0);
    return;
  }
  std::atomic<size_t> next{0};
  auto work = [&](size_t worker) {
    for (size_t i = next++; i < n; i = next++) fn(i, worker);
  };
  std::vector<std::thread> pool;
  for (size_t t = 1; t < threads; ++t) pool.emplace_back(work, t);
  work(0);
  for (std::thread& t : pool) t.join();
}

}  // namespace

ExploreReport Explorer::Run(const std::function<void(const ExploreProgress&)>& progress,
                            const std::function<void(const StateResult&)>& observe) {
  ExploreReport report;
  report.device_ops = recording_->op_count();
  report.run_io = run_io_;
  for (const WorkloadOp& op : workload_.ops) report.guest_writes += op.TouchesData();
  report.recording_digest = recording_->Digest();
  report.coverage.AddRun(*recording_);
  auto checker_runs = [&] {
    uint64_t runs = 0;
    for (const auto& checker : checkers_) runs += checker->runs();
    return runs;
  };
  const uint64_t runs_before = checker_runs();
  simdisk::CrashEnumerator enumerator(recording_, EnumerationFor());
  report.points_total = enumerator.stats().points_total;
  // Every crash point gets its first state whatever the cap (round robin yields those first).
  const uint64_t cap =
      options_.max_states == 0
          ? 0
          : std::max<uint64_t>(options_.max_states,
                               DivRoundUp(report.points_total, options_.shard_count));
  std::unordered_set<simdisk::ImageKey, simdisk::ImageKeyHash> images;
  std::unordered_set<uint64_t> points;
  // States go in batches: the batch's distinct (image, window) pairs are checked in parallel,
  // then every state takes its verdict in enumeration order, so reports, verdicts and failures
  // are the same for any number of jobs.
  constexpr size_t kBatch = 512;
  uint64_t index = 0;
  bool done = false;
  while (!done) {
    std::vector<simdisk::CrashState> batch;
    while (batch.size() < kBatch && (cap == 0 || report.explored + batch.size() < cap)) {
      std::optional<simdisk::CrashState> state = enumerator.Next();
      if (!state) break;
      if (index++ % options_.shard_count != options_.shard_index) continue;
      batch.push_back(std::move(*state));
    }
    if (batch.empty()) break;
    // Which states must be checked: the first of each (image, window) not yet passed, or all.
    std::vector<VerdictKey> keys(batch.size());
    std::vector<size_t> owner(batch.size());  // the batch entry whose check decides this one
    std::vector<size_t> jobs;
    std::unordered_map<VerdictKey, size_t, VerdictKeyHash> first_in_batch;
    for (size_t i = 0; i < batch.size(); ++i) {
      owner[i] = i;
      if (!options_.verdict_cache) {
        jobs.push_back(i);
        continue;
      }
      keys[i] = {key_index_->KeyOf(batch[i]), oracle_->WindowAt(batch[i].point),
                 InheritedKey(batch[i])};
      if (verdicts_.count(keys[i])) continue;
      auto [it, fresh] = first_in_batch.emplace(keys[i], i);
      if (fresh) jobs.push_back(i);
      owner[i] = it->second;
    }
    std::vector<std::optional<StateResult>> results(batch.size());
    for (uint32_t w = 0; w < std::max<uint32_t>(options_.jobs, 1); ++w) CheckerFor(w);
    ParallelFor(jobs.size(), options_.jobs, [&](size_t j, size_t worker) {
      results[jobs[j]] = CheckState(batch[jobs[j]], *checkers_[worker]);
    });
    for (size_t i = 0; i < batch.size() && !done; ++i) {
      StateResult r;
      if (results[i]) {
        r = std::move(*results[i]);
        ++report.verdicts_computed;
        if (options_.verdict_cache && r.outcome != Outcome::kFailure) {
          verdicts_.emplace(keys[i], Verdict{r.outcome, r.dirty});
        }
      } else if (auto it = verdicts_.find(keys[i]); it != verdicts_.end()) {
        r.state = batch[i];
        r.outcome = it->second.outcome;
        r.dirty = it->second.dirty;
        r.torn_metadata = TearsMetadata(*recording_, batch[i]);
        ++report.cache_hits;
        if (std::string broken = DirtyBitContract(batch[i], r.dirty); !broken.empty()) {
          r.outcome = Outcome::kFailure;
          r.detail = std::move(broken);
        }
      } else {
        // The state that decides this one failed: failures are never cached (their text names
        // the crash point), so this one is checked on its own.
        INVARIANT(owner[i] != i && results[owner[i]].has_value());
        r = CheckState(batch[i], CheckerFor(0));
        ++report.verdicts_computed;
      }
      if (options_.verdict_cache) images.insert(keys[i].image);
      points.insert(r.state.point);
      report.coverage.Add(*recording_, r.state);
      if (observe) observe(r);
      ++report.explored;
      ++report.outcomes[static_cast<int>(r.outcome)];
      if (r.torn_metadata) ++report.torn_metadata_states;
      if (r.dirty && options_.settings.repair_crash_states) ++report.repair_crash_states;
      if (r.outcome == Outcome::kFailure) {
        report.failures.push_back(std::move(r));
        done = options_.max_failures && report.failures.size() >= options_.max_failures;
      }
      if (progress) {
        const simdisk::EnumerationStats& stats = enumerator.stats();
        uint64_t expected = 0;
        if (stats.crash_points == stats.points_total && stats.planned != simdisk::kSaturated) {
          expected = DivRoundUp(stats.planned, options_.shard_count);
          if (cap != 0) expected = std::min(expected, cap);
          INVARIANT(report.explored <= expected);
        }
        progress({report.explored, expected});
      }
    }
    done = done || (cap != 0 && report.explored >= cap);
  }
  report.enumeration = enumerator.stats();
  report.points_covered = points.size();
  report.distinct_images = images.size();
  report.checker_runs = checker_runs() - runs_before;
  report.data = data_check_->stats();
  return report;
}

}  // namespace crashsim
