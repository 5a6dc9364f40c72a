#include "engine/check/device_io.h"

#include <algorithm>

#include "engine/protocol.h"

namespace crashsim::check {

Status ReadZeroFilled(BlockDevice& device, uint64_t file_size, uint64_t offset,
                      std::span<uint8_t> data) {
  uint64_t readable = offset >= file_size ? 0 : std::min<uint64_t>(data.size(), file_size - offset);
  std::fill(data.begin() + static_cast<std::ptrdiff_t>(readable), data.end(), uint8_t{0});
  if (readable == 0) return Status::Ok();
  return device.Read(offset, data.first(readable));
}

Status RepairWrite(BlockDevice& device, uint64_t offset, std::span<const uint8_t> data, IoTag tag) {
  WriteOptions options;
  options.tag = tag;
  options.step = static_cast<uint8_t>(DurableStep::kRepair);
  return device.Write(offset, data, options);
}

Status RepairWriteSync(BlockDevice& device, uint64_t offset, std::span<const uint8_t> data,
                       IoTag tag) {
  RETURN_IF_ERROR(RepairWrite(device, offset, data, tag));
  return device.Flush();
}

}  // namespace crashsim::check
