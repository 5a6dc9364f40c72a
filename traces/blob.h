// The payload of a version 2 trace's data lines (FORMAT.md): bytes compressed with zstd and
// written as canonical, padded base64, so a trace stays one text file that diff and grep read.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace crashsim::traces {

std::string EncodeBlob(std::span<const uint8_t> raw);
// Decodes one data line's payload, which must hold exactly `length` bytes; nullopt with `*why`
// set for anything else (non-canonical base64, not a zstd frame, a different length).
std::optional<std::vector<uint8_t>> DecodeBlob(std::string_view text, uint64_t length,
                                               std::string* why);

}  // namespace crashsim::traces
