// What the guest must read back while the workload runs (before any crash): the content each
// op left, with bytes a discard may or may not have dropped marked unknown. Kept as extents over
// the initial content, so it costs memory for the ranges the workload touched.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "engine/status.h"
#include "properties/extent_map.h"
#include "properties/initial_content.h"
#include "properties/snapshot_list.h"
#include "properties/workload.h"

namespace crashsim {

class LiveModel {
 public:
  // `snapshots`: the image can hold internal snapshots (v3, refcounts wider than one bit), so
  // snapshot ops take effect (guest_run.cc skips them otherwise).
  LiveModel(const InitialContent& initial, uint64_t disk_size, uint64_t cluster_size,
            bool snapshots = false)
      : initial_(initial),
        disk_size_(disk_size),
        cluster_size_(cluster_size),
        snapshots_supported_(snapshots) {}

  void Apply(const WorkloadOp& op);
  // An op the engine failed: each sector it addressed may hold what it held before or what the
  // op would have left (a failed write, zero or discard); nothing else changed.
  void Forget(const WorkloadOp& op);
  // The content now is durable (a flush or a reopen succeeded).
  void MarkDurable() { durable_ = content_; }
  // The engine was dropped without a clean close while `ops` (applied since the last
  // MarkDurable) were not yet durable: each sector they touched may read as it did at
  // MarkDurable or as any of them left it.
  void LoseUnflushed(const std::vector<WorkloadOp>& ops);
  // Fails on the first byte of `got` (read at guest `offset`) that differs from the model.
  Status Verify(uint64_t offset, std::span<const uint8_t> got) const;

 private:
  struct Source {
    enum Kind : uint8_t { kInitial, kPattern, kZero, kUnknown } kind = kZero;
    uint32_t pattern = 0;
    bool operator==(const Source&) const = default;
  };
  // What a range may read as: one source, or, after ops that failed, any of a few, chosen
  // sector by sector (a failed write may have landed in some sectors and not others).
  using Sources = std::vector<Source>;

  // Lets every piece of [begin, end) also read as `more`.
  void Widen(uint64_t begin, uint64_t end, const Sources& more);
  static Sources SourcesOf(const WorkloadOp& op);
  // Whether `got`, read at guest `offset`, is `source`'s content there.
  bool Matches(const Source& source, uint64_t offset, std::span<const uint8_t> got) const;

  const InitialContent& initial_;
  uint64_t disk_size_;
  uint64_t cluster_size_;
  ExtentMap<Sources> content_;  // gaps read as the initial content
  ExtentMap<Sources> durable_;  // content_ at the last MarkDurable
  bool snapshots_supported_;
  SnapshotList<ExtentMap<Sources>> snapshots_;  // the content when each was taken
};

}  // namespace crashsim
