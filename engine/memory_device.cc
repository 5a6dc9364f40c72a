#include "engine/memory_device.h"

#include <fmt/format.h>

#include <algorithm>

namespace crashsim {

Status MemoryDevice::Read(uint64_t offset, std::span<uint8_t> data) {
  if (offset > bytes_.size() || data.size() > bytes_.size() - offset) {
    return Status::IoError(fmt::format("memory device: read of {} bytes at {:#x} past the end ({})",
                                       data.size(), offset, bytes_.size()));
  }
  std::copy_n(bytes_.begin() + static_cast<std::ptrdiff_t>(offset), data.size(), data.begin());
  return Status::Ok();
}

Status MemoryDevice::Write(uint64_t offset, std::span<const uint8_t> data, WriteOptions) {
  if (offset + data.size() > bytes_.size()) bytes_.resize(offset + data.size());
  std::copy(data.begin(), data.end(), bytes_.begin() + static_cast<std::ptrdiff_t>(offset));
  return Status::Ok();
}

Status MemoryDevice::Resize(uint64_t size) {
  bytes_.resize(size);
  return Status::Ok();
}

}  // namespace crashsim
