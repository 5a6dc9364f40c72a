// Whether a byte range is all zeros. Crash-state checks ask this of every piece of guest data
// and every chunk they key, so it compares eight bytes at a time instead of one.
#pragma once

#include <cstdint>
#include <cstring>
#include <span>

namespace crashsim {

inline bool AllZero(std::span<const uint8_t> bytes) {
  size_t i = 0;
  for (; i + 32 <= bytes.size(); i += 32) {
    uint64_t w[4];
    std::memcpy(w, &bytes[i], sizeof w);
    if ((w[0] | w[1] | w[2] | w[3]) != 0) return false;
  }
  for (; i < bytes.size(); ++i) {
    if (bytes[i] != 0) return false;
  }
  return true;
}

}  // namespace crashsim
