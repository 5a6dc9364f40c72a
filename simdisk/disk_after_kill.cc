#include "simdisk/disk_after_kill.h"

#include "engine/invariant.h"
#include "simdisk/hash.h"

namespace crashsim::simdisk {
namespace {

// Calls fn(op) for each op a kill at `point` leaves to the next process, in issue order.
template <typename Fn>
void ForEachInherited(const Recording& recording, uint64_t point, Fn&& fn) {
  INVARIANT(point <= recording.op_count());
  const auto& ops = recording.ops();
  for (uint64_t seq = recording.BarrierBefore(point); seq < point; ++seq) {
    if (ops[seq].ChangesMedium()) fn(ops[seq]);
  }
}

}  // namespace

DiskAfterKill MakeDiskAfterKill(const Recording& recording, uint64_t point,
                                SimDiskOptions options) {
  DiskAfterKill out;
  out.disk = std::make_unique<SimDisk>(std::move(options),
                                       recording.MediumAt(recording.BarrierBefore(point)));
  SimDisk& disk = *out.disk;
  ForEachInherited(recording, point, [&](const OpRecord& op) {
    Status st;
    if (op.kind == OpKind::kResize) {
      st = disk.Resize(op.offset);
    } else {
      WriteOptions wo;
      wo.fua = op.IsDurableWrite();
      wo.tag = op.tag;
      wo.step = op.step;
      st = disk.Write(op.offset, *op.data, wo);
    }
    INVARIANT(st.ok());  // the new disk has no fault plan
  });
  out.inherited_ops = disk.recording().op_count();
  return out;
}

uint64_t InheritedDigest(const Recording& recording, uint64_t point) {
  uint64_t h = 0;
  ForEachInherited(recording, point, [&](const OpRecord& op) {
    h = HashCombine(h, static_cast<uint64_t>(op.kind));
    h = HashCombine(h, op.offset);
    h = HashCombine(h, op.length);
    h = HashCombine(h, op.IsDurableWrite());
    if (op.data) h = HashCombine(h, op.data_hash != 0 ? op.data_hash : HashBytes(*op.data));
  });
  return h;
}

}  // namespace crashsim::simdisk
