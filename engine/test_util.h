// Helpers shared by the engine's unit tests: a recording device and image fixtures.
#pragma once

#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "engine/image.h"
#include "engine/memory_device.h"
#include "engine/protocol.h"

namespace crashsim::testing {

// A MemoryDevice that logs every write and flush, in order.
class RecordingDevice : public MemoryDevice {
 public:
  struct Op {
    enum Kind { kWrite, kFlush } kind;
    uint64_t offset = 0;
    uint64_t length = 0;
    IoTag tag = IoTag::kUnknown;
    DurableStep step = DurableStep::kNone;
  };
  Status Write(uint64_t offset, std::span<const uint8_t> data, WriteOptions options) override {
    ops.push_back(
        {Op::kWrite, offset, data.size(), options.tag, static_cast<DurableStep>(options.step)});
    return MemoryDevice::Write(offset, data, options);
  }
  Status Flush() override {
    ops.push_back({Op::kFlush});
    return Status::Ok();
  }
  std::vector<Op> ops;
};

inline std::vector<uint8_t> Pattern(size_t n, uint8_t seed) {
  std::vector<uint8_t> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = static_cast<uint8_t>(seed + i * 7 + (i >> 9));
  return v;
}

// The image options the engine's test matrices vary.
inline CreateOptions MatrixOptions(uint64_t size, uint32_t version, uint64_t cluster_size,
                                   uint32_t refcount_bits, bool lazy, bool extended_l2) {
  CreateOptions o;
  o.size = size;
  o.version = version;
  o.cluster_size = cluster_size;
  o.refcount_bits = refcount_bits;
  o.lazy_refcounts = lazy;
  o.extended_l2 = extended_l2;
  return o;
}

// A qcow2 backing file in memory, `size` bytes of Pattern(size, seed), and an opener that
// serves it under `name` (any name if empty) as a fresh copy each time.
struct MemoryBacking {
  std::shared_ptr<MemoryDevice> device;
  BackingOpener opener;
};
inline Result<MemoryBacking> MakeMemoryBacking(uint64_t size, uint8_t seed,
                                               const std::string& name = "base.qcow2") {
  auto base = std::make_shared<MemoryDevice>();
  CreateOptions bo;
  bo.size = size;
  RETURN_IF_ERROR(Image::Create(*base, bo));
  {
    ASSIGN_OR_RETURN(std::unique_ptr<Image> b, Image::Open(*base, {}));
    RETURN_IF_ERROR(b->Write(0, Pattern(size, seed)));
    RETURN_IF_ERROR(b->Close());
  }
  BackingOpener opener = [base,
                          name](const std::string& asked) -> Result<std::unique_ptr<BlockDevice>> {
    if (!name.empty() && asked != name) return Status::NotFound(asked);
    return std::unique_ptr<BlockDevice>(new MemoryDevice(base->bytes()));
  };
  return MemoryBacking{base, opener};
}

inline bool HaveQemuImg() { return std::system("qemu-img --version >/dev/null 2>&1") == 0; }

}  // namespace crashsim::testing
