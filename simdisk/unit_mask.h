// UnitMask: a set of atomic-unit indices within one write (unit 0 is the first atomic unit the
// write touches). A crash state says, per torn write, which units reached the medium and which
// were filled with garbage. Stored canonically (no trailing zero words) so equal sets compare
// and hash equal; written as lowercase hex, bit i = unit i ("3f0" = units 4..9).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace crashsim::simdisk {

class UnitMask {
 public:
  UnitMask() = default;
  static UnitMask Range(uint64_t begin, uint64_t end);  // units [begin, end)
  static UnitMask FromWord(uint64_t bits);

  void Set(uint64_t unit);
  bool Test(uint64_t unit) const;
  bool empty() const { return words_.empty(); }
  uint64_t Count() const;
  // One past the highest unit set, or 0.
  uint64_t End() const;
  bool Intersects(const UnitMask& other) const;
  const std::vector<uint64_t>& words() const { return words_; }

  std::string ToHex() const;  // "0" when empty
  static std::optional<UnitMask> FromHex(std::string_view hex);

  bool operator==(const UnitMask&) const = default;

 private:
  void Trim();
  std::vector<uint64_t> words_;
};

}  // namespace crashsim::simdisk
