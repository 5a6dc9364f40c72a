// The in-memory refcount table (QEMU's IMRT): one reference count per host cluster, built by
// adding +1 for every structure that points at a cluster. Sized by the file's cluster count and
// grown only for references that end less than one cluster past EOF, so memory is bounded by
// the file, never by the virtual size. Counts saturate at refcount_max as QEMU's do, reporting
// an overflow. It also remembers which kind of structure first claimed each cluster, so two
// structures sharing a cluster can be named ("active L1 table overlaps refcount block").
//
// Memory: one byte a cluster, half of QEMU's 16-bit table. Its low 7 bits hold the count, which
// is almost always 0, 1 or a handful (snapshots, compressed clusters sharing a host cluster); a
// count of 127 or more escapes to a 32-bit count in a page of 4096 clusters, allocated when the
// first cluster of that page needs it. The top bit says the first owner was not a data cluster:
// the owner only matters once a cluster is referenced twice, and nearly every cluster is data,
// so data costs nothing, an L2 table (numerous, spread through the file) costs only the bit, and
// the few other metadata clusters (header, L1 tables, refcount table and blocks, snapshot table,
// bitmaps) are named in a sparse map.
#pragma once

#include <cstdint>
#include <memory>
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

  // Add(ctx, offset, cluster_size, Owner::kData), inline for the walk's common case: an aligned
  // data cluster inside the file that nothing has claimed yet. Anything else takes Add.
  void AddDataCluster(Context& ctx, uint64_t offset) {
    const uint64_t cluster = offset >> ctx.geo.cluster_bits;
    if (offset < ctx.file_size && (offset & (ctx.cluster_size() - 1)) == 0 && cluster < size_ &&
        bytes_[cluster] == Byte{0}) {
      bytes_[cluster] = Byte{1};  // refcount_max >= 1; a data cluster's owner needs no record
      return;
    }
    Add(ctx, offset, ctx.cluster_size(), Owner::kData);
  }

  uint64_t nb_clusters() const { return size_; }
  uint64_t Get(uint64_t cluster) const {
    if (cluster >= size_) return 0;
    const uint8_t count = static_cast<uint8_t>(bytes_[cluster]) & kCountMask;
    return count < kEscape ? count : WideCount(cluster);
  }
  // Whether clusters [begin, end) all have count 0 (end <= nb_clusters()).
  bool AllZero(uint64_t begin, uint64_t end) const;
  // For the rebuild, which places new structures in the table (value >= 1: a count never
  // returns to 0, which is what keeps a cluster's owner bit meaningful).
  void Set(uint64_t cluster, uint64_t value);
  // The structure that first claimed `cluster` (kNone when nothing did).
  Owner owner(uint64_t cluster) const;

  // Regions Add refused for ending a cluster or more past EOF are remembered: a rebuild that
  // extends the file must not place a structure on one, and once the file covers one it is a
  // reference like any other. Counts, as Add would, each refused region that starts below
  // cluster `end` and was not counted yet, growing the table over it; returns how many.
  size_t CountPastEofBelow(Context& ctx, uint64_t end);

 private:
  // A cluster's byte. Not uint8_t: a store through a character type may alias any object, so
  // the compiler would reload every member and every caller's field after each count it stores.
  enum class Byte : uint8_t {};
  static constexpr uint8_t kNotData = 0x80;  // the first owner was not a data cluster
  static constexpr uint8_t kCountMask = 0x7f;
  static constexpr uint8_t kEscape = 0x7f;       // the count is in the cluster's wide page
  static constexpr uint64_t kWidePageBits = 12;  // 4096 clusters, 16 KiB a page

  void Grow(uint64_t nb_clusters);
  // Adds one reference to clusters [first, last] for `owner`.
  void Count(Context& ctx, uint64_t first, uint64_t last, Owner owner);
  uint32_t WideCount(uint64_t cluster) const {
    return wide_pages_[cluster >> kWidePageBits][cluster & ((1u << kWidePageBits) - 1)];
  }
  // Sets the count of `cluster`, keeping its owner bit.
  void Store(uint64_t cluster, uint64_t value);

  uint64_t size_ = 0;
  uint64_t max_ = 0;
  std::vector<Byte> bytes_;                              // owner bit | count or kEscape
  std::vector<std::unique_ptr<uint32_t[]>> wide_pages_;  // by cluster >> kWidePageBits
  // The first owner of clusters marked kNotData that are not L2 tables.
  std::unordered_map<uint64_t, Owner> other_owners_;
  struct PastEofRegion {
    uint64_t offset;
    uint64_t size;
    Owner owner;
    bool counted;
  };
  std::vector<PastEofRegion> past_eof_;
};

}  // namespace crashsim::check
