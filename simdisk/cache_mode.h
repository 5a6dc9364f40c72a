// QEMU's cache modes as durability contracts (see README.md, "Cache modes"). A mode is a
// configuration of the two volatile layers between the engine and the medium: the host page
// cache (cache.direct=off keeps it) and the device's write cache, plus whether a guest flush
// reaches the medium at all (cache.no-flush=on drops it).
//
// simdisk does not turn writes into FUA writes for the writethrough modes: the engine emulates
// writethrough by flushing after each write, and simdisk records what it was actually given, so
// an engine that forgets that flush is caught rather than hidden.
#pragma once

#include <optional>
#include <string_view>

namespace crashsim::simdisk {

enum class CacheMode { kWriteback, kNone, kWritethrough, kDirectsync, kUnsafe };

struct CacheConfig {
  bool guest_write_cache = true;  // cache.writeback: the guest is promised durability only at flush
  bool host_page_cache = true;    // !cache.direct: a second volatile layer, lost on power loss
  bool flush_honoured = true;     // !cache.no-flush: flush and FUA reach the medium
};

CacheConfig CacheConfigFor(CacheMode mode);
const char* CacheModeName(CacheMode mode);
std::optional<CacheMode> ParseCacheMode(std::string_view name);

}  // namespace crashsim::simdisk
