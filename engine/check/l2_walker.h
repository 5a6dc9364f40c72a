// Walks one L1 table and its L2 tables (QEMU's check_refcounts_l1/_l2): +1 in the reference
// counter for the L1 table, each L2 table and each data cluster or compressed span, checking
// reserved bits, alignment, COPIED on compressed entries, subcluster bitmaps and references past
// EOF on the way. The L1 table is streamed a chunk at a time, so a huge l1_size costs reads of
// what the file holds, not memory.
//
// When fixing errors it also repairs what QEMU cannot: reserved bits are cleared; an entry that
// cannot be trusted (unaligned, past EOF, an L2 table inside other metadata, an invalid
// subcluster bitmap) is dropped and the guest range reported. A dropped L2 entry becomes a zero
// cluster (v3) so it reads as zeros instead of falling through to a backing file; a dropped L1
// entry becomes 0. Each changed table is written and flushed before the walk moves on, so the
// removed reference is durable before any refcount is lowered (rule R3).
#pragma once

#include <cstdint>
#include <string>

#include "engine/check/check_context.h"
#include "engine/check/metadata_map.h"
#include "engine/check/reference_counter.h"

namespace crashsim::check {

// L1 tables are read this many bytes at a time: a huge l1_size costs no memory.
inline constexpr uint64_t kL1ChunkBytes = 64 * 1024;

struct L1Walk {
  uint64_t l1_table_offset = 0;
  uint32_t l1_size = 0;
  bool active = false;  // the active table: counts allocation and fragmentation
  std::string name;     // "active" or "snapshot 1"
};

// Fails only when the walk cannot go on (an I/O error), after counting a check error.
Status WalkL1(Context& ctx, ReferenceCounter& counter, const MetadataMap& metadata,
              const L1Walk& walk);

}  // namespace crashsim::check
