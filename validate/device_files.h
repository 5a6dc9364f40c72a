// Moving a simulated device's bytes to and from the files a target works on: all-zero chunks
// stay holes, so a large sparse guest disk costs what it holds.
#pragma once

#include <memory>
#include <span>
#include <string>

#include "engine/block_device.h"
#include "engine/status.h"
#include "simdisk/medium.h"

namespace crashsim::validate {

// Writes a device's bytes to a scratch file, rewritten in place for every crash state.
Status SaveDevice(BlockDevice& device, const std::string& path);
// Writes a device's bytes to a finding's file, which appears only whole.
Status SaveDeviceAsOutput(BlockDevice& device, const std::string& path);
Result<std::unique_ptr<simdisk::Medium>> LoadFile(const std::string& path);
Status WriteBytes(const std::string& path, std::span<const uint8_t> data);

}  // namespace crashsim::validate
