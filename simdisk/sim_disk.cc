#include "simdisk/sim_disk.h"

#include <fmt/format.h>

#include "simdisk/hash.h"

namespace crashsim::simdisk {

namespace {
std::shared_ptr<const Medium> OrEmpty(std::shared_ptr<const Medium> initial, uint64_t size) {
  return initial != nullptr ? std::move(initial) : std::make_shared<const Medium>(size);
}

OpRecord MakeOp(OpKind kind, uint64_t offset, uint64_t length) {
  OpRecord op;
  op.kind = kind;
  op.offset = offset;
  op.length = length;
  return op;
}
}  // namespace

SimDisk::SimDisk(SimDiskOptions options, std::shared_ptr<const Medium> initial)
    : options_(std::move(options)),
      cache_(CacheConfigFor(options_.cache_mode)),
      live_(*OrEmpty(initial, options_.initial_size)),
      recording_(cache_, options_.atomic_unit, OrEmpty(initial, options_.initial_size)) {
  INVARIANT(options_.atomic_unit == 512 || options_.atomic_unit == 4096);
}

Status SimDisk::Finish(OpRecord op, uint64_t cost_ns, Status status) {
  op.guest_op = guest_op_;
  op.status = status.code();
  IoCounters delta;
  if (!status.ok()) {
    delta.failed = 1;
  } else if (op.kind == OpKind::kRead) {
    delta.reads = 1;
    delta.bytes_read = op.length;
  } else if (op.kind == OpKind::kWrite) {
    delta.writes = 1;
    delta.bytes_written = op.length;
    delta.fua_writes = op.fua ? 1 : 0;
  } else if (op.kind == OpKind::kFlush) {
    delta.flushes = 1;
  } else if (op.kind == OpKind::kResize) {
    delta.resizes = 1;
  }
  delta.time_ns = status.ok() ? cost_ns : 0;
  totals_ += delta;
  by_guest_op_[guest_op_] += delta;
  recording_.Append(std::move(op));
  return status;
}

Status SimDisk::Read(uint64_t offset, std::span<uint8_t> data) {
  OpRecord op = MakeOp(OpKind::kRead, offset, data.size());
  Status status = faults_.Check(OpKind::kRead, IoTag::kUnknown, offset, data.size());
  if (status.ok()) status = live_.Read(offset, data);
  return Finish(std::move(op), ReadCostNs(options_.cost, data.size()), std::move(status));
}

Status SimDisk::Write(uint64_t offset, std::span<const uint8_t> data, WriteOptions options) {
  OpRecord op = MakeOp(OpKind::kWrite, offset, data.size());
  op.fua = options.fua;
  op.honoured = cache_.flush_honoured;
  op.tag = options.tag;
  op.step = options.step;
  Status status = faults_.Check(OpKind::kWrite, options.tag, offset, data.size());
  if (status.ok()) {
    if (options_.hash_writes) op.data_hash = HashBytes(data);
    op.data = std::make_shared<const Bytes>(data.begin(), data.end());
    live_.WriteAt(offset, data);
  }
  const uint64_t cost = WriteCostNs(options_.cost, data.size(), options.fua && op.honoured);
  return Finish(std::move(op), cost, std::move(status));
}

Status SimDisk::Flush() {
  OpRecord op = MakeOp(OpKind::kFlush, 0, 0);
  op.honoured = cache_.flush_honoured;
  const uint64_t cost = FlushCostNs(options_.cost, op.honoured);
  Status status = faults_.Check(OpKind::kFlush, IoTag::kUnknown, 0, 0);
  return Finish(std::move(op), cost, std::move(status));
}

Status SimDisk::Resize(uint64_t size) {
  OpRecord op = MakeOp(OpKind::kResize, size, 0);
  Status status = faults_.Check(OpKind::kResize, IoTag::kUnknown, size, 0);
  if (status.ok()) live_.SetSize(size);
  return Finish(std::move(op), options_.cost.write_ns, std::move(status));
}

void SimDisk::BeginGuestOp(uint64_t id, std::string label) {
  INVARIANT(guest_op_ == kNoGuestOp);
  INVARIANT(id != kNoGuestOp);
  guest_op_ = id;
  OpRecord op = MakeOp(OpKind::kGuestBegin, 0, 0);
  op.guest_op = id;
  const uint64_t seq = recording_.Append(std::move(op));
  recording_.BeginGuestOp(id, std::move(label), seq);
}

void SimDisk::AckGuestOp() {
  INVARIANT(guest_op_ != kNoGuestOp);
  OpRecord op = MakeOp(OpKind::kGuestAck, 0, 0);
  op.guest_op = guest_op_;
  const uint64_t seq = recording_.Append(std::move(op));
  recording_.AckGuestOp(guest_op_, seq);
  guest_op_ = kNoGuestOp;
}

void SimDisk::FailGuestOp() {
  INVARIANT(guest_op_ != kNoGuestOp);
  guest_op_ = kNoGuestOp;
}

std::shared_ptr<const Recording> SimDisk::SnapshotRecording() const {
  return std::make_shared<const Recording>(recording_);
}

}  // namespace crashsim::simdisk
