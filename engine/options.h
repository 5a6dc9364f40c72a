// Image creation and open options, with qemu-img's option syntax ("compat=1.1,lazy_refcounts=on").
// Parsed here once for the command line, the properties and the traces.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "engine/block_device.h"
#include "engine/cache_mode.h"
#include "engine/format/header.h"
#include "engine/overlap_check.h"
#include "engine/status.h"

namespace crashsim {

enum class Preallocation { kOff, kMetadata };

struct CreateOptions {
  uint64_t size = 0;     // virtual size in bytes; 0 with a backing file: its size
  uint32_t version = 3;  // compat=0.10 -> 2, compat=1.1 -> 3
  uint64_t cluster_size = 65536;
  bool lazy_refcounts = false;
  uint32_t refcount_bits = 16;
  bool extended_l2 = false;
  CompressionType compression_type = CompressionType::kDeflate;
  Preallocation preallocation = Preallocation::kOff;
  std::string backing_file;
  std::string backing_format;  // "qcow2" or "raw"; empty: probe

  // Checks the combination the way qemu-img does ("Lazy refcounts only supported with
  // compatibility level 1.1 and above (use compat=1.1 or greater)").
  Status Validate() const;
  // "compat=1.1,cluster_size=65536,lazy_refcounts=on,refcount_bits=16"
  std::string ToString() const;
};

// Applies "key=value,key=value" in qemu-img -o syntax to `options`.
Status ParseCreateOptions(std::string_view text, CreateOptions& options);
// "64M", "1G", "512", "4k": qemu-img's size syntax (binary suffixes k, M, G, T, P, E; b for bytes).
Result<uint64_t> ParseSize(std::string_view text);

// Opens a backing file named by an image: returns a device for it (read-only). The default
// resolves the name relative to the directory of the image and opens it with PosixDevice.
using BackingOpener = std::function<Result<std::unique_ptr<BlockDevice>>(const std::string& name)>;
BackingOpener PosixBackingOpener(const std::string& image_path);

struct OpenOptions {
  bool read_only = false;
  CacheMode cache_mode = CacheMode::kWriteback;
  std::optional<bool> lazy_refcounts;  // runtime override of the header's compatible bit 0
  bool for_check = false;              // qemu-img's CHECK flag: no auto-repair, corrupt allowed
  bool repair_dirty = true;            // repair a dirty image on a read-write open (QEMU does)
  BackingOpener open_backing;          // unset: images with a backing file fail to open
  int max_backing_depth = 16;
  // Which writes of the engine's own are refused for landing on metadata (engine/overlap_check.h);
  // QEMU's default.
  MetadataClasses overlap_check = kOverlapCheckCached;
  // Read an internal snapshot (by id, else by name) instead of the active layer, as qemu-img's
  // `-l` does: a read-only view through the snapshot's L1 table, at its disk size.
  std::string load_snapshot;
};

// An image named by options, as qemu-io and qemu-img take it with --image-opts:
// "driver=qcow2,file.filename=PATH,overlap-check=all,overlap-check.inactive-l2=on,
// lazy-refcounts=off". Applies the open options to `options` and returns the file name.
Result<std::string> ParseImageOpts(std::string_view text, OpenOptions& options);

}  // namespace crashsim
