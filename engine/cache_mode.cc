#include "engine/cache_mode.h"

#include <fmt/format.h>

#include "engine/invariant.h"

namespace crashsim {

const char* CacheModeName(CacheMode mode) {
  switch (mode) {
    case CacheMode::kWriteback:
      return "writeback";
    case CacheMode::kWritethrough:
      return "writethrough";
    case CacheMode::kDirectsync:
      return "directsync";
    case CacheMode::kNone:
      return "none";
    case CacheMode::kUnsafe:
      return "unsafe";
  }
  INVARIANT(false);
  return "";
}

Result<CacheMode> ParseCacheMode(std::string_view name) {
  for (CacheMode mode : kAllCacheModes) {
    if (name == CacheModeName(mode)) return mode;
  }
  return Status::InvalidArgument(fmt::format(
      "Invalid cache mode '{}' (valid: writeback, writethrough, directsync, none, unsafe)", name));
}

CacheConfig CacheConfigFor(CacheMode mode) {
  switch (mode) {
    case CacheMode::kWriteback:
      return {.guest_write_cache = true, .host_page_cache = true, .flush_honoured = true};
    case CacheMode::kNone:
      return {.guest_write_cache = true, .host_page_cache = false, .flush_honoured = true};
    case CacheMode::kWritethrough:
      return {.guest_write_cache = false, .host_page_cache = true, .flush_honoured = true};
    case CacheMode::kDirectsync:
      return {.guest_write_cache = false, .host_page_cache = false, .flush_honoured = true};
    case CacheMode::kUnsafe:
      return {.guest_write_cache = true, .host_page_cache = true, .flush_honoured = false};
  }
  INVARIANT(false);
  return {};
}

}  // namespace crashsim
