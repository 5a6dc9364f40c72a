// The commit protocol, written once. Every device write the engine issues names the durable
// step it belongs to, so a crash point reads as "after the refcount block write of cluster N".
//
// Ordering rules (each enforced in image_flush.cc / refcounts.cc, each a mutant in ci/mutants):
//  R1  A refcount increase is on disk before any L1/L2 entry that uses the cluster
//      (refcount blocks written, then a device flush, then the L2/L1 write).
//  R2  Guest data (and copy-on-write data) is on disk before the L2 entry that points at it:
//      a lone FUA data write in writethrough/directsync, else a device flush between the data
//      writes and the L2 write-back. Exception: a fresh cluster past the end of the file whose
//      old contents are zeros needs neither copies nor the barrier (it reads zeros already).
//  R3  An L2/L1 change that drops a reference is on disk before the refcount decrease
//      (decrements are queued, applied only after the L2 write-back and its flush), and a
//      freed cluster is not reused before that: no stale L2 entry can see another's data.
//  R4  A new refcount block is written and flushed before the refcount-table entry naming it;
//      a new refcount table is written and flushed before the header points at it.
//  R5  Resize (engine/resize.cc). Growing: a new L1 table is written and flushed before the
//      header names it, the old one is freed only after that is durable, and the new guest area
//      reads as zeros durably before the size field grows. Shrinking: the clusters past the new
//      end are unmapped durably before the L1 entries past it are cleared, those are cleared
//      durably before their L2 tables are freed, and the size field falls last.
//  Lazy refcounts (compat=1.1, lazy_refcounts=on):
//  L1  Before the first allocation whose metadata could reach the disk, the dirty bit is
//      written (8 bytes at offset 72) and flushed (kDirtyBitSet).
//  L2  While the image is dirty, flushes skip refcount blocks (R1 and R3 do not apply).
//  L3  A clean close writes every L2 table and refcount block, flushes, then rewrites the
//      header without the dirty bit (kDirtyBitClear) and flushes.
#pragma once

#include <cstdint>

namespace crashsim {

enum class DurableStep : uint8_t {
  kNone = 0,
  kCreate,             // image creation (header, first refcount structures, L1)
  kHeaderUpdate,       // rewrite of cluster 0 (autoclear bits, bitmaps marked inconsistent)
  kDirtyBitSet,        // L1: the 8-byte incompatible_features write
  kDirtyBitClear,      // L3: the header rewrite at a clean close
  kRefblockWriteback,  // R1/R3: a dirty refcount block from the cache
  kRefblockAlloc,      // R4: a brand-new refcount block
  kReftableEntry,      // R4: the reftable entry naming a new block
  kReftableWrite,      // R4: a whole new (grown) refcount table
  kReftableSwitch,     // R4: header bytes 48..59 pointing at the new table
  kL2Alloc,            // a new (or copied) L2 table
  kL1Entry,            // the L1 entry naming a new L2 table
  kL1Write,            // a whole L1 table (creation)
  kL2Writeback,        // R1/R2: a dirty L2 table from the cache
  kGuestData,          // guest data at its host cluster
  kCowHead,            // copy-on-write bytes before the guest data
  kCowTail,            // copy-on-write bytes after the guest data
  kPreallocate,        // preallocation=metadata extension of the file
  kRepair,             // writes made by check -r
  kSnapshotTable,      // a new snapshot table, durable before the header names it
  kL1Grow,             // R5: a whole new (grown) L1 table
  kL1Switch,           // R5: header bytes 36..47 pointing at the new L1 table
  kL1Shrink,           // R5: L1 entries past a shrunk disk, cleared
  kSizeUpdate,         // R5: header bytes 24..31, the new virtual size
};
inline constexpr int kDurableStepCount = 24;
const char* DurableStepName(DurableStep step);

}  // namespace crashsim
