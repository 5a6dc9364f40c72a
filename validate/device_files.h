// Moving a simulated device's bytes to and from the files a target works on: all-zero chunks
// stay holes, so a large sparse guest disk costs what it holds.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "engine/block_device.h"
#include "engine/status.h"
#include "simdisk/medium.h"

namespace crashsim::validate {

// Writes a device's bytes to a scratch file, rewritten in place for every crash state.
Status SaveDevice(BlockDevice& device, const std::string& path);
// Writes a device's bytes to a finding's file, which appears only whole.
Status SaveDeviceAsOutput(BlockDevice& device, const std::string& path);
Result<std::unique_ptr<simdisk::Medium>> LoadFile(const std::string& path);
// The [begin, end) byte ranges of a file that may hold data (SEEK_DATA/SEEK_HOLE); the rest are
// holes, which read as zeros. A file system without hole reporting gives the whole file.
Result<std::vector<std::pair<uint64_t, uint64_t>>> DataExtents(const std::string& path);
Status WriteBytes(const std::string& path, std::span<const uint8_t> data);

}  // namespace crashsim::validate
