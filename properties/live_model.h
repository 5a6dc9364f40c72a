// What the guest must read back while the workload runs (before any crash): the content each
// op left, with bytes a discard may or may not have dropped marked unknown. Kept as extents over
// the initial content, so it costs memory for the ranges the workload touched.
#pragma once

#include <cstdint>
#include <span>

#include "engine/status.h"
#include "properties/extent_map.h"
#include "properties/initial_content.h"
#include "properties/workload.h"

namespace crashsim {

class LiveModel {
 public:
  LiveModel(const InitialContent& initial, uint64_t disk_size, uint64_t cluster_size)
      : initial_(initial), disk_size_(disk_size), cluster_size_(cluster_size) {}

  void Apply(const WorkloadOp& op);
  // An op the engine failed: the bytes it addressed may hold the old or the new content, or a
  // mixture (a failed write, zero or discard); nothing else changed.
  void Forget(const WorkloadOp& op);
  // Fails on the first byte of `got` (read at guest `offset`) that differs from the model.
  Status Verify(uint64_t offset, std::span<const uint8_t> got) const;

 private:
  struct Source {
    enum Kind : uint8_t { kPattern, kZero, kUnknown } kind = kZero;
    uint32_t pattern = 0;
    bool operator==(const Source&) const = default;
  };

  const InitialContent& initial_;
  uint64_t disk_size_;
  uint64_t cluster_size_;
  ExtentMap<Source> content_;  // gaps read as the initial content
};

}  // namespace crashsim
