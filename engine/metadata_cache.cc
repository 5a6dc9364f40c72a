#include "engine/metadata_cache.h"

#include <fmt/format.h>

namespace crashsim {

Result<std::span<uint8_t>> MetadataCache::Get(uint64_t offset) {
  auto it = entries_.find(offset);
  if (it == entries_.end()) {
    std::vector<uint8_t> data(cluster_size_);
    Status st = device_.Read(offset, data);
    if (!st.ok()) {
      return st.WithContext(fmt::format("reading {} at {:#x}", IoTagName(tag_), offset));
    }
    EvictClean();
    it = entries_.emplace(offset, Entry{std::move(data), false, 0}).first;
  }
  it->second.last_use = ++clock_;
  return std::span<uint8_t>(it->second.data);
}

std::span<uint8_t> MetadataCache::Insert(uint64_t offset, std::vector<uint8_t> contents,
                                         bool dirty) {
  INVARIANT(contents.size() == cluster_size_);
  Drop(offset);
  EvictClean();
  auto it = entries_.emplace(offset, Entry{std::move(contents), dirty, ++clock_}).first;
  if (dirty) ++dirty_count_;
  return std::span<uint8_t>(it->second.data);
}

void MetadataCache::MarkDirty(uint64_t offset) {
  auto it = entries_.find(offset);
  INVARIANT(it != entries_.end());
  if (!it->second.dirty) {
    it->second.dirty = true;
    ++dirty_count_;
  }
}

Status MetadataCache::WriteBackAll() {
  if (dirty_count_ == 0) return Status::Ok();
  for (auto& [offset, entry] : entries_) {
    if (!entry.dirty) continue;
    RETURN_IF_ERROR(writer_(offset, entry.data));
    entry.dirty = false;
    --dirty_count_;
  }
  return Status::Ok();
}

void MetadataCache::Drop(uint64_t offset) {
  auto it = entries_.find(offset);
  if (it == entries_.end()) return;
  if (it->second.dirty) --dirty_count_;
  entries_.erase(it);
}

void MetadataCache::EvictClean() {
  while (entries_.size() - dirty_count_ >= max_clean_ && entries_.size() > dirty_count_) {
    auto victim = entries_.end();
    for (auto it = entries_.begin(); it != entries_.end(); ++it) {
      if (!it->second.dirty &&
          (victim == entries_.end() || it->second.last_use < victim->second.last_use)) {
        victim = it;
      }
    }
    if (victim == entries_.end()) return;
    entries_.erase(victim);
  }
}

}  // namespace crashsim
