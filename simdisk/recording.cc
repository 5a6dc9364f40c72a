#include "simdisk/recording.h"

#include <fmt/format.h>

#include <algorithm>

#include "simdisk/hash.h"

namespace crashsim::simdisk {

struct Recording::MediumCache {
  std::mutex mutex;
  std::map<uint64_t, std::shared_ptr<const Medium>> media;
};

const char* OpKindName(OpKind kind) {
  switch (kind) {
    case OpKind::kRead:
      return "read";
    case OpKind::kWrite:
      return "write";
    case OpKind::kFlush:
      return "flush";
    case OpKind::kResize:
      return "resize";
    case OpKind::kGuestBegin:
      return "guest-begin";
    case OpKind::kGuestAck:
      return "guest-ack";
  }
  return "?";
}

std::string OpRecordToText(const OpRecord& op) {
  std::string text = fmt::format("{} {}", op.seq, OpKindName(op.kind));
  switch (op.kind) {
    case OpKind::kRead:
      text += fmt::format(" {:#x}+{}", op.offset, op.length);
      break;
    case OpKind::kWrite:
      text += fmt::format(" {:#x}+{}{} tag={} hash={:016x}", op.offset, op.length,
                          op.fua ? " fua" : "", IoTagName(op.tag), op.data_hash);
      break;
    case OpKind::kResize:
      text += fmt::format(" {:#x}", op.offset);
      break;
    case OpKind::kFlush:
    case OpKind::kGuestBegin:
    case OpKind::kGuestAck:
      break;
  }
  if ((op.kind == OpKind::kFlush || op.fua) && !op.honoured) text += " ignored";
  if (op.guest_op != kNoGuestOp) text += fmt::format(" guest={}", op.guest_op);
  if (!op.ok()) text += fmt::format(" failed={}", StatusCodeName(op.status));
  return text;
}

Recording::Recording(CacheConfig cache, uint64_t atomic_unit, std::shared_ptr<const Medium> initial)
    : cache_(cache),
      atomic_unit_(atomic_unit),
      initial_(std::move(initial)),
      medium_cache_(std::make_shared<MediumCache>()) {
  INVARIANT(atomic_unit_ > 0);
  INVARIANT(initial_ != nullptr);
  medium_cache_->media[0] = initial_;
}

uint64_t Recording::BarrierBefore(uint64_t point) const {
  auto it = std::upper_bound(barriers_.begin(), barriers_.end(), point);
  return it == barriers_.begin() ? 0 : *(it - 1);
}

std::shared_ptr<const Medium> Recording::MediumAt(uint64_t point) const {
  INVARIANT(point <= ops_.size());
  std::lock_guard<std::mutex> lock(medium_cache_->mutex);
  auto& cache = medium_cache_->media;
  auto it = cache.upper_bound(point);
  --it;  // key 0 is always present
  if (it->first == point) return it->second;
  Medium medium = *it->second;  // shares pages and chunks with the cached state
  for (uint64_t seq = it->first; seq < point; ++seq) {
    if (ops_[seq].ChangesMedium()) ApplyWhole(medium, ops_[seq]);
  }
  auto result = std::make_shared<const Medium>(std::move(medium));
  cache[point] = result;
  return result;
}

Recording Recording::Fork() const {
  Recording copy = *this;
  copy.medium_cache_ = std::make_shared<MediumCache>();
  copy.medium_cache_->media[0] = initial_;
  return copy;
}

std::vector<uint64_t> Recording::AckedBefore(uint64_t point) const {
  std::vector<uint64_t> acked;
  for (const GuestOp& g : guest_ops_) {
    if (g.ack_seq < point) acked.push_back(g.id);
  }
  return acked;
}

uint64_t Recording::Digest() const {
  uint64_t h = HashCombine(initial_->Digest(), atomic_unit_);
  for (const OpRecord& op : ops_) {
    for (uint64_t v :
         {uint64_t{static_cast<uint8_t>(op.kind)}, op.offset, op.length,
          uint64_t{op.fua} | uint64_t{op.honoured} << 1, uint64_t{static_cast<uint8_t>(op.tag)},
          op.data_hash, op.guest_op, static_cast<uint64_t>(op.status)}) {
      h = HashCombine(h, v);
    }
  }
  return h;
}

uint64_t Recording::Append(OpRecord op) {
  op.seq = ops_.size();
  if (op.IsBarrier()) barriers_.push_back(op.seq + 1);
  ops_.push_back(std::move(op));
  return ops_.size() - 1;
}

void Recording::BeginGuestOp(uint64_t id, std::string label, uint64_t seq) {
  guest_ops_.push_back({id, std::move(label), seq, UINT64_MAX});
}

void Recording::AckGuestOp(uint64_t id, uint64_t seq) {
  for (auto it = guest_ops_.rbegin(); it != guest_ops_.rend(); ++it) {
    if (it->id == id) {
      it->ack_seq = seq;
      return;
    }
  }
  INVARIANT(false && "acknowledging a guest operation that never began");
}

void ApplyWhole(Medium& medium, const OpRecord& op) {
  INVARIANT(op.ChangesMedium());
  if (op.kind == OpKind::kResize) {
    medium.SetSize(op.offset);
  } else {
    medium.WriteAt(op.offset, *op.data);
  }
}

}  // namespace crashsim::simdisk
