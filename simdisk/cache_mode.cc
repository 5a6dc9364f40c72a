#include "simdisk/cache_mode.h"

namespace crashsim::simdisk {

CacheConfig CacheConfigFor(CacheMode mode) {
  switch (mode) {
    case CacheMode::kWriteback:
      return {true, true, true};
    case CacheMode::kNone:
      return {true, false, true};
    case CacheMode::kWritethrough:
      return {false, true, true};
    case CacheMode::kDirectsync:
      return {false, false, true};
    case CacheMode::kUnsafe:
      return {true, true, false};
  }
  return {};
}

const char* CacheModeName(CacheMode mode) {
  switch (mode) {
    case CacheMode::kWriteback:
      return "writeback";
    case CacheMode::kNone:
      return "none";
    case CacheMode::kWritethrough:
      return "writethrough";
    case CacheMode::kDirectsync:
      return "directsync";
    case CacheMode::kUnsafe:
      return "unsafe";
  }
  return "?";
}

std::optional<CacheMode> ParseCacheMode(std::string_view name) {
  for (CacheMode mode : {CacheMode::kWriteback, CacheMode::kNone, CacheMode::kWritethrough,
                         CacheMode::kDirectsync, CacheMode::kUnsafe}) {
    if (name == CacheModeName(mode)) return mode;
  }
  return std::nullopt;
}

}  // namespace crashsim::simdisk
