// Medium: the durable medium of the simulated disk, and the copy-on-write overlay that a crash
// state is materialised on. It is sparse: bytes live in fixed 4 KiB chunks held by shared_ptr,
// so a 1 GiB device costs memory only for the chunks written, and copying a Medium shares every
// chunk until one side writes it (then that side clones the chunk).
//
// An overlay Medium has a frozen parent: a chunk it has not written reads through to the parent,
// so materialising a crash state costs the bytes the state differs by, not the image size.
//
// Durability: a Medium has no volatile cache. Every accepted write is durable, Flush() does
// nothing. The volatile layers are modelled above it (write_cache.h) from the recording.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <span>
#include <string>

#include "engine/block_device.h"

namespace crashsim::simdisk {

class Medium final : public BlockDevice {
 public:
  static constexpr uint64_t kChunkSize = 4096;

  explicit Medium(uint64_t size = 0) : size_(size) {}
  // A writable copy-on-write child of a frozen parent, with the parent's size and contents.
  static std::unique_ptr<Medium> Overlay(std::shared_ptr<const Medium> parent);

  Medium(const Medium&) = default;  // shares chunks; each side clones a chunk when it writes it
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

  // Chunks held by this layer (not its parent): the memory the layer costs.
  uint64_t own_chunk_count() const { return chunks_.size(); }
  // Bytes copied into this layer so far: written payload plus chunks cloned or faulted in.
  uint64_t bytes_copied() const { return bytes_copied_; }
  // A digest of the contents (size and bytes), independent of how chunks are shared or layered.
  uint64_t Digest() const;

 private:
  using Chunk = std::array<uint8_t, kChunkSize>;

  Chunk& MutableChunk(uint64_t chunk_index, bool overwrite_whole);
  void CollectChunkIndices(uint64_t limit, std::set<uint64_t>& out) const;

  std::shared_ptr<const Medium> parent_;
  uint64_t parent_limit_ = 0;  // parent bytes at or past this offset read as zeros
  std::map<uint64_t, std::shared_ptr<Chunk>> chunks_;
  uint64_t size_ = 0;
  uint64_t bytes_copied_ = 0;
};

}  // namespace crashsim::simdisk
