#include "properties/initial_content.h"

#include <algorithm>
#include <array>

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
  std::array<uint8_t, 4096> expect;
  for (uint64_t done = 0; done < got.size(); done += expect.size()) {
    const size_t n = static_cast<size_t>(std::min<uint64_t>(expect.size(), got.size() - done));
    Fill(offset + done, std::span(expect).first(n));
    if (!std::equal(expect.begin(), expect.begin() + static_cast<std::ptrdiff_t>(n),
                    got.begin() + static_cast<std::ptrdiff_t>(done))) {
      return false;
    }
  }
  return true;
}

}  // namespace crashsim
