// Where the guest can read differently in two related images. Given a reference image Y (parsed
// once: header, active L1, and which guest cluster each host cluster holds data for) and an image
// X known to differ from Y only inside some host byte ranges (a superset is fine), it finds the
// guest clusters whose reads may differ: those whose L1/L2 entries changed (COPIED aside, it
// does not change what a read returns) and those whose data lives in a changed host range.
// Every other guest byte reads the same in X as in Y, so a data check of X needs to read only
// these clusters, and the cost is what changed, never the disk.
//
// When something the reads depend on wholesale changed (header fields that shape the mapping,
// the backing file, an L2 table moved past the end of the file), the answer is "everything".
#pragma once

#include <cstdint>
#include <memory>
#include <utility>
#include <vector>

#include "engine/format/entries.h"
#include "engine/format/header.h"
#include "engine/status.h"
#include "simdisk/medium.h"

namespace crashsim {

using ByteRanges = std::vector<std::pair<uint64_t, uint64_t>>;  // [begin, end), sorted, disjoint

// Sorts and merges overlapping or touching ranges.
void NormaliseRanges(ByteRanges& ranges);
// Whether sorted, disjoint `ranges` meet [begin, end).
bool Intersects(const ByteRanges& ranges, uint64_t begin, uint64_t end);
// Cuts sorted ranges off at `end`, dropping those wholly past it.
void ClipRanges(ByteRanges& ranges, uint64_t end);

class MappingSnapshot {
 public:
  // Parses the active mapping of `image`. Fails if the image's header or L1 cannot be read.
  static Result<std::shared_ptr<const MappingSnapshot>> Of(
      std::shared_ptr<const simdisk::Medium> image);

  const simdisk::Medium& image() const { return *image_; }
  const QcowHeader& header() const { return header_; }

  // The guest clusters (as byte ranges, in guest order) that may read differently in `x`, which
  // differs from this snapshot's image only inside `host_delta`; nullopt means "everything".
  std::optional<ByteRanges> AffectedGuestRanges(const simdisk::Medium& x,
                                                ByteRanges host_delta) const;
  // Whether a read-only open of `x` can go differently than one of this image: the open reads
  // the header cluster, the L1 and refcount tables and the snapshot table, and checks snapshot
  // tables against the file size.
  bool OpenMayDiffer(const simdisk::Medium& x, const ByteRanges& host_delta) const;

 private:
  struct DataExtent {
    uint64_t host_begin;
    uint64_t host_end;
    uint64_t guest_cluster;
  };

  std::shared_ptr<const simdisk::Medium> image_;
  QcowHeader header_;
  Geometry geometry_;
  std::vector<uint64_t> l1_;      // raw entries
  std::vector<DataExtent> data_;  // sorted by host_begin
  uint64_t longest_extent_ = 0;   // for range queries over data_
  ByteRanges open_ranges_;        // what a read-only open reads
};

}  // namespace crashsim
