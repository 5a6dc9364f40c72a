// The on-disk refcounts as QEMU's qcow2_get_refcount sees them: the refcount table read once
// (at most 8 MiB, QEMU's limit, checked by the header decoder), refcount blocks read on demand
// through a small write-back cache. A missing table entry or one past the table means refcount
// 0; an unaligned refcount block offset is an error ("Can't get refcount"). Set() changes an
// entry in an existing block; Flush() writes the dirty blocks and flushes the device, which is
// the only way a refcount change made by the repair becomes durable. The comparison reads a
// block at a time (BlockData); the last block looked up is remembered, and a lookup in it is
// inline (GetCached), so a scan over a table costs one map lookup per block, not per cluster.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <vector>

#include "engine/check/check_context.h"
#include "engine/check/check_memo.h"

namespace crashsim::check {

class RefcountReader {
 public:
  // Reads the refcount table named by ctx.header (zero-filled past EOF, as QEMU reads it).
  Status Load(Context& ctx);

  uint64_t table_entries() const { return table_->entries.size(); }
  uint64_t table_entry(uint64_t index) const { return table_->entries[index]; }
  // Indexes of the entries that are not 0, increasing.
  const std::vector<uint32_t>& nonzero_entries() const { return table_->nonzero; }

  Result<uint64_t> Get(Context& ctx, uint64_t cluster);
  // Get for a cluster of the block looked up last, inline (nearly every lookup of a scan over
  // a table); nullopt for a cluster of any other block.
  std::optional<uint64_t> GetCached(const Context& ctx, uint64_t cluster) const {
    if ((cluster >> BlockEntriesBits(ctx)) != last_index_) return std::nullopt;
    if (last_absent_) return uint64_t{0};
    return GetRefcountEntry(std::span(last_block_->data(), ctx.cluster_size()),
                            IndexInBlock(ctx, cluster), ctx.geo.refcount_order);
  }
  // The refcount block holding `cluster`'s refcount (cluster_size bytes), or nullptr when the
  // table names none (refcounts 0). Valid until a lookup in another block evicts it.
  Result<const uint8_t*> BlockData(Context& ctx, uint64_t cluster);
  // Sets the refcount of `cluster`, whose refcount block must exist.
  Status Set(Context& ctx, uint64_t cluster, uint64_t value);
  // Writes every dirty block back, then flushes the device.
  Status Flush(Context& ctx);

 private:
  // A block's bytes: shared with the memo until the repair changes them, then its own copy
  // (the shared bytes stay alive with the block, so a pointer BlockData gave stays valid).
  struct Block {
    std::shared_ptr<const std::vector<uint8_t>> shared;
    std::vector<uint8_t> own;
    bool owns = false;
    bool dirty = false;
    const uint8_t* data() const { return owns ? own.data() : shared->data(); }
    uint8_t* mutable_data() {
      if (!owns) {
        own = *shared;
        owns = true;
      }
      return own.data();
    }
  };
  // log2 of the entries in one refcount block: cluster_bits + 3 - refcount_order.
  static uint32_t BlockEntriesBits(const Context& ctx) {
    return ctx.geo.cluster_bits + 3 - ctx.geo.refcount_order;
  }
  static uint64_t IndexInBlock(const Context& ctx, uint64_t cluster) {
    return cluster & ((uint64_t{1} << BlockEntriesBits(ctx)) - 1);
  }
  Result<Block*> BlockFor(Context& ctx, uint64_t cluster, bool* absent);
  Status WriteBack(Context& ctx, uint64_t offset, Block& block);
  Block* Remember(uint64_t index, Block* block, bool absent) {
    last_index_ = index;
    last_block_ = block;
    last_absent_ = absent;
    return block;
  }

  std::shared_ptr<const MemoRefcountTable> table_ = std::make_shared<const MemoRefcountTable>();
  std::map<uint64_t, Block> cache_;  // by refcount block offset

  // The last BlockFor answer (map nodes are stable until erased). Cleared by Load and eviction.
  uint64_t last_index_ = UINT64_MAX;
  Block* last_block_ = nullptr;
  bool last_absent_ = false;
};

}  // namespace crashsim::check
