// Compressed clusters: raw deflate (no zlib header, as QEMU writes) and zstd.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "engine/format/header.h"
#include "engine/status.h"

namespace crashsim {

// Decompresses `input` until `output` (one cluster) is full. Extra input is ignored, as the
// compressed length in an L2 entry is rounded up to sectors.
Status DecompressCluster(CompressionType type, std::span<const uint8_t> input,
                         std::span<uint8_t> output);

// Compresses one cluster; returns an empty vector if the result would not be smaller.
Result<std::vector<uint8_t>> CompressCluster(CompressionType type, std::span<const uint8_t> input);

}  // namespace crashsim
