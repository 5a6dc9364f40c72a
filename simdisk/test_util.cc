#include "simdisk/test_util.h"

#include <algorithm>

#include "simdisk/write_cache.h"

namespace crashsim::simdisk::testing {

std::vector<uint8_t> PayloadFor(const WorkOp& op, size_t index) {
  std::vector<uint8_t> data(op.length);
  for (size_t i = 0; i < data.size(); ++i) {
    data[i] = static_cast<uint8_t>((index * 131 + i * 7 + op.fill) % 251 + 1);  // never 0
  }
  return data;
}

std::unique_ptr<SimDisk> RunWorkload(const std::vector<WorkOp>& ops, SimDiskOptions options,
                                     uint64_t device_size) {
  options.initial_size = device_size;
  auto disk = std::make_unique<SimDisk>(options);
  for (size_t i = 0; i < ops.size(); ++i) {
    const WorkOp& op = ops[i];
    Status status;
    if (op.kind == WorkOp::kWrite) {
      const size_t payload = op.payload_of < 0 ? i : static_cast<size_t>(op.payload_of);
      status = disk->Write(op.offset, PayloadFor(op, payload), WriteOptions{op.fua, op.tag});
    } else if (op.kind == WorkOp::kFlush) {
      status = disk->Flush();
    } else {
      status = disk->Resize(op.offset);
    }
    INVARIANT(status.ok());
  }
  return disk;
}

std::vector<uint8_t> ReadAll(const Medium& medium) {
  std::vector<uint8_t> bytes(medium.size());
  medium.ReadAt(0, bytes);
  return bytes;
}

std::vector<uint8_t> ReferenceImage(const Recording& recording, const CrashState& state,
                                    std::vector<bool>* garbage_bytes) {
  std::vector<uint8_t> image = ReadAll(*recording.initial());
  std::vector<bool> garbage(image.size(), false);
  const uint64_t barrier = recording.BarrierBefore(state.point);
  const uint64_t unit = recording.atomic_unit();
  for (uint64_t seq = 0; seq < state.point; ++seq) {
    const OpRecord& op = recording.ops()[seq];
    if (!op.ChangesMedium()) continue;
    const WriteFate* fate = nullptr;
    for (const WriteFate& f : state.fates) {
      if (f.op == seq) fate = &f;
    }
    INVARIANT(fate == nullptr || seq >= barrier);
    if (fate != nullptr && fate->dropped()) continue;
    if (op.kind == OpKind::kResize) {
      image.resize(op.offset, 0);
      garbage.resize(op.offset, false);
      continue;
    }
    if (op.offset + op.length > image.size()) {
      image.resize(op.offset + op.length, 0);
      garbage.resize(op.offset + op.length, false);
    }
    for (uint64_t i = 0; i < op.length; ++i) {
      const uint64_t byte = op.offset + i;
      const uint64_t u = byte / unit - op.offset / unit;
      if (fate == nullptr || fate->kept.Test(u)) {
        image[byte] = (*op.data)[i];
        garbage[byte] = false;
      } else if (fate->garbage.Test(u)) {
        garbage[byte] = true;
      }
    }
  }
  if (garbage_bytes != nullptr) *garbage_bytes = garbage;
  return image;
}

rc::Gen<std::vector<WorkOp>> GenWorkload(uint64_t device_size, size_t max_ops, bool with_resize) {
  auto gen_op = rc::gen::exec([=] {
    WorkOp op;
    const int roll = *rc::gen::inRange(0, 20);
    if (roll < 3) {
      op.kind = WorkOp::kFlush;
    } else if (with_resize && roll < 4) {
      op.kind = WorkOp::kResize;
      op.offset = *rc::gen::inRange<uint64_t>(device_size / 2, device_size * 3 / 2);
    } else {
      op.offset = *rc::gen::inRange<uint64_t>(0, device_size - 1);
      op.length =
          *rc::gen::inRange<uint64_t>(1, std::min<uint64_t>(1500, device_size - op.offset) + 1);
      op.fua = *rc::gen::inRange(0, 6) == 0;
      op.tag =
          *rc::gen::element(IoTag::kData, IoTag::kL2Table, IoTag::kRefcountBlock, IoTag::kHeader);
      op.fill = *rc::gen::arbitrary<uint8_t>();
    }
    return op;
  });
  // The container's size bounds the count; each op takes offsets and lengths from the whole
  // device (inRange scales with the size it is given, and max_ops would confine it).
  auto gen_step = rc::gen::resize(rc::kNominalSize, rc::gen::pair(gen_op, rc::gen::inRange(0, 4)));
  return rc::gen::map(
      rc::gen::resize(static_cast<int>(max_ops),
                      rc::gen::container<std::vector<std::pair<WorkOp, int>>>(gen_step)),
      [](const std::vector<std::pair<WorkOp, int>>& steps) {
        std::vector<WorkOp> ops;
        int64_t last_write = -1;
        for (const auto& [op, roll] : steps) {
          if (roll == 0 && last_write >= 0 && op.kind == WorkOp::kWrite) {
            WorkOp again = ops[static_cast<size_t>(last_write)];
            if (again.payload_of < 0) again.payload_of = last_write;
            again.fua = op.fua;
            ops.push_back(again);
          } else {
            ops.push_back(op);
          }
          if (ops.back().kind == WorkOp::kWrite) last_write = static_cast<int64_t>(ops.size()) - 1;
        }
        return ops;
      });
}

CrashModel GenModel() {
  CrashModel model;
  model.order = *rc::gen::element(OrderModel::kAnySubset, OrderModel::kPrefix);
  model.tears = *rc::gen::element(TearShape::kNone, TearShape::kPrefix, TearShape::kAnySubset);
  model.content = *rc::gen::element(TearContent::kOldOrNew, TearContent::kGarbage);
  return model;
}

std::vector<CrashState> EnumerateStates(std::shared_ptr<const Recording> recording,
                                        CrashModel model, uint64_t seed, uint64_t k, bool dedupe) {
  EnumerationOptions options;
  options.selection.model = model;
  options.selection.k = k;
  options.selection.exhaustive_budget = 64;
  options.selection.samples = 8;
  options.selection.seed = seed;
  options.dedupe = dedupe;
  CrashEnumerator enumerator(std::move(recording), options);
  std::vector<CrashState> states;
  while (auto state = enumerator.Next()) states.push_back(std::move(*state));
  return states;
}

}  // namespace crashsim::simdisk::testing
