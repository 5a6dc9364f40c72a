#include "simdisk/unit_mask.h"

#include <bit>

namespace crashsim::simdisk {

UnitMask UnitMask::Range(uint64_t begin, uint64_t end) {
  UnitMask mask;
  for (uint64_t u = begin; u < end; ++u) mask.Set(u);
  return mask;
}

UnitMask UnitMask::FromWord(uint64_t bits) {
  UnitMask mask;
  if (bits != 0) mask.words_.push_back(bits);
  return mask;
}

void UnitMask::Set(uint64_t unit) {
  if (words_.size() <= unit / 64) words_.resize(unit / 64 + 1, 0);
  words_[unit / 64] |= uint64_t{1} << (unit % 64);
}

bool UnitMask::Test(uint64_t unit) const {
  return unit / 64 < words_.size() && (words_[unit / 64] >> (unit % 64) & 1) != 0;
}

uint64_t UnitMask::Count() const {
  uint64_t n = 0;
  for (uint64_t w : words_) n += static_cast<uint64_t>(std::popcount(w));
  return n;
}

uint64_t UnitMask::End() const {
  if (words_.empty()) return 0;
  return (words_.size() - 1) * 64 + 64 - static_cast<uint64_t>(std::countl_zero(words_.back()));
}

bool UnitMask::Intersects(const UnitMask& other) const {
  for (size_t i = 0; i < words_.size() && i < other.words_.size(); ++i) {
    if ((words_[i] & other.words_[i]) != 0) return true;
  }
  return false;
}

std::string UnitMask::ToHex() const {
  if (words_.empty()) return "0";
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string hex;
  for (uint64_t nibble_index = (End() + 3) / 4; nibble_index-- > 0;) {
    unsigned nibble = 0;
    for (uint64_t b = 4; b-- > 0;) nibble = nibble << 1 | (Test(4 * nibble_index + b) ? 1 : 0);
    hex += kDigits[nibble];
  }
  return hex;
}

std::optional<UnitMask> UnitMask::FromHex(std::string_view hex) {
  if (hex.empty() || hex.size() > 4096) return std::nullopt;
  UnitMask mask;
  for (size_t i = 0; i < hex.size(); ++i) {
    const char c = hex[hex.size() - 1 - i];
    unsigned nibble = 0;
    if (c >= '0' && c <= '9') {
      nibble = static_cast<unsigned>(c - '0');
    } else if (c >= 'a' && c <= 'f') {
      nibble = static_cast<unsigned>(c - 'a' + 10);
    } else {
      return std::nullopt;
    }
    for (unsigned b = 0; b < 4; ++b) {
      if ((nibble >> b & 1) != 0) mask.Set(4 * i + b);
    }
  }
  mask.Trim();
  return mask;
}

void UnitMask::Trim() {
  while (!words_.empty() && words_.back() == 0) words_.pop_back();
}

}  // namespace crashsim::simdisk
