// The in-memory refcount table (QEMU's IMRT): one reference count per host cluster, built by
// adding +1 for every structure that points at a cluster. Sized by the file's cluster count and
// grown only for references that end less than one cluster past EOF, so memory is bounded by
// the file, never by the virtual size. Counts saturate at refcount_max as QEMU's do, reporting
// an overflow. It also remembers which kind of structure first claimed each cluster, so two
// structures sharing a cluster can be named ("active L1 table overlaps refcount block").
//
// Memory: 2 bytes a cluster for refcount_bits <= 16 (4 bytes above), like QEMU's table, plus 2
// bits a cluster for the owner's class (L2 table, data, other). The exact owner of the "other"
// clusters (header, L1s, reftable, refblocks, snapshot table, bitmaps: a small fraction of any
// image) is kept in a sparse map.
#pragma once

#include <cstdint>
#include <unordered_map>
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

  uint64_t nb_clusters() const { return size_; }
  uint64_t Get(uint64_t cluster) const {
    if (cluster >= size_) return 0;
    return wide_ ? counts32_[cluster] : counts16_[cluster];
  }
  // For the rebuild, which places new structures in the table.
  void Set(uint64_t cluster, uint64_t value);
  // The structure that first claimed `cluster` (kNone when nothing did).
  Owner owner(uint64_t cluster) const;

 private:
  enum OwnerClass : uint8_t { kClassNone = 0, kClassL2 = 1, kClassData = 2, kClassOther = 3 };
  void Grow(uint64_t nb_clusters);
  void Store(uint64_t cluster, uint64_t value) {
    if (wide_) {
      counts32_[cluster] = static_cast<uint32_t>(value);
    } else {
      counts16_[cluster] = static_cast<uint16_t>(value);
    }
  }
  OwnerClass ClassOf(uint64_t cluster) const {
    return static_cast<OwnerClass>((classes_[cluster / 4] >> (cluster % 4 * 2)) & 3);
  }
  void SetClass(uint64_t cluster, OwnerClass c) {
    uint8_t& byte = classes_[cluster / 4];
    byte = static_cast<uint8_t>((byte & ~(3u << (cluster % 4 * 2))) | (c << (cluster % 4 * 2)));
  }

  uint64_t size_ = 0;
  bool wide_ = false;               // refcount_max > 0xffff: 32-bit counts
  std::vector<uint16_t> counts16_;  // used when !wide_
  std::vector<uint32_t> counts32_;  // used when wide_
  std::vector<uint8_t> classes_;    // 2 bits a cluster
  std::unordered_map<uint64_t, Owner> other_owners_;  // clusters of class kClassOther
  uint64_t max_ = 0;
};

}  // namespace crashsim::check
