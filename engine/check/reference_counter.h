// The in-memory refcount table (QEMU's IMRT): one reference count per host cluster, built by
// adding +1 for every structure that points at a cluster. Sized by the file's cluster count and
// grown only for references that end less than one cluster past EOF, so memory is bounded by
// the file, never by the virtual size. Counts saturate at refcount_max as QEMU's do, reporting
// an overflow. It also remembers which kind of structure first claimed each cluster, so two
// structures sharing a cluster can be named ("active L1 table overlaps refcount block").
#pragma once

#include <cstdint>
#include <vector>

#include "engine/check/check_context.h"

namespace crashsim::check {

// What a reference is for; the checker names overlaps with it.
enum class Owner : uint8_t {
  kNone,
  kHeader,
  kActiveL1,
  kL2,
  kData,
  kSnapshotTable,
  kSnapshotL1,
  kReftable,
  kRefblock,
  kBitmapDirectory,
  kBitmapTable,
  kBitmapData,
};
const char* OwnerName(Owner owner);

class ReferenceCounter {
 public:
  void Reset(uint64_t nb_clusters, uint64_t refcount_max);

  // qcow2_inc_refcounts_imrt: +1 for each cluster [offset, offset+size) touches. A region ending
  // one cluster or more past EOF is a corruption and counts nothing.
  void Add(Context& ctx, uint64_t offset, uint64_t size, Owner owner);

  uint64_t nb_clusters() const { return counts_.size(); }
  uint64_t Get(uint64_t cluster) const { return cluster < counts_.size() ? counts_[cluster] : 0; }
  // For the rebuild, which places new structures in the table.
  void Set(uint64_t cluster, uint64_t value);
  Owner owner(uint64_t cluster) const { return cluster < owners_.size() ? owners_[cluster] : Owner::kNone; }

 private:
  std::vector<uint32_t> counts_;
  std::vector<Owner> owners_;
  uint64_t max_ = 0;
};

}  // namespace crashsim::check
