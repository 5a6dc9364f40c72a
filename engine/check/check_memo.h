// What the checker computed from bytes it is likely to meet again. A crash-simulation run checks
// thousands of images that differ from one another in a few sectors; the checker asks the device
// to name the bytes of each table it is about to read (BlockDevice::NameContent) and, when a
// table with the same name was seen before, reuses what it derived from it instead of reading
// and walking it again. Only the work of tables that changed is redone.
//
// What is kept is chosen so that reusing it cannot change a report:
//  - an L2 table walk only when the walk found nothing to report or repair: then it is exactly
//    the references it counted, in order, and the allocation tally, and it holds for any file
//    at least as long as its last reference reaches (so past-EOF verdicts cannot differ);
//  - the COPIED check's view of an active L2 table: its normal and preallocated entries;
//  - a decoded refcount table, and a refcount block's bytes (copied before the repair changes
//    them).
// Replaying a kept walk calls the reference counter exactly as the walk did, so overlaps and
// overflows are found and named as before. A memo is used by one thread at a time; its memory
// is bounded (oldest entries go first) and it only ever costs hits, never correctness.
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <unordered_map>
#include <utility>
#include <vector>

#include "engine/block_device.h"

namespace crashsim::check {

struct MemoL2Walk {
  struct Reference {
    uint64_t offset;
    uint64_t size;  // 0: one data cluster at `offset`
  };
  uint64_t min_file_size = 0;         // valid for files at least this long
  std::vector<Reference> references;  // data clusters and compressed spans, in entry order
  uint64_t allocated = 0;
  uint64_t fragmented = 0;
  uint64_t compressed = 0;
};

struct MemoCopiedEntries {
  std::vector<std::pair<uint32_t, uint64_t>> entries;  // (index, raw entry) of normal/zero-alloc
};

struct MemoRefcountTable {
  std::vector<uint64_t> entries;  // raw, host byte order
  std::vector<uint32_t> nonzero;  // indexes of entries that are not 0
};

struct CheckMemoStats {
  uint64_t hits = 0;
  uint64_t misses = 0;
  uint64_t bytes = 0;  // held now
};

class CheckMemo {
 public:
  explicit CheckMemo(uint64_t byte_budget = uint64_t{64} << 20) : budget_(byte_budget) {}

  // Keys: the bytes' name plus what else the kept result depends on (cluster size, entry width).
  enum class Kind : uint8_t { kL2Walk, kCopiedEntries, kRefcountTable, kRefcountBlock };
  struct Key {
    ContentName name;
    uint64_t shape = 0;
    Kind kind = Kind::kL2Walk;
    bool operator==(const Key&) const = default;
  };

  std::shared_ptr<const MemoL2Walk> FindWalk(const Key& key) { return Find<MemoL2Walk>(key); }
  std::shared_ptr<const MemoL2Walk> PutWalk(const Key& key, MemoL2Walk value) {
    return Put(key, std::move(value));
  }
  std::shared_ptr<const MemoCopiedEntries> FindCopied(const Key& key) {
    return Find<MemoCopiedEntries>(key);
  }
  std::shared_ptr<const MemoCopiedEntries> PutCopied(const Key& key, MemoCopiedEntries value) {
    return Put(key, std::move(value));
  }
  std::shared_ptr<const MemoRefcountTable> FindRefcountTable(const Key& key) {
    return Find<MemoRefcountTable>(key);
  }
  std::shared_ptr<const MemoRefcountTable> PutRefcountTable(const Key& key,
                                                            MemoRefcountTable value) {
    return Put(key, std::move(value));
  }
  std::shared_ptr<const std::vector<uint8_t>> FindBlock(const Key& key) {
    return Find<std::vector<uint8_t>>(key);
  }
  std::shared_ptr<const std::vector<uint8_t>> PutBlock(const Key& key, std::vector<uint8_t> value) {
    return Put(key, std::move(value));
  }

  const CheckMemoStats& stats() const { return stats_; }

 private:
  struct KeyHash {
    size_t operator()(const Key& k) const {
      return static_cast<size_t>(k.name.lo ^ (k.name.hi >> 1) ^ (k.shape * 0x9e3779b97f4a7c15ULL) ^
                                 static_cast<uint64_t>(k.kind));
    }
  };
  struct Entry {
    std::shared_ptr<const void> value;
    uint64_t bytes = 0;
  };

  template <typename T>
  std::shared_ptr<const T> Find(const Key& key) {
    auto it = entries_.find(key);
    if (it == entries_.end()) {
      ++stats_.misses;
      return nullptr;
    }
    ++stats_.hits;
    return std::static_pointer_cast<const T>(it->second.value);
  }
  template <typename T>
  std::shared_ptr<const T> Put(const Key& key, T value);
  static uint64_t SizeOf(const MemoL2Walk& v) { return sizeof(v) + v.references.size() * 16; }
  static uint64_t SizeOf(const MemoCopiedEntries& v) { return sizeof(v) + v.entries.size() * 16; }
  static uint64_t SizeOf(const MemoRefcountTable& v) {
    return sizeof(v) + v.entries.size() * 8 + v.nonzero.size() * 4;
  }
  static uint64_t SizeOf(const std::vector<uint8_t>& v) { return sizeof(v) + v.size(); }

  uint64_t budget_;
  std::unordered_map<Key, Entry, KeyHash> entries_;
  std::deque<Key> order_;  // insertion order, for eviction
  CheckMemoStats stats_;
};

template <typename T>
std::shared_ptr<const T> CheckMemo::Put(const Key& key, T value) {
  const uint64_t bytes = SizeOf(value) + 64;  // with the map node
  auto shared = std::make_shared<const T>(std::move(value));
  auto [it, fresh] = entries_.try_emplace(key, Entry{shared, bytes});
  if (!fresh) return std::static_pointer_cast<const T>(it->second.value);
  order_.push_back(key);
  stats_.bytes += bytes;
  while (stats_.bytes > budget_ && order_.size() > 1) {
    auto victim = entries_.find(order_.front());
    stats_.bytes -= victim->second.bytes;
    entries_.erase(victim);
    order_.pop_front();
  }
  return shared;
}

}  // namespace crashsim::check
