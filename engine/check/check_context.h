// State shared by one pass of the checker (internal to engine/check). A pass mirrors one call of
// QEMU's qcow2_co_check_locked: it reads the header once, walks the structures into a
// ReferenceCounter, compares against the on-disk refcounts and, when fixing, writes repairs.
// The counters are QEMU's BdrvCheckResult, kept as a copyable struct because QEMU's algorithm
// saves and restores them around its second comparison.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "engine/check/check.h"
#include "engine/check/snapshot_table.h"
#include "engine/format/entries.h"
#include "engine/format/header.h"

namespace crashsim::check {

class CheckMemo;

struct Counters {
  int64_t corruptions = 0;
  int64_t leaks = 0;
  int64_t check_errors = 0;
  int64_t corruptions_fixed = 0;
  int64_t leaks_fixed = 0;
};

struct FragInfo {
  uint64_t total_clusters = 0;
  uint64_t allocated_clusters = 0;
  uint64_t fragmented_clusters = 0;
  uint64_t compressed_clusters = 0;
};

class Context {
 public:
  Context(BlockDevice& dev, RepairMode repair_mode, std::vector<Finding>& findings)
      : device(dev), mode(repair_mode), findings_(findings) {}

  BlockDevice& device;
  RepairMode mode;
  QcowHeader header;
  Geometry geo;
  uint64_t file_size = 0;
  Counters res;
  FragInfo bfi;
  std::vector<SnapshotEntry> snapshots;  // the entries the walk follows
  uint64_t snapshots_size = 0;           // bytes of the snapshot table counted as referenced
  bool annotate_overlaps = true;         // only the first walk of a pass names overlaps
  CheckMemo* memo = nullptr;             // optional: reuse results derived from the same bytes

  bool fix_errors() const { return mode == RepairMode::kAll; }
  bool fix_leaks() const { return mode != RepairMode::kNone; }
  uint64_t cluster_size() const { return geo.cluster_size(); }

  // Records a finding without counting it.
  void Note(FindingKind kind, FindingSeverity severity, uint64_t host_offset, std::string structure,
            std::string message, bool repaired = false);
  // Records a finding and counts it as QEMU does: corruptions++ / check_errors++.
  void Corruption(FindingKind kind, uint64_t host_offset, std::string structure,
                  std::string message);
  void CheckError(uint64_t host_offset, std::string structure, std::string message);
  // A corruption found and fixed on the spot: counted in corruptions_fixed only.
  void Fixed(FindingKind kind, uint64_t host_offset, std::string structure, std::string message);
  // Records a guest range the repair dropped.
  void Dropped(uint64_t host_offset, std::string structure, uint64_t guest_offset,
               uint64_t guest_length, const std::string& why);

  // Before the first repair write of a pass: sets the dirty bit of a v3 image (write + flush),
  // so a crash inside the repair leaves an image that is repaired again at the next open.
  Status PrepareToWrite();

  size_t finding_count() const { return findings_.size(); }
  void DropFindingsFrom(size_t index) { findings_.resize(index); }
  Finding& finding(size_t index) { return findings_[index]; }

 private:
  std::vector<Finding>& findings_;
  bool prepared_ = false;
};

// Refreshes ctx.file_size from the device.
Status RefreshFileSize(Context& ctx);

}  // namespace crashsim::check
