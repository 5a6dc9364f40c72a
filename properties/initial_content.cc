#include "properties/initial_content.h"

#include <algorithm>

#include "engine/all_zero.h"
#include "properties/workload.h"

namespace crashsim {

void InitialContent::Fill(uint64_t offset, std::span<uint8_t> out) const {
  pattern_.Visit(offset, offset + out.size(), [&](uint64_t begin, uint64_t end, const bool* p) {
    std::span<uint8_t> part = out.subspan(begin - offset, end - begin);
    if (p != nullptr) {
      FillPattern(kBackingPattern, begin, part);
    } else {
      std::fill(part.begin(), part.end(), uint8_t{0});
    }
  });
}

bool InitialContent::Matches(uint64_t offset, std::span<const uint8_t> got) const {
  bool ok = true;
  pattern_.Visit(offset, offset + got.size(), [&](uint64_t begin, uint64_t end, const bool* p) {
    if (!ok) return;
    std::span<const uint8_t> part = got.subspan(begin - offset, end - begin);
    ok =
        p != nullptr ? PatternMismatch(kBackingPattern, begin, part) == part.size() : AllZero(part);
  });
  return ok;
}

bool InitialContent::ZeroIn(uint64_t begin, uint64_t end) const {
  bool zero = true;
  pattern_.Visit(begin, end,
                 [&](uint64_t, uint64_t, const bool* p) { zero = zero && p == nullptr; });
  return zero;
}

}  // namespace crashsim
