#include "properties/guest_run.h"

#include <fmt/format.h>

#include <functional>
#include <memory>
#include <vector>

#include "engine/image.h"
#include "properties/snapshot_ops.h"

namespace crashsim {
namespace {

// The first failed device op at or after `from`, if any.
std::optional<uint64_t> FailedOpSince(const simdisk::Recording& recording, uint64_t from) {
  for (uint64_t seq = from; seq < recording.op_count(); ++seq) {
    if (!recording.ops()[seq].ok()) return seq;
  }
  return std::nullopt;
}

// A write with the `compressed` flag: each whole cluster it covers that holds no host data yet
// (unallocated, over a backing file or not, or a zero cluster without an offset) compressed, the
// rest (partial clusters, clusters holding data, which a compressed write may not overwrite)
// written plain. Runs of each kind go in one call. The guest sees the same bytes either way.
Status WriteCompressedWhereFree(Image& image, uint64_t offset, std::span<const uint8_t> data) {
  const uint64_t cs = image.geometry().cluster_size();
  const uint64_t end = offset + data.size();
  const uint64_t disk = image.virtual_size();
  auto whole = [&](uint64_t at) {  // the cluster at `at` lies whole inside the write
    return at % cs == 0 && (at + cs <= end || (end == disk && at < end));
  };
  auto free_cluster = [&](uint64_t at) -> Result<bool> {
    ASSIGN_OR_RETURN(Mapping m, image.Map(at));
    return m.type != ClusterType::kCompressed && m.host_offset == 0;
  };
  uint64_t pos = offset;
  while (pos < end) {
    bool compress = false;
    if (whole(pos)) {
      ASSIGN_OR_RETURN(compress, free_cluster(pos));
    }
    uint64_t stop = std::min(end, AlignDown(pos, cs) + cs);
    while (stop < end && whole(stop)) {
      bool next = false;
      ASSIGN_OR_RETURN(next, free_cluster(stop));
      if (next != compress) break;
      stop = std::min(end, stop + cs);
    }
    const auto part = data.subspan(pos - offset, stop - pos);
    RETURN_IF_ERROR(compress ? image.WriteCompressed(pos, part) : image.Write(pos, part));
    pos = stop;
  }
  return Status::Ok();
}

// One guest op on an open image; a read's bytes go to `read`.
Status Execute(std::unique_ptr<Image>& image, const WorkloadOp& op, size_t index,
               BlockDevice& device, const OpenOptions& open, std::vector<uint8_t>& read) {
  switch (op.kind) {
    case WorkloadOpKind::kWrite: {
      std::vector<uint8_t> data(op.length);
      FillPattern(op.pattern, op.offset, data);
      if (op.compressed) return WriteCompressedWhereFree(*image, op.offset, data);
      return image->Write(op.offset, data);
    }
    case WorkloadOpKind::kZero:
      return image->WriteZeroes(op.offset, op.length, op.unmap);
    case WorkloadOpKind::kDiscard:
      return image->Discard(op.offset, op.length);
    case WorkloadOpKind::kFlush:
      return image->Flush();
    case WorkloadOpKind::kSnapshot: {
      // Images that cannot hold snapshots (v2, 1-bit refcounts) skip the op: the guest sees
      // nothing either way.
      // nothing either way. Every snapshot op flushes, taken or skipped, so that each is a flush
      // for the guest (IsFlushLike).
      const QcowHeader& h = image->header();
      if (h.version < 3 || h.refcount_order == 0) return image->Flush();
      return image->CreateSnapshot(std::to_string(index + 1), SnapshotName(index));
    }
    case WorkloadOpKind::kDeleteSnapshot: {
      // The oldest snapshot; none (or an image that cannot hold any) skips the op.
      const QcowHeader& h = image->header();
      if (h.version < 3 || h.nb_snapshots == 0) return image->Flush();
      ASSIGN_OR_RETURN(const SnapshotTable table, image->Snapshots());
      return image->DeleteSnapshot(table.entries.front().name);
    }
    case WorkloadOpKind::kApplySnapshot: {
      // The newest snapshot of the disk's current size; none skips the op.
      const QcowHeader& h = image->header();
      if (h.version < 3 || h.nb_snapshots == 0) return image->Flush();
      ASSIGN_OR_RETURN(const SnapshotTable table, image->Snapshots());
      for (auto e = table.entries.rbegin(); e != table.entries.rend(); ++e) {
        if (e->disk_size == h.size) return image->ApplySnapshot(e->id);
      }
      return image->Flush();
    }
    case WorkloadOpKind::kResize:
      return image->Resize(op.new_size);
    case WorkloadOpKind::kRead: {
      read.resize(op.length);
      return image->Read(op.offset, read);
    }
    case WorkloadOpKind::kReopen: {
      // A failed close still ends this Image (dropping it does no I/O: a process kill).
      Status closed = image->Close();
      image.reset();
      RETURN_IF_ERROR(closed);
      ASSIGN_OR_RETURN(image, Image::Open(device, open));
      return Status::Ok();
    }
  }
  return Status::InvalidArgument("unknown workload op");
}

// Whether `op` addresses bytes past the end of `image` after an injected error: a resize that
// failed may have left the disk smaller than the workload expects from there on.
bool OutsideAfterFailedResize(const WorkloadOp& op, const Image& image,
                              const GuestRunResult& result) {
  if (!result.fault || !(op.TouchesData() || op.kind == WorkloadOpKind::kRead)) return false;
  return op.offset + op.length > image.virtual_size();
}

}  // namespace

Result<GuestRunResult> RunGuestWorkload(simdisk::SimDisk& disk, const Workload& workload,
                                        const OpenOptions& open, LiveModel& live) {
  GuestRunResult result;
  std::unique_ptr<Image> image;
  // Whether the engine instance in use met the injected error: only such an instance (left
  // poisoned, say) may keep failing afterwards. The fault fires once, so a fresh open after it,
  // and every call on that fresh instance, must succeed.
  bool tainted = false;
  // Runs one engine call and notes an injected error it met, and whether it said so.
  auto call = [&](const std::string& what, const std::function<Status()>& fn) {
    const uint64_t from = disk.recording().op_count();
    const Image* before = image.get();
    if (before == nullptr) tainted = false;  // an open: no instance yet
    Status st = fn();
    if (!st.ok()) ++result.failed_calls;
    std::optional<uint64_t> failed = FailedOpSince(disk.recording(), from);
    if (failed && !result.fault) result.fault = InjectedFault{*failed, what, st};
    if (failed) {
      tainted = true;
    } else if (image && image.get() != before) {
      tainted = false;  // reopened cleanly: a fresh instance
    }
    if (!result.failure.empty()) return st;
    if (failed && st.ok()) {
      result.failure = fmt::format("device op {} failed ({}) but {} returned success", *failed,
                                   StatusCodeName(disk.recording().ops()[*failed].status), what);
    } else if (!st.ok() && !failed && result.fault && !tainted) {
      result.failure = fmt::format(
          "{} failed though the injected error had passed (device op "
          "{}, in {}): {}",
          what, result.fault->seq, result.fault->call, st.ToString());
    }
    return st;
  };
  auto open_image = [&]() -> Status {
    ASSIGN_OR_RETURN(image, Image::Open(disk, open));
    return Status::Ok();
  };
  Status opened = call("open", open_image);
  if (!opened.ok() && !result.fault) return opened.WithContext("open");
  std::vector<uint8_t> read;
  // Data ops acknowledged since the last flush that succeeded, when the cache mode holds them
  // back: if the engine is then dropped without a clean close (a failed close or reopen), a
  // restarted guest may find any of them lost, as after a process kill.
  const bool held_back = !CacheModeWritesThrough(open.cache_mode);
  std::vector<size_t> unflushed;
  auto forget_unflushed = [&] {
    std::vector<WorkloadOp> lost;
    for (size_t j : unflushed) lost.push_back(workload.ops[j]);
    live.LoseUnflushed(lost);
    unflushed.clear();
  };
  for (size_t i = 0; i <= workload.ops.size(); ++i) {
    const bool closing = i == workload.ops.size();
    const std::string label = closing ? "close" : workload.ops[i].ToText();
    const std::string what =
        closing ? std::string("close") : fmt::format("guest op #{} ({})", i, label);
    disk.BeginGuestOp(i, label);
    Status st = image ? Status::Ok() : call(fmt::format("open before {}", what), open_image);
    if (st.ok() && !closing &&
        (OutsideAfterFailedResize(workload.ops[i], *image, result) ||
         (result.fault && workload.ops[i].kind == WorkloadOpKind::kApplySnapshot))) {
      // The guest was told the resize failed, so it does not address what it would have added;
      // after an injected error it does not revert to a snapshot either (which snapshots exist
      // is no longer known: the oracle and the model allow the op as not done).
      disk.FailGuestOp();
      live.Forget(workload.ops[i]);
      continue;
    }
    if (st.ok()) {
      st = call(what, [&] {
        return closing ? image->Close() : Execute(image, workload.ops[i], i, disk, open, read);
      });
    }
    if (!st.ok()) {
      // No fault was injected (or none yet): an engine error ends the run.
      if (!result.fault) return st.WithContext(what);
      disk.FailGuestOp();
      if (!closing) live.Forget(workload.ops[i]);
      if (!image) forget_unflushed();
      continue;
    }
    if (!closing) {
      const WorkloadOp& op = workload.ops[i];
      live.Apply(op);
      if (IsFlushLike(op.kind)) {
        unflushed.clear();
        live.MarkDurable();
      } else if (op.TouchesData() && held_back) {
        unflushed.push_back(i);
      }
      if (op.kind == WorkloadOpKind::kRead) {
        if (Status v = live.Verify(op.offset, read); !v.ok()) {
          if (!result.fault) return v.WithContext(what);
          if (result.failure.empty()) {
            result.failure = fmt::format("after the injected error, {}: {}", what, v.message());
          }
        }
      }
    }
    disk.AckGuestOp();
  }
  return result;
}

}  // namespace crashsim
