#include "simdisk/medium.h"

#include <fmt/format.h>

#include <algorithm>
#include <atomic>
#include <cstring>

#include "engine/all_zero.h"
#include "engine/coding.h"
#include "simdisk/hash.h"

namespace crashsim::simdisk {

namespace {

// Chunk versions only name contents for memoisation (equal version, equal bytes); they never
// decide what a simulation does, so a process-wide counter is safe to share between threads.
std::atomic<uint64_t> g_next_chunk_version{1};

uint64_t NewVersion() { return g_next_chunk_version.fetch_add(1, std::memory_order_relaxed); }

}  // namespace

std::unique_ptr<Medium> Medium::Overlay(std::shared_ptr<const Medium> parent) {
  INVARIANT(parent != nullptr);
  auto overlay = std::make_unique<Medium>(*parent);
  overlay->bytes_copied_ = 0;
  overlay->parent_ = std::move(parent);
  return overlay;
}

Status Medium::Read(uint64_t offset, std::span<uint8_t> data) {
  if (offset > size_ || data.size() > size_ - offset) {
    return Status::IoError(fmt::format("simdisk: read of {} bytes at {:#x} past the end ({:#x})",
                                       data.size(), offset, size_));
  }
  ReadAt(offset, data);
  return Status::Ok();
}

Status Medium::Write(uint64_t offset, std::span<const uint8_t> data, WriteOptions) {
  WriteAt(offset, data);
  return Status::Ok();
}

Status Medium::Resize(uint64_t size) {
  SetSize(size);
  return Status::Ok();
}

const Medium::Chunk* Medium::FindChunk(uint64_t chunk_index) const {
  const uint64_t page = chunk_index / kChunksPerPage;
  if (page >= pages_.size() || pages_[page] == nullptr) return nullptr;
  return pages_[page]->chunks[chunk_index % kChunksPerPage].get();
}

void Medium::ReadAt(uint64_t offset, std::span<uint8_t> data) const {
  INVARIANT(offset <= size_ && data.size() <= size_ - offset);
  size_t done = 0;
  while (done < data.size()) {
    const uint64_t pos = offset + done;
    const uint64_t in_chunk = pos % kChunkSize;
    const size_t n =
        static_cast<size_t>(std::min<uint64_t>(kChunkSize - in_chunk, data.size() - done));
    if (const Chunk* chunk = FindChunk(pos / kChunkSize)) {
      std::memcpy(data.data() + done, chunk->bytes.data() + in_chunk, n);
    } else {
      std::memset(data.data() + done, 0, n);
    }
    done += n;
  }
}

Medium::Chunk& Medium::MutableChunk(uint64_t chunk_index, bool overwrite_whole) {
  const uint64_t page_index = chunk_index / kChunksPerPage;
  if (page_index >= pages_.size()) pages_.resize(page_index + 1);
  std::shared_ptr<Page>& page = pages_[page_index];
  if (page == nullptr) {
    page = std::make_shared<Page>();
  } else if (page.use_count() > 1) {  // shared with a copy of this Medium: clone the table
    page = std::make_shared<Page>(*page);
  }
  std::shared_ptr<Chunk>& chunk = page->chunks[chunk_index % kChunksPerPage];
  if (chunk == nullptr) {
    chunk = std::make_shared_for_overwrite<Chunk>();  // zeroed only if not overwritten whole
    if (!overwrite_whole) chunk->bytes.fill(0);
  } else if (chunk.use_count() > 1) {  // shared: clone before writing
    chunk = std::make_shared<Chunk>(*chunk);
    bytes_copied_ += kChunkSize;
  }
  chunk->version = NewVersion();  // written in place or fresh: its old name no longer holds
  return *chunk;
}

void Medium::WriteAt(uint64_t offset, std::span<const uint8_t> data) {
  if (offset + data.size() > size_) SetSize(offset + data.size());
  size_t done = 0;
  while (done < data.size()) {
    const uint64_t pos = offset + done;
    const uint64_t in_chunk = pos % kChunkSize;
    const size_t n =
        static_cast<size_t>(std::min<uint64_t>(kChunkSize - in_chunk, data.size() - done));
    Chunk& chunk = MutableChunk(pos / kChunkSize, n == kChunkSize);
    std::memcpy(chunk.bytes.data() + in_chunk, data.data() + done, n);
    bytes_copied_ += n;
    done += n;
  }
}

void Medium::DropChunksFrom(uint64_t chunk_index) {
  const uint64_t first_page = DivRoundUp(chunk_index, kChunksPerPage);
  if (first_page < pages_.size()) pages_.resize(first_page);
  const uint64_t page_index = chunk_index / kChunksPerPage;
  if (chunk_index % kChunksPerPage == 0 || page_index >= pages_.size() ||
      pages_[page_index] == nullptr) {
    return;
  }
  std::shared_ptr<Page>& page = pages_[page_index];
  if (page.use_count() > 1) page = std::make_shared<Page>(*page);
  for (uint64_t i = chunk_index % kChunksPerPage; i < kChunksPerPage; ++i) page->chunks[i].reset();
}

void Medium::SetSize(uint64_t size) {
  if (size < size_) {
    // Drop whole chunks past the end and zero the tail of the last one, so that a later
    // extension reads zeros as the BlockDevice contract says.
    DropChunksFrom(DivRoundUp(size, kChunkSize));
    if (size % kChunkSize != 0 && FindChunk(size / kChunkSize) != nullptr) {
      Chunk& chunk = MutableChunk(size / kChunkSize, false);
      std::memset(chunk.bytes.data() + size % kChunkSize, 0, kChunkSize - size % kChunkSize);
    }
  }
  size_ = size;
}

uint64_t Medium::own_chunk_count() const {
  uint64_t count = 0;
  if (parent_ != nullptr) {
    ForEachChunkNotSharedWith(*parent_,
                              [&](uint64_t index) { count += FindChunk(index) != nullptr; });
    return count;
  }
  for (const auto& page : pages_) {
    if (page == nullptr) continue;
    for (const auto& chunk : page->chunks) count += chunk != nullptr;
  }
  return count;
}

void Medium::ForEachChunkNotSharedWith(const Medium& other,
                                       const std::function<void(uint64_t)>& fn) const {
  const uint64_t limit = DivRoundUp(std::max(size_, other.size_), kChunkSize);
  const size_t pages = std::max(pages_.size(), other.pages_.size());
  for (size_t p = 0; p < pages; ++p) {
    const Page* mine = p < pages_.size() ? pages_[p].get() : nullptr;
    const Page* theirs = p < other.pages_.size() ? other.pages_[p].get() : nullptr;
    if (mine == theirs) continue;
    for (uint64_t i = 0; i < kChunksPerPage; ++i) {
      const uint64_t index = p * kChunksPerPage + i;
      if (index >= limit) return;
      const Chunk* a = mine != nullptr ? mine->chunks[i].get() : nullptr;
      const Chunk* b = theirs != nullptr ? theirs->chunks[i].get() : nullptr;
      if (a != b) fn(index);
    }
  }
}

ContentName Medium::ContentToken(uint64_t offset, uint64_t length) const {
  INVARIANT(offset <= size_ && length <= size_ - offset);
  // Chunks past the end are dropped when a medium shrinks, so inside the size an absent chunk is
  // zeros and the versions name every byte; the size itself is not part of the name. Two
  // independent hashes of (offset, length, versions) make the name 128 bits.
  uint64_t lo = HashCombine(HashCombine(0x70c3, offset), length);
  uint64_t hi = HashCombine(HashCombine(0x9a11, length), offset);
  if (length == 0) return {lo, hi};
  for (uint64_t c = offset / kChunkSize; c <= (offset + length - 1) / kChunkSize; ++c) {
    const Chunk* chunk = FindChunk(c);
    const uint64_t version = chunk != nullptr ? chunk->version : 0;
    lo = HashCombine(lo, version);
    hi = Mix64(hi ^ (version * 0x9e3779b97f4a7c15ULL + c));
  }
  return {lo, hi};
}

uint64_t Medium::Digest() const {
  uint64_t h = HashCombine(0x5eed, size_);
  for (size_t p = 0; p < pages_.size(); ++p) {
    if (pages_[p] == nullptr) continue;
    for (uint64_t i = 0; i < kChunksPerPage; ++i) {
      const Chunk* chunk = pages_[p]->chunks[i].get();
      const uint64_t index = p * kChunksPerPage + i;
      const uint64_t base = index * kChunkSize;
      if (chunk == nullptr || base >= size_) continue;
      const size_t n = static_cast<size_t>(std::min<uint64_t>(kChunkSize, size_ - base));
      const auto bytes = std::span<const uint8_t>(chunk->bytes.data(), n);
      if (AllZero(bytes)) {
        continue;  // an all-zero chunk reads the same as an absent one
      }
      h = HashCombine(h, index);
      h = HashCombine(h, HashBytes(bytes));
    }
  }
  return h;
}

}  // namespace crashsim::simdisk
