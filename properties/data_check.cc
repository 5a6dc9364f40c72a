#include "properties/data_check.h"

#include <fmt/format.h>

#include <algorithm>

#include "engine/image.h"
#include "simdisk/medium.h"
#include "simdisk/write_cache.h"

namespace crashsim {
namespace {

constexpr uint64_t kBlock = 512;
// Marks a failure that is no guest block (an L2 table that cannot be read): states at such a
// point are always checked in full.
constexpr uint64_t kUnplacedFailure = UINT64_MAX;

void MarkBlocks(uint64_t begin, uint64_t end, std::set<uint64_t>& blocks) {
  for (uint64_t b = begin / kBlock; b * kBlock < end; ++b) blocks.insert(b);
}

// The header bytes a read-only open decodes, with the dirty and corrupt bits (the low bits of
// the incompatible features' last byte, offset 79) cleared: a read-only open ignores them.
Result<std::vector<uint8_t>> HeaderBytesForLoad(const simdisk::Medium& image) {
  ASSIGN_OR_RETURN(std::vector<uint8_t> bytes,
                   ReadHeaderArea(image.size(), [&](uint64_t offset, std::span<uint8_t> out) {
                     image.ReadAt(offset, out);
                     return Status::Ok();
                   }));
  static_assert(kIncompatDirty == 1 && kIncompatCorrupt == 2);
  if (bytes.size() > 79) bytes[79] &= ~uint8_t{3};
  return bytes;
}

bool InsideRanges(const ByteRanges& ranges, uint64_t offset) {
  auto it = std::upper_bound(ranges.begin(), ranges.end(), std::make_pair(offset, UINT64_MAX));
  return it != ranges.begin() && std::prev(it)->second > offset;
}

}  // namespace

// The clusters an open image maps (Image::ForEachMappedCluster), as the oracle's implied runs:
// everything else reads as the initial content, zero clusters as zeros.
class MappedClusters {
 public:
  // Collects them; on failure (an L2 table that cannot be read) keeps those found before it, in
  // guest order, and returns the error.
  Status Collect(Image& image) {
    cluster_size_ = image.geometry().cluster_size();
    // Only a v3 zero cluster with no host offset reads as zeros without a check a read would
    // make (subclusters, host offsets and v2 zero flags are validated by the read): the rest is
    // read.
    const bool plain_zero_reads_zero = !image.geometry().extended_l2 && image.header().version >= 3;
    return image.ForEachMappedCluster([&](uint64_t guest, ClusterType type) {
      const bool zero = plain_zero_reads_zero && type == ClusterType::kZeroPlain;
      clusters_.push_back({guest, zero ? ImpliedContent::kZero : ImpliedContent::kRead});
      return Status::Ok();
    });
  }
  ImpliedRun At(uint64_t offset) const {
    const uint64_t start = offset / cluster_size_ * cluster_size_;
    auto it = std::lower_bound(clusters_.begin(), clusters_.end(), start,
                               [](const auto& c, uint64_t v) { return c.first < v; });
    if (it != clusters_.end() && it->first == start) return {start + cluster_size_, it->second};
    return {it == clusters_.end() ? UINT64_MAX : it->first, ImpliedContent::kInitial};
  }
  ImpliedRuns Runs() const {
    return [this](uint64_t offset) { return At(offset); };
  }
  const std::vector<std::pair<uint64_t, ImpliedContent>>& clusters() const { return clusters_; }

 private:
  uint64_t cluster_size_ = 0;
  std::vector<std::pair<uint64_t, ImpliedContent>> clusters_;  // guest offset, sorted
};

namespace {

// What no op touched must read as it did before the workload. Only clusters the image maps can
// read otherwise (the rest fall through to the backing file, which is the initial content).
std::string CheckUntouchedMapped(Image& img, const GuestOracle& oracle,
                                 const MappedClusters& mapped, const char* when) {
  const uint64_t cs = img.geometry().cluster_size();
  std::vector<uint8_t> buf;
  for (const auto& [guest, content] : mapped.clusters()) {
    Status read = Status::Ok();
    std::optional<DataViolation> untouched;
    oracle.ForEachUntouched(guest, std::min(guest + cs, img.virtual_size()),
                            [&](uint64_t begin, uint64_t end) {
                              if (untouched || !read.ok()) return;
                              buf.resize(end - begin);
                              read = img.Read(begin, buf);
                              if (read.ok()) untouched = oracle.CheckUntouched(begin, buf);
                            });
    if (!read.ok()) return fmt::format("guest read failed {}: {}", when, read.ToString());
    if (untouched) {
      return fmt::format("lost or illegal guest data {}: {}", when, untouched->message);
    }
  }
  return "";
}

}  // namespace

std::string CheckGuestData(BlockDevice& device, const GuestOracle& oracle,
                           const OpenOptions& read_only, uint64_t crash_point, const char* when,
                           bool must_open, SnapshotViewKeys* keys) {
  auto image = Image::Open(device, read_only);
  if (!image.ok()) {
    if (!must_open) return "";
    return fmt::format("cannot open the image read-only {}: {}", when, image.status().ToString());
  }
  Image& img = **image;
  MappedClusters mapped;
  const Status mapping = mapped.Collect(img);
  const ImpliedRuns runs = mapped.Runs();
  auto violation = oracle.Check(
      crash_point, img.virtual_size(),
      [&](uint64_t offset, std::span<uint8_t> data) { return img.Read(offset, data); },
      mapping.ok() ? &runs : nullptr);
  if (!violation.ok()) {
    return fmt::format("guest read failed {}: {}", when, violation.status().ToString());
  }
  if (*violation) {
    return fmt::format("lost or illegal guest data {}: {}", when, (*violation)->message);
  }
  if (std::string bad = CheckUntouchedMapped(img, oracle, mapped, when); !bad.empty()) return bad;
  if (!mapping.ok()) return fmt::format("guest read failed {}: {}", when, mapping.ToString());
  return CheckSnapshotData(device, img, oracle, read_only, when, keys);
}

std::string CheckSnapshotData(BlockDevice& device, Image& img, const GuestOracle& oracle,
                              const OpenOptions& read_only, const char* when,
                              SnapshotViewKeys* keys, std::optional<ByteRanges>* reads) {
  if (reads) {
    *reads = std::nullopt;
    if (keys != nullptr) *reads = ByteRanges{};  // what the views read, filled below
  }
  if (img.header().nb_snapshots == 0 || !oracle.takes_snapshots()) return "";
  Result<SnapshotTable> table = img.Snapshots();
  if (!table.ok()) {
    return fmt::format("cannot read the snapshot table {}: {}", when, table.status().ToString());
  }
  if (reads) {
    (*reads)->push_back(
        {img.header().snapshots_offset, img.header().snapshots_offset + table->table_size});
  }
  for (const SnapshotEntry& e : table->entries) {
    const std::optional<uint64_t> op = oracle.SnapshotOpNamed(e.name);
    if (!op) {
      return fmt::format("snapshot '{}' (id {}) {}: no op of the workload took it", e.name, e.id,
                         when);
    }
    std::optional<SnapshotViewKeys::Key> key;
    if (keys != nullptr) {
      key = keys->KeyOf(device, img.header(), e, *op, reads && *reads ? &**reads : nullptr);
      if (!key && reads) reads->reset();
      if (key && keys->Passed(*key)) continue;
    }
    OpenOptions view_options = read_only;
    view_options.load_snapshot = e.id;
    auto view = Image::Open(device, view_options);
    if (!view.ok()) {
      return fmt::format("cannot load snapshot '{}' {}: {}", e.name, when,
                         view.status().ToString());
    }
    Image& snap = **view;
    MappedClusters mapped;
    const Status mapping = mapped.Collect(snap);
    const ImpliedRuns runs = mapped.Runs();
    auto violation = oracle.CheckSnapshot(
        *op, snap.virtual_size(),
        [&](uint64_t offset, std::span<uint8_t> data) { return snap.Read(offset, data); },
        mapping.ok() ? &runs : nullptr);
    if (!violation.ok()) {
      return fmt::format("snapshot '{}' read failed {}: {}", e.name, when,
                         violation.status().ToString());
    }
    if (*violation) {
      return fmt::format("lost or illegal guest data {}: snapshot '{}': {}", when, e.name,
                         (*violation)->message);
    }
    if (std::string bad = CheckUntouchedMapped(snap, oracle, mapped, when); !bad.empty()) {
      return fmt::format("snapshot '{}': {}", e.name, bad);
    }
    if (!mapping.ok()) {
      return fmt::format("snapshot '{}' read failed {}: {}", e.name, when, mapping.ToString());
    }
    if (key) keys->AddPassed(*key);
  }
  if (reads && *reads) NormaliseRanges(**reads);
  return "";
}

GuestDataCheck::GuestDataCheck(const GuestOracle& oracle,
                               std::shared_ptr<const simdisk::Recording> recording,
                               OpenOptions read_only)
    : oracle_(oracle),
      recording_(std::move(recording)),
      read_only_(std::move(read_only)),
      points_(simdisk::CrashPoints(*recording_)) {}

DataCheckStats GuestDataCheck::stats() const {
  std::lock_guard<std::mutex> lock(const_cast<std::mutex&>(mutex_));
  return stats_;
}

bool GuestDataCheck::CollectIllegal(const simdisk::Medium& image, uint64_t point,
                                    const ByteRanges& ranges, std::set<uint64_t>& illegal) {
  simdisk::Medium device = image;  // Image::Open borrows a mutable device; copies share chunks
  auto opened = Image::Open(device, read_only_);
  if (!opened.ok()) return false;
  Image& img = **opened;
  const uint64_t size = img.virtual_size();
  if (oracle_.CheckSize(point, size)) illegal.insert(kUnplacedFailure);
  // Runs the mapping says read as the initial content or as zeros, where that is legal, are
  // not read: the cost follows the mapped clusters, not the ranges' length.
  MappedClusters mapped;
  const bool have_mapping = mapped.Collect(img).ok();
  constexpr uint64_t kChunk = 1 << 20;
  std::vector<uint8_t> buf;
  for (auto [a, b] : ranges) {
    b = std::min(b, size);  // what lies past the end is not read (CheckSize judged the end)
    for (uint64_t pos = a; pos < b;) {
      uint64_t stop = std::min(b, (pos + kChunk) / kBlock * kBlock);
      if (have_mapping) {
        const ImpliedRun run = mapped.At(pos);
        if (run.content != ImpliedContent::kRead &&
            oracle_.ImpliedLegal(point, pos, std::min(b, run.end), run.content)) {
          pos = std::min(b, run.end);
          continue;
        }
        stop = std::min(stop, run.end);
      }
      buf.resize(stop - pos);
      stats_.guest_bytes_read += buf.size();
      if (!img.Read(pos, buf).ok()) {
        MarkBlocks(pos, stop, illegal);
      } else {
        oracle_.ForEachIllegalPiece(point, pos, buf, [&](uint64_t begin, uint64_t end) {
          MarkBlocks(begin, end, illegal);
        });
      }
      pos = stop;
    }
  }
  return true;
}

bool GuestDataCheck::CollectAllIllegal(const simdisk::Medium& image, uint64_t point,
                                       std::set<uint64_t>& illegal) {
  ByteRanges ranges = oracle_.segments();
  {
    simdisk::Medium device = image;
    auto opened = Image::Open(device, read_only_);
    if (!opened.ok()) return false;
    Image& img = **opened;
    const uint64_t cs = img.geometry().cluster_size();
    Status st = img.ForEachMappedCluster([&](uint64_t guest, ClusterType) {
      oracle_.ForEachUntouched(guest, std::min(guest + cs, img.virtual_size()),
                               [&](uint64_t begin, uint64_t end) {
                                 ranges.push_back({begin, end});
                               });
      return Status::Ok();
    });
    if (!st.ok()) illegal.insert(kUnplacedFailure);
  }
  NormaliseRanges(ranges);
  return CollectIllegal(image, point, ranges, illegal);
}

GuestDataCheck::Reference GuestDataCheck::BuildReference(uint64_t point, const Reference* previous,
                                                         uint64_t previous_point) {
  ++stats_.reference_steps;
  std::shared_ptr<const simdisk::Medium> medium = recording_->MediumAt(point);
  Reference ref;
  auto snapshot = MappingSnapshot::Of(medium);
  if (!snapshot.ok()) return ref;
  ref.snapshot = *snapshot;
  std::optional<ByteRanges> affected;
  if (previous != nullptr && previous->snapshot != nullptr) {
    ByteRanges delta;
    for (uint64_t seq = previous_point; seq < point; ++seq) {
      const simdisk::OpRecord& op = recording_->ops()[seq];
      if (op.ChangesMedium() && op.kind == simdisk::OpKind::kWrite) {
        delta.push_back({op.offset, op.offset + op.length});
      }
    }
    affected = previous->snapshot->AffectedGuestRanges(*medium, std::move(delta));
  }
  if (!affected) {
    if (!CollectAllIllegal(*medium, point, ref.illegal_blocks)) ref.snapshot = nullptr;
    return ref;
  }
  // Ranges whose legal sources changed: an op that began, or became durable, in between.
  const auto& timings = oracle_.timings();
  const auto& ops = oracle_.workload().ops;
  for (size_t j = 0; j < ops.size() && j < timings.size(); ++j) {
    const bool began = timings[j].begin >= previous_point && timings[j].begin < point;
    const bool durable = timings[j].durable >= previous_point && timings[j].durable < point;
    if (began || durable) {
      if (auto range = oracle_.OpRange(j)) affected->push_back(*range);
    }
  }
  NormaliseRanges(*affected);
  for (uint64_t block : previous->illegal_blocks) {
    if (block == kUnplacedFailure || !InsideRanges(*affected, block * kBlock)) {
      ref.illegal_blocks.insert(block);
    }
  }
  if (!CollectIllegal(*medium, point, *affected, ref.illegal_blocks)) ref.snapshot = nullptr;
  return ref;
}

const GuestDataCheck::Reference& GuestDataCheck::ReferenceAt(uint64_t point) {
  if (auto it = references_.find(point); it != references_.end()) return it->second;
  // Extend the chain from the last reference below `point` through every crash point up to it.
  // With none below, `point` is built from scratch: the chain starts where checks start (after
  // an aging prefix, say), not at the run's first point.
  auto below = references_.lower_bound(point);
  if (below == references_.begin()) {
    return references_.emplace(point, BuildReference(point, nullptr, 0)).first->second;
  }
  --below;
  const Reference* previous = &below->second;
  uint64_t previous_point = below->first;
  for (auto next = std::upper_bound(points_.begin(), points_.end(), previous_point);
       next != points_.end() && *next < point; ++next) {
    Reference ref = BuildReference(*next, previous, previous_point);
    previous = &references_.emplace(*next, std::move(ref)).first->second;
    previous_point = *next;
  }
  Reference ref = BuildReference(point, previous, previous_point);
  return references_.emplace(point, std::move(ref)).first->second;
}

std::string GuestDataCheck::Check(const simdisk::Medium& image, uint64_t point,
                                  const ByteRanges& host_delta, const char* when, bool must_open) {
  auto full = [&] {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      ++stats_.full_checks;
    }
    simdisk::Medium device = image;
    return CheckGuestData(device, oracle_, read_only_, point, when, must_open, &snapshot_views_);
  };
  std::shared_ptr<const MappingSnapshot> snapshot;
  std::set<uint64_t> reference_illegal;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    ++stats_.checks;
    const Reference& ref = ReferenceAt(point);
    snapshot = ref.snapshot;
    reference_illegal = ref.illegal_blocks;
  }
  if (snapshot == nullptr) return full();
  std::optional<ByteRanges> affected = snapshot->AffectedGuestRanges(image, host_delta);
  if (!affected) return full();
  for (uint64_t block : reference_illegal) {
    if (block == kUnplacedFailure || !InsideRanges(*affected, block * kBlock)) return full();
  }
  // Snapshots whose every byte read is the reference's read as legally as its do.
  const bool snapshots_as_reference = SnapshotsAsReference(image, point, host_delta);
  // Nothing the active layer's reads depend on changed, and the snapshots as the reference's:
  // legal, as the reference is. Otherwise the affected ranges, then the snapshots.
  if (affected->empty() && !snapshot->OpenMayDiffer(image, host_delta) && snapshots_as_reference) {
    return "";
  }
  simdisk::Medium device = image;
  auto opened = Image::Open(device, read_only_);
  if (!opened.ok()) return must_open ? full() : "";
  std::vector<uint8_t> buf;
  bool illegal = false;
  for (const auto& [a, b] : *affected) {
    buf.resize(b - a);
    if (!(*opened)->Read(a, buf).ok()) return full();
    oracle_.ForEachIllegalPiece(point, a, buf, [&](uint64_t, uint64_t) { illegal = true; });
    if (illegal) return full();
  }
  if (snapshots_as_reference) return "";
  return CheckSnapshotData(device, **opened, oracle_, read_only_, when, &snapshot_views_);
}

bool GuestDataCheck::SnapshotsAsReference(const simdisk::Medium& image, uint64_t point,
                                          const ByteRanges& host_delta) {
  if (!oracle_.takes_snapshots()) return true;
  std::shared_ptr<const simdisk::Medium> reference = recording_->MediumAt(point);
  const SnapshotReads* reads = nullptr;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (auto it = snapshot_reads_.find(point); it != snapshot_reads_.end()) reads = &it->second;
  }
  if (reads == nullptr) {
    // Once per crash point: the reference's snapshots, checked, and what that depended on.
    SnapshotReads r;
    if (auto header = HeaderBytesForLoad(*reference); header.ok()) r.header = *std::move(header);
    simdisk::Medium device = *reference;
    if (auto opened = Image::Open(device, read_only_); opened.ok()) {
      std::optional<ByteRanges> ranges;
      r.legal =
          !r.header.empty() &&
          CheckSnapshotData(device, **opened, oracle_, read_only_, "", &snapshot_views_, &ranges)
              .empty() &&
          ranges.has_value();
      if (ranges) r.ranges = std::move(*ranges);
    }
    std::lock_guard<std::mutex> lock(mutex_);
    reads = &snapshot_reads_.emplace(point, std::move(r)).first->second;
  }
  if (!reads->legal || image.size() != reference->size()) return false;
  for (const auto& [a, b] : host_delta) {
    if (Intersects(reads->ranges, a, b)) return false;
  }
  // The header: a state's often differs from the reference's in the dirty bit alone, which a
  // read-only load ignores; any other difference in the bytes it decodes, and the views are read.
  if (!Intersects(host_delta, 0, reads->header.size())) return true;
  auto header = HeaderBytesForLoad(image);
  return header.ok() && *header == reads->header;
}

std::shared_ptr<const MappingSnapshot> GuestDataCheck::SnapshotAt(uint64_t point) {
  std::lock_guard<std::mutex> lock(mutex_);
  return ReferenceAt(point).snapshot;
}

}  // namespace crashsim
