// Device access for the checker. qemu-img check reads through the block layer, which returns
// zeros for bytes past the end of the file; the checker must see the same bytes to reach the
// same verdicts, so every metadata read here zero-fills past EOF instead of failing. Every write
// the repairer issues goes through RepairWrite so it carries an IoTag and DurableStep::kRepair,
// which is what lets simdisk place crash points inside a repair.
#pragma once

#include <cstdint>
#include <span>

#include "engine/block_device.h"

namespace crashsim::check {

// Reads data.size() bytes at offset; the part at or past file_size reads as zeros.
Status ReadZeroFilled(BlockDevice& device, uint64_t file_size, uint64_t offset,
                      std::span<uint8_t> data);

// One repair write (not yet durable).
Status RepairWrite(BlockDevice& device, uint64_t offset, std::span<const uint8_t> data, IoTag tag);

// A repair write followed by a device flush: QEMU's bdrv_pwrite_sync.
Status RepairWriteSync(BlockDevice& device, uint64_t offset, std::span<const uint8_t> data,
                       IoTag tag);

}  // namespace crashsim::check
