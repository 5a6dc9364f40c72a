#include "simdisk/hash.h"

namespace crashsim::simdisk {

namespace {
uint64_t LoadLE64(const uint8_t* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = v << 8 | p[i];
  return v;
}
}  // namespace

uint64_t HashBytes(std::span<const uint8_t> data, uint64_t seed) {
  uint64_t h = Mix64(seed ^ (data.size() * 0x9e3779b97f4a7c15ULL));
  size_t i = 0;
  // Four independent lanes keep the multiply latency off the critical path for large payloads.
  uint64_t lanes[4] = {h, h ^ 1, h ^ 2, h ^ 3};
  for (; i + 32 <= data.size(); i += 32) {
    for (int l = 0; l < 4; ++l) {
      lanes[l] = (lanes[l] ^ LoadLE64(data.data() + i + 8 * l)) * 0x9fb21c651e98df25ULL;
      lanes[l] ^= lanes[l] >> 29;
    }
  }
  for (uint64_t lane : lanes) h = HashCombine(h, lane);
  for (; i + 8 <= data.size(); i += 8) h = HashCombine(h, LoadLE64(data.data() + i));
  uint64_t tail = 0;
  for (size_t j = data.size(); j > i; --j) tail = tail << 8 | data[j - 1];
  return HashCombine(h, tail);
}

uint64_t HashString(std::string_view text, uint64_t seed) {
  return HashBytes({reinterpret_cast<const uint8_t*>(text.data()), text.size()}, seed);
}

}  // namespace crashsim::simdisk
