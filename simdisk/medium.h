// Medium: the durable medium of the simulated disk, and the copy-on-write media crash states are
// materialised on. It is sparse and persistent: bytes live in fixed 4 KiB chunks, chunks are
// grouped in pages of 256 (1 MiB of the medium), and both are held by shared_ptr. Copying a
// Medium copies only its page table (one pointer per MiB up to the highest written page), so a
// copy costs O(size / 1 MiB) pointers however much was written; a write then clones the one
// page and the one chunk it changes if they are shared. A 1 GiB device costs memory only for
// the chunks written, and thousands of media that differ in a few chunks share the rest.
//
// Identity: a chunk or page that two media share holds the same bytes in both (a shared chunk
// is never written in place), so comparing pointers finds where two media derived from one
// another can differ without reading a byte (ForEachChunkNotSharedWith). Every chunk also
// carries a version number, unique for the life of the process and renewed on every write, so
// `ContentToken` can name the bytes of a range for memoisation without hashing them.
//
// Durability: a Medium has no volatile cache. Every accepted write is durable, Flush() does
// nothing. The volatile layers are modelled above it (write_cache.h) from the recording.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "engine/block_device.h"

namespace crashsim::simdisk {

class Medium final : public BlockDevice {
 public:
  static constexpr uint64_t kChunkSize = 4096;
  static constexpr uint64_t kChunksPerPage = 256;
  static constexpr uint64_t kPageSize = kChunkSize * kChunksPerPage;

  explicit Medium(uint64_t size = 0) : size_(size) {}
  // A writable copy of `parent` that shares every chunk with it; own_chunk_count() and
  // bytes_copied() then count only what the copy changed.
  static std::unique_ptr<Medium> Overlay(std::shared_ptr<const Medium> parent);

  Medium(const Medium&) = default;  // shares pages and chunks; each side clones what it writes
  Medium& operator=(const Medium&) = default;

  Status Read(uint64_t offset, std::span<uint8_t> data) override;
  Status Write(uint64_t offset, std::span<const uint8_t> data, WriteOptions options) override;
  Status Flush() override { return Status::Ok(); }
  Result<uint64_t> Size() override { return size_; }
  Status Resize(uint64_t size) override;
  std::string Name() const override { return "simdisk-medium"; }

  // Infallible forms for simdisk's own use; ReadAt requires the range to be inside size().
  void ReadAt(uint64_t offset, std::span<uint8_t> data) const;
  void WriteAt(uint64_t offset, std::span<const uint8_t> data);  // grows the medium if needed
  void SetSize(uint64_t size);
  uint64_t size() const { return size_; }

  // Chunks this medium holds that its overlay parent does not share (all chunks held, for a
  // medium that is no overlay): the memory the medium costs beyond its parent.
  uint64_t own_chunk_count() const;
  // Bytes copied into this medium so far: written payload plus chunks cloned.
  uint64_t bytes_copied() const { return bytes_copied_; }
  // A digest of the contents (size and bytes), independent of how chunks are shared.
  uint64_t Digest() const;

  // Calls fn(chunk_index) for every chunk index below max(size(), other.size()) whose bytes may
  // differ between this medium and `other` (they do not share the chunk). Costs one comparison
  // per page plus one per chunk of the pages they do not share.
  void ForEachChunkNotSharedWith(const Medium& other,
                                 const std::function<void(uint64_t chunk_index)>& fn) const;
  // Names the bytes of [offset, offset + length), which must lie inside size(), as this medium
  // holds them now: equal tokens mean equal bytes. Costs one lookup per chunk of the range.
  ContentName ContentToken(uint64_t offset, uint64_t length) const;
  // BlockDevice's optional name: the token, for ranges inside the medium.
  std::optional<ContentName> NameContent(uint64_t offset, uint64_t length) override {
    if (offset > size_ || length > size_ - offset) return std::nullopt;
    return ContentToken(offset, length);
  }

 private:
  struct Chunk {
    std::array<uint8_t, kChunkSize> bytes;
    uint64_t version = 0;
  };
  struct Page {
    std::array<std::shared_ptr<Chunk>, kChunksPerPage> chunks;
  };

  const Chunk* FindChunk(uint64_t chunk_index) const;
  Chunk& MutableChunk(uint64_t chunk_index, bool overwrite_whole);
  void DropChunksFrom(uint64_t chunk_index);

  std::vector<std::shared_ptr<Page>> pages_;  // up to the highest page ever written
  std::shared_ptr<const Medium> parent_;      // Overlay's parent, kept for own_chunk_count()
  uint64_t size_ = 0;
  uint64_t bytes_copied_ = 0;
};

}  // namespace crashsim::simdisk
