// An in-memory BlockDevice with no volatile cache: every accepted write is durable. Used by
// unit tests and as the simplest stand-in for a file; simdisk builds the interesting ones.
#pragma once

#include <cstdint>
#include <vector>

#include "engine/block_device.h"

namespace crashsim {

class MemoryDevice : public BlockDevice {
 public:
  MemoryDevice() = default;
  explicit MemoryDevice(std::vector<uint8_t> bytes) : bytes_(std::move(bytes)) {}

  Status Read(uint64_t offset, std::span<uint8_t> data) override;
  Status Write(uint64_t offset, std::span<const uint8_t> data, WriteOptions options) override;
  Status Flush() override { return Status::Ok(); }
  Result<uint64_t> Size() override { return static_cast<uint64_t>(bytes_.size()); }
  Status Resize(uint64_t size) override;
  std::string Name() const override { return "memory"; }

  const std::vector<uint8_t>& bytes() const { return bytes_; }
  std::vector<uint8_t>& mutable_bytes() { return bytes_; }

 private:
  std::vector<uint8_t> bytes_;
};

}  // namespace crashsim
