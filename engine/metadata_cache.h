// A write-back cache of whole metadata clusters (L2 tables or refcount blocks), keyed by host
// offset. Dirty entries stay until the owner writes them back at a flush point chosen by the
// commit protocol (engine/protocol.h); only clean entries are evicted, least recently used
// first, so the cache never decides on its own when metadata reaches the disk.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <span>
#include <vector>

#include "engine/block_device.h"
#include "engine/protocol.h"
#include "engine/status.h"

namespace crashsim {

class MetadataCache {
 public:
  // Write-backs go through `writer` (the owner's tagged device write), reads to the device.
  using Writer = std::function<Status(uint64_t offset, std::span<const uint8_t> data)>;
  MetadataCache(BlockDevice& device, uint64_t cluster_size, size_t max_clean_entries, IoTag tag,
                Writer writer)
      : device_(device),
        cluster_size_(cluster_size),
        max_clean_(max_clean_entries),
        tag_(tag),
        writer_(std::move(writer)) {}

  // The cluster at `offset`, read from the device on a miss. The span stays valid until the
  // next call that may insert or evict (Get, Insert).
  Result<std::span<uint8_t>> Get(uint64_t offset);
  // Puts a cluster's contents in the cache without reading it (a freshly built table).
  std::span<uint8_t> Insert(uint64_t offset, std::vector<uint8_t> contents, bool dirty);
  void MarkDirty(uint64_t offset);
  bool Contains(uint64_t offset) const { return entries_.count(offset) != 0; }
  bool HasDirty() const { return dirty_count_ > 0; }
  // Writes every dirty entry (in offset order, for determinism) and marks it clean.
  Status WriteBackAll();
  // Forgets an entry (its cluster was freed); dirty contents are dropped.
  void Drop(uint64_t offset);

 private:
  struct Entry {
    std::vector<uint8_t> data;
    bool dirty = false;
    uint64_t last_use = 0;
  };
  void EvictClean();

  BlockDevice& device_;
  uint64_t cluster_size_;
  size_t max_clean_;
  IoTag tag_;
  Writer writer_;
  std::map<uint64_t, Entry> entries_;
  uint64_t clock_ = 0;
  size_t dirty_count_ = 0;
};

}  // namespace crashsim
