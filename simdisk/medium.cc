#include "simdisk/medium.h"

#include <algorithm>
#include <cstring>
#include <fmt/format.h>

#include "engine/coding.h"
#include "simdisk/hash.h"

namespace crashsim::simdisk {

std::unique_ptr<Medium> Medium::Overlay(std::shared_ptr<const Medium> parent) {
  INVARIANT(parent != nullptr);
  auto overlay = std::make_unique<Medium>(parent->size());
  overlay->parent_limit_ = parent->size();
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

void Medium::ReadAt(uint64_t offset, std::span<uint8_t> data) const {
  INVARIANT(offset <= size_ && data.size() <= size_ - offset);
  size_t done = 0;
  while (done < data.size()) {
    const uint64_t pos = offset + done;
    const uint64_t chunk_index = pos / kChunkSize;
    const uint64_t in_chunk = pos % kChunkSize;
    const size_t n = static_cast<size_t>(std::min<uint64_t>(kChunkSize - in_chunk, data.size() - done));
    uint8_t* out = data.data() + done;
    auto it = chunks_.find(chunk_index);
    if (it != chunks_.end()) {
      std::memcpy(out, it->second->data() + in_chunk, n);
    } else if (parent_ != nullptr && pos < parent_limit_) {
      const size_t from_parent = static_cast<size_t>(std::min<uint64_t>(n, parent_limit_ - pos));
      parent_->ReadAt(pos, {out, from_parent});
      std::memset(out + from_parent, 0, n - from_parent);
    } else {
      std::memset(out, 0, n);
    }
    done += n;
  }
}

Medium::Chunk& Medium::MutableChunk(uint64_t chunk_index, bool overwrite_whole) {
  auto it = chunks_.find(chunk_index);
  if (it != chunks_.end()) {
    if (it->second.use_count() > 1) {  // shared with a copy of this Medium: clone before writing
      it->second = std::make_shared<Chunk>(*it->second);
      bytes_copied_ += kChunkSize;
    }
    return *it->second;
  }
  auto chunk = std::make_shared<Chunk>();
  const uint64_t base = chunk_index * kChunkSize;
  if (overwrite_whole) {
    // The caller overwrites every byte; nothing to fault in.
  } else if (parent_ != nullptr && base < parent_limit_) {
    const uint64_t n = std::min<uint64_t>(kChunkSize, parent_limit_ - base);
    parent_->ReadAt(base, {chunk->data(), static_cast<size_t>(n)});
    std::memset(chunk->data() + n, 0, static_cast<size_t>(kChunkSize - n));
    bytes_copied_ += kChunkSize;
  } else {
    chunk->fill(0);
  }
  return *chunks_.emplace(chunk_index, std::move(chunk)).first->second;
}

void Medium::WriteAt(uint64_t offset, std::span<const uint8_t> data) {
  if (offset + data.size() > size_) SetSize(offset + data.size());
  size_t done = 0;
  while (done < data.size()) {
    const uint64_t pos = offset + done;
    const uint64_t in_chunk = pos % kChunkSize;
    const size_t n = static_cast<size_t>(std::min<uint64_t>(kChunkSize - in_chunk, data.size() - done));
    Chunk& chunk = MutableChunk(pos / kChunkSize, n == kChunkSize);
    std::memcpy(chunk.data() + in_chunk, data.data() + done, n);
    bytes_copied_ += n;
    done += n;
  }
}

void Medium::SetSize(uint64_t size) {
  if (size < size_) {
    // Drop whole chunks past the end and zero the tail of the last one, so that a later
    // extension reads zeros as the BlockDevice contract says.
    chunks_.erase(chunks_.lower_bound(DivRoundUp(size, kChunkSize)), chunks_.end());
    if (size % kChunkSize != 0) {
      auto it = chunks_.find(size / kChunkSize);
      if (it != chunks_.end()) {
        Chunk& chunk = MutableChunk(size / kChunkSize, false);
        std::memset(chunk.data() + size % kChunkSize, 0, kChunkSize - size % kChunkSize);
      }
    }
    parent_limit_ = std::min(parent_limit_, size);
  }
  size_ = size;
}

void Medium::CollectChunkIndices(uint64_t limit, std::set<uint64_t>& out) const {
  limit = std::min(limit, size_);
  for (const auto& [index, chunk] : chunks_) {
    if (index * kChunkSize < limit) out.insert(index);
  }
  if (parent_ != nullptr) parent_->CollectChunkIndices(std::min(limit, parent_limit_), out);
}

uint64_t Medium::Digest() const {
  std::set<uint64_t> indices;
  CollectChunkIndices(size_, indices);
  uint64_t h = HashCombine(0x5eed, size_);
  Chunk buffer;
  for (uint64_t index : indices) {
    const uint64_t base = index * kChunkSize;
    const size_t n = static_cast<size_t>(std::min<uint64_t>(kChunkSize, size_ - base));
    ReadAt(base, {buffer.data(), n});
    if (std::all_of(buffer.begin(), buffer.begin() + static_cast<std::ptrdiff_t>(n),
                    [](uint8_t b) { return b == 0; })) {
      continue;  // an all-zero chunk reads the same as an absent one
    }
    h = HashCombine(h, index);
    h = HashCombine(h, HashBytes({buffer.data(), n}));
  }
  return h;
}

}  // namespace crashsim::simdisk
