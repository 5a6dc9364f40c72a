// The engine's in-memory state for one open image and the internal operations on it, shared by
// image_open.cc (open, create, header, dirty bit, close), refcounts.cc (refcounts, allocation),
// image_io.cc (guest reads and writes) and image_flush.cc (the flush protocol).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <vector>

#include "engine/block_device.h"
#include "engine/format/entries.h"
#include "engine/format/header.h"
#include "engine/image.h"
#include "engine/metadata_cache.h"
#include "engine/options.h"
#include "engine/overlap_check.h"
#include "engine/protocol.h"

namespace crashsim {

// One L2 entry: word 0, plus the subcluster bitmap (word 1) for extended L2.
struct L2Entry {
  uint64_t word = 0;
  uint64_t bitmap = 0;
  uint64_t host_offset() const { return word & kL2OffsetMask; }
  bool copied() const { return word & kOflagCopied; }
};

struct Image::State {
  State(BlockDevice& dev, QcowHeader hdr, OpenOptions opts);

  BlockDevice& device;
  std::unique_ptr<BlockDevice> owned_device;
  QcowHeader header;
  Geometry geometry;
  OpenOptions options;
  bool lazy = false;
  bool closed = false;
  bool bitmaps_invalidated = false;
  std::unique_ptr<GuestReader> backing;
  std::vector<uint64_t> l1;        // active L1 table, host byte order
  std::vector<uint64_t> reftable;  // refcount table, host byte order
  // Entries [0, reftable_used) hold every nonzero one, so the overlap check scans those, not a
  // mostly empty table on every write (QEMU keeps max_refcount_table_index for the same).
  uint64_t reftable_used = 0;
  void SetReftable(std::vector<uint64_t> table) {
    reftable = std::move(table);
    reftable_used = reftable.size();
    while (reftable_used > 0 && reftable[reftable_used - 1] == 0) --reftable_used;
  }
  MetadataCache l2_cache;
  MetadataCache refblock_cache;
  EngineStats stats;
  std::string repair_log;  // what the automatic repair of a dirty image printed
  // Where the snapshots' L1 tables and the snapshot table lie, for the overlap check.
  std::vector<SnapshotL1Location> snapshot_l1s;
  uint64_t snapshot_table_size = 0;

  // Commit-protocol state (engine/protocol.h).
  bool dirty_on_disk = false;          // the dirty bit as the disk has it
  bool refcounts_unwritten = false;    // refcount blocks changed since their last write-back
  bool l2_needs_data_barrier = false;  // R2: data written since the last flush that L2s point to
  // R3: reference drops whose L2/L1 change is not yet durable: cluster index -> count.
  std::map<uint64_t, uint64_t> pending_decrements;
  uint64_t free_cluster_index = 0;
  // Where the next compressed cluster may go: the end of the last one, inside a host cluster it
  // shares (QEMU's free_byte_offset); 0 when a fresh cluster must be taken.
  uint64_t compressed_free = 0;
  uint64_t writes_since_flush = 1;  // non-FUA writes since the last device flush (unknown: 1)

  // --- device access, tagged with the protocol step ---
  Status DevWrite(uint64_t offset, std::span<const uint8_t> data, IoTag tag, DurableStep step,
                  bool fua = false);
  Status DevFlush();
  // Reads host bytes for guest data: bytes past the end of the file read as zeros (a sparse
  // preallocated image), as QEMU's file driver does.
  Status ReadHostData(uint64_t offset, std::span<uint8_t> data);

  // --- metadata overlap check (image_overlap.cc) ---
  // Refuses a write tagged `tag` that would land on metadata it is not meant for: the image is
  // marked corrupt and this Image refuses all further writes, as QEMU does.
  Status PreWriteOverlapCheck(uint64_t offset, uint64_t size, IoTag tag);
  MetadataLayout metadata_layout() const;

  // --- header and dirty bit (image_open.cc) ---
  Status WriteHeader(DurableStep step);
  Status MarkDirty();          // L1
  Status MarkClean();          // L3
  Status InvalidateBitmaps();  // before the first write to an image with bitmaps
  Status PrepareForWrite();    // checks read-only/closed/poisoned, invalidates bitmaps
  // After a modifying operation failed half way the in-memory state may disagree with the disk:
  // the image is marked dirty (v3, best effort) so the next open repairs it, and this Image
  // refuses further writes and never clears the dirty bit.
  void Poison();
  // Poisons on failure; returns `st` unchanged.
  Status Guard(Status st) {
    if (!st.ok()) Poison();
    return st;
  }
  bool poisoned = false;
  // Lazy refcounts: refcount blocks reach the disk only at a clean close. Every allocation sets
  // the dirty bit first (L1), so an image whose refcounts are stale on disk is marked dirty.
  bool accurate_refcounts() const { return !lazy; }

  // --- refcounts and allocation (refcounts.cc) ---
  Result<uint64_t> GetRefcount(uint64_t cluster_index);
  // The refcount block refcount-table entry `rt_index` names (through the cache), or an empty
  // span where there is none (refcounts 0).
  Result<std::span<uint8_t>> RefcountBlockAt(uint64_t rt_index);
  Status SetRefcount(uint64_t cluster_index, uint64_t value);
  // Allocates `count` contiguous free clusters with refcount 1; returns the first host offset.
  Result<uint64_t> AllocateClusters(uint64_t count);
  // Queues a reference drop (R3); applied by ApplyPendingDecrements after the L2 write-back.
  void QueueDecrement(uint64_t host_offset, uint64_t cluster_count = 1);
  Status ApplyPendingDecrements();
  // Releases the clusters an L2 entry holds (normal, zero-alloc, compressed span).
  void ReleaseEntry(const L2Entry& entry);
  Status EnsureRefblock(uint64_t cluster_index, bool* allocated);
  Status GrowReftable(uint64_t min_entries);
  Result<uint64_t> FindFreeClusters(uint64_t count);
  Status PreallocateMetadata();
  Status WriteRefcountBlocks();
  uint64_t cluster_index(uint64_t host_offset) const { return host_offset >> header.cluster_bits; }

  // --- flush protocol (image_flush.cc) ---
  // Writes caches in protocol order; device_flush=false for cache=unsafe semantics.
  Status FlushMetadata(bool flush_refcounts_even_if_lazy);
  Status GuestFlush();

  // --- mapping and guest I/O (image_io.cc) ---
  Result<L2Entry> LookupEntry(uint64_t guest_offset);
  Result<std::span<uint8_t>> L2TableForRead(uint64_t l1_index);
  Result<uint64_t> L2TableForWrite(uint64_t l1_index);  // returns the table's host offset
  L2Entry GetL2Entry(std::span<const uint8_t> table, uint64_t l2_index) const;
  void SetL2Entry(std::span<uint8_t> table, uint64_t l2_index, const L2Entry& entry) const;
  Status ReadCluster(uint64_t guest_offset, std::span<uint8_t> data);
  Status ReadFromEntry(const L2Entry& entry, uint64_t guest_offset, std::span<uint8_t> data);
  Status ReadBacking(uint64_t guest_offset, std::span<uint8_t> data);
  Status ReadCompressed(const L2Entry& entry, std::vector<uint8_t>& cluster);
  Status WriteCluster(uint64_t guest_offset, std::span<const uint8_t> data);
  // One whole cluster, compressed (engine/compressed_write.cc).
  Status WriteCompressedCluster(uint64_t guest_offset, std::span<const uint8_t> cluster);
  Status ZeroCluster(uint64_t guest_offset, bool unmap, bool discard);
};

// Reads `entries` big-endian 64-bit words at `offset` (an L1 or refcount table).
Result<std::vector<uint64_t>> ReadTable(BlockDevice& device, uint64_t offset, uint64_t entries,
                                        const char* what);

// Reads a whole file as a raw guest disk (a raw backing file).
std::unique_ptr<GuestReader> MakeRawReader(std::unique_ptr<BlockDevice> device);

}  // namespace crashsim
