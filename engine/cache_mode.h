// QEMU's cache modes: their names, and what each promises the guest as a configuration of the
// volatile layers between the image and the medium. One enum for the whole tree: the engine
// decides from it when to flush and whether to open with O_DIRECT, simdisk which writes a power
// loss or a process kill can take away (simdisk/README.md, "Cache modes").
//
// simdisk does not turn writes into FUA writes for the writethrough modes: the engine emulates
// writethrough by flushing after each write, and simdisk records what it was actually given, so
// an engine that forgets that flush is caught rather than hidden.
#pragma once

#include <cstdint>
#include <string_view>

#include "engine/status.h"

namespace crashsim {

enum class CacheMode : uint8_t { kWriteback, kWritethrough, kDirectsync, kNone, kUnsafe };
inline constexpr CacheMode kAllCacheModes[] = {CacheMode::kWriteback, CacheMode::kWritethrough,
                                               CacheMode::kDirectsync, CacheMode::kNone,
                                               CacheMode::kUnsafe};

// qemu's names: writeback, writethrough, directsync, none, unsafe.
const char* CacheModeName(CacheMode mode);
Result<CacheMode> ParseCacheMode(std::string_view name);

// The volatile layers a mode keeps between the guest and the medium.
struct CacheConfig {
  bool guest_write_cache = true;  // cache.writeback: the guest is promised durability only at flush
  bool host_page_cache = true;    // !cache.direct: a second volatile layer, lost on power loss
  bool flush_honoured = true;     // !cache.no-flush: flush and FUA reach the medium
};
CacheConfig CacheConfigFor(CacheMode mode);

// writethrough and directsync: every guest write is durable when it completes.
inline bool CacheModeWritesThrough(CacheMode m) { return !CacheConfigFor(m).guest_write_cache; }
// none and directsync bypass the host page cache (O_DIRECT).
inline bool CacheModeDirect(CacheMode m) { return !CacheConfigFor(m).host_page_cache; }

}  // namespace crashsim
