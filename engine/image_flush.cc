// The flush protocol: the one place that decides in which order cached metadata reaches the
// disk (rules R1-R3 and L2 in engine/protocol.h).
#include "engine/image_state.h"

namespace crashsim {

Status Image::State::FlushMetadata(bool flush_refcounts_even_if_lazy) {
  const bool write_refcounts = flush_refcounts_even_if_lazy || accurate_refcounts();
  bool data_barrier_done = false;
  // R1: refcount increases are durable before the L2 entries that use the clusters.
  if (write_refcounts && refblock_cache.HasDirty()) {
    RETURN_IF_ERROR(WriteRefcountBlocks());
    RETURN_IF_ERROR(DevFlush());
    data_barrier_done = true;
  }
  if (l2_cache.HasDirty()) {
    // R2: guest and copy-on-write data are durable before the L2 entries pointing at them.
    if (l2_needs_data_barrier && !data_barrier_done) RETURN_IF_ERROR(DevFlush());
    RETURN_IF_ERROR(l2_cache.WriteBackAll());
  }
  l2_needs_data_barrier = false;
  // R3: references are dropped on disk before the refcounts fall (and clusters are reused).
  if (!pending_decrements.empty()) {
    RETURN_IF_ERROR(DevFlush());
    RETURN_IF_ERROR(ApplyPendingDecrements());
    if (write_refcounts) RETURN_IF_ERROR(WriteRefcountBlocks());
  }
  return DevFlush();
}

Status Image::State::GuestFlush() {
  if (closed) return Status::InvalidArgument("image is closed");
  if (options.read_only) return Status::Ok();
  if (poisoned) return Status::IoError(device.Name() + ": an earlier write failed half way");
  Status st = FlushMetadata(/*flush_refcounts_even_if_lazy=*/false);
  if (!st.ok()) Poison();
  return st;
}

Status Image::Flush() { return s_->GuestFlush(); }

}  // namespace crashsim
