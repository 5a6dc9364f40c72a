// The one seam between the engine and storage (LevelDB's Env, narrowed to a block device).
// The engine never calls the OS; a POSIX file device and simdisk's layers implement this.
//
// Durability contract every implementation honours:
//  - Write() returns once the device has accepted the data; it is durable only if
//    WriteOptions::fua was set, or once a later Flush() has returned.
//  - Flush() makes every write that returned before the call durable.
//  - Read() sees the newest accepted data, durable or not.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>

#include "engine/status.h"

namespace crashsim {

// Which qcow2 structure a device write serves. Carried with every write so that simdisk can
// record it and spend its exhaustive crash-state budget on metadata ordering.
enum class IoTag : uint8_t {
  kUnknown = 0,
  kHeader,  // cluster 0: header, extensions, backing file name
  kL1Table,
  kL2Table,
  kRefcountTable,
  kRefcountBlock,
  kData,     // guest data written by the guest
  kCowData,  // guest data copied on write (backing file, zeros, shared cluster)
  kSnapshotTable,
  kBitmap,
};
inline constexpr int kIoTagCount = 10;
const char* IoTagName(IoTag tag);

// A name for some bytes (BlockDevice::NameContent).
struct ContentName {
  uint64_t lo = 0;
  uint64_t hi = 0;
  bool operator==(const ContentName&) const = default;
};

struct WriteOptions {
  bool fua = false;  // durable when Write() returns
  IoTag tag = IoTag::kUnknown;
  // The engine's commit-protocol step (engine/protocol.h: DurableStep), 0 when unknown. Kept
  // as a plain byte so the seam does not depend on the engine.
  uint8_t step = 0;
};

class BlockDevice {
 public:
  virtual ~BlockDevice() = default;

  // Reads exactly data.size() bytes at offset. Bytes past Size() read as an error.
  virtual Status Read(uint64_t offset, std::span<uint8_t> data) = 0;
  // Writes data at offset; a write past Size() grows the device.
  virtual Status Write(uint64_t offset, std::span<const uint8_t> data, WriteOptions options) = 0;
  virtual Status Flush() = 0;
  virtual Result<uint64_t> Size() = 0;
  // Sets the size: truncates, or extends with zeros.
  virtual Status Resize(uint64_t size) = 0;
  // A short human name for messages: the file path, or "simdisk".
  virtual std::string Name() const = 0;

  // A name for the bytes of [offset, offset + length) as they are now, where the device can give
  // one without reading them: equal names guarantee equal bytes, for the life of the process
  // (128 bits, so two different contents share one only with probability 2^-128). Optional (the
  // default gives none) and never needed for correctness: the checker uses names to reuse what
  // it computed from the same bytes before (check/check_memo.h).
  virtual std::optional<ContentName> NameContent(uint64_t offset, uint64_t length) {
    (void)offset;
    (void)length;
    return std::nullopt;
  }
};

}  // namespace crashsim
