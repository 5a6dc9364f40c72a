#include "properties/live_model.h"

#include <fmt/format.h>

#include <algorithm>
#include <vector>

#include "engine/coding.h"

namespace crashsim {

void LiveModel::Apply(const WorkloadOp& op) {
  const uint64_t end = op.offset + op.length;
  switch (op.kind) {
    case WorkloadOpKind::kWrite: content_.Assign(op.offset, end, {Source::kPattern, op.pattern}); break;
    case WorkloadOpKind::kZero: content_.Assign(op.offset, end, {Source::kZero, 0}); break;
    case WorkloadOpKind::kDiscard: {
      // Whole clusters may read as anything the discard allows; partial ones are untouched.
      const uint64_t start = AlignUp(op.offset, cluster_size_);
      const uint64_t stop = end == disk_size_ ? end : std::max(start, AlignDown(end, cluster_size_));
      content_.Assign(start, stop, {Source::kUnknown, 0});
      break;
    }
    default: break;
  }
}

void LiveModel::Forget(const WorkloadOp& op) {
  if (op.TouchesData()) content_.Assign(op.offset, op.offset + op.length, {Source::kUnknown, 0});
}

Status LiveModel::Verify(uint64_t offset, std::span<const uint8_t> got) const {
  std::vector<uint8_t> expect;
  Status result = Status::Ok();
  content_.Visit(offset, offset + got.size(), [&](uint64_t begin, uint64_t end, const Source* s) {
    if (!result.ok() || (s != nullptr && s->kind == Source::kUnknown)) return;
    expect.resize(end - begin);
    if (s == nullptr) {
      initial_.Fill(begin, expect);
    } else if (s->kind == Source::kPattern) {
      FillPattern(s->pattern, begin, expect);
    } else {
      std::fill(expect.begin(), expect.end(), uint8_t{0});
    }
    const auto part = got.subspan(begin - offset, end - begin);
    auto [a, b] = std::mismatch(part.begin(), part.end(), expect.begin());
    if (a == part.end()) return;
    const uint64_t byte = begin + static_cast<uint64_t>(a - part.begin());
    result = Status::Corruption(fmt::format("live read: guest byte {:#x} reads {:#04x}, the "
                                            "workload left {:#04x} there", byte, *a, *b));
  });
  return result;
}

}  // namespace crashsim
