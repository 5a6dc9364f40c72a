// Unsigned numbers in text a user or a file gives (command lines, traces, workloads, settings):
// decimal or 0x-prefixed hex, bounded, with one set of error messages.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "engine/status.h"

namespace crashsim {

enum class NumberParse : uint8_t { kOk, kNotANumber, kOutOfRange };
// Decimal, or hex after "0x"; `value` is set only on kOk (the number is at most `max`).
NumberParse ParseUnsigned(std::string_view text, uint64_t max, uint64_t& value);

// The same, failing with "WHAT: expected a number, got 'TEXT'" or "WHAT TEXT is out of range
// (at most MAX)".
Result<uint64_t> ParseBoundedNumber(std::string_view text, std::string_view what,
                                    uint64_t max = UINT64_MAX);

// Text quoted in an error message, cut to 60 bytes: a trace line can be 64 KiB.
std::string ClipForMessage(std::string_view text);

}  // namespace crashsim
