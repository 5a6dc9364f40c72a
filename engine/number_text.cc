#include "engine/number_text.h"

#include <fmt/format.h>

#include <charconv>

namespace crashsim {

NumberParse ParseUnsigned(std::string_view text, uint64_t max, uint64_t& value) {
  int base = 10;
  if (text.starts_with("0x")) {
    text.remove_prefix(2);
    base = 16;
  }
  uint64_t v = 0;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), v, base);
  if (text.empty() || ec == std::errc::invalid_argument || ptr != text.data() + text.size()) {
    return NumberParse::kNotANumber;
  }
  if (ec == std::errc::result_out_of_range || v > max) return NumberParse::kOutOfRange;
  value = v;
  return NumberParse::kOk;
}

Result<uint64_t> ParseBoundedNumber(std::string_view text, std::string_view what, uint64_t max) {
  uint64_t v = 0;
  switch (ParseUnsigned(text, max, v)) {
    case NumberParse::kOk:
      return v;
    case NumberParse::kNotANumber:
      return Status::InvalidArgument(
          fmt::format("{}: expected a number, got '{}'", what, ClipForMessage(text)));
    case NumberParse::kOutOfRange:
      break;
  }
  return Status::InvalidArgument(
      fmt::format("{} {} is out of range (at most {})", what, ClipForMessage(text), max));
}

std::string ClipForMessage(std::string_view text) {
  constexpr size_t kMax = 60;
  return text.size() > kMax ? std::string(text.substr(0, kMax)) + "..." : std::string(text);
}

}  // namespace crashsim
