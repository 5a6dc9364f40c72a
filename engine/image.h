// The reference qcow2 engine: one open image. It reaches storage only through a BlockDevice
// and follows the commit protocol in engine/protocol.h, so a crash (power loss or process kill)
// at any device operation leaves an image that is either clean or marked dirty.
//
// Not thread-safe: one caller drives it, as a simulation does.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "engine/block_device.h"
#include "engine/check/snapshot_table.h"
#include "engine/format/entries.h"
#include "engine/format/header.h"
#include "engine/options.h"
#include "engine/status.h"

namespace crashsim {

// Something guest reads can fall through to: a qcow2 image or a raw backing file.
class GuestReader {
 public:
  virtual ~GuestReader() = default;
  virtual uint64_t virtual_size() const = 0;
  // Reads guest bytes inside [0, virtual_size()).
  virtual Status Read(uint64_t offset, std::span<uint8_t> data) = 0;
};

// Counters of what the engine asked of the device; simdisk keeps the authoritative ones.
struct EngineStats {
  uint64_t device_writes = 0;
  uint64_t device_write_bytes = 0;
  uint64_t device_flushes = 0;
  uint64_t clusters_allocated = 0;
  uint64_t dirty_bit_sets = 0;
};

// Where a guest offset maps to (for info/map output and for tests).
struct Mapping {
  ClusterType type = ClusterType::kUnallocated;
  uint64_t host_offset = 0;  // data offset for normal clusters; descriptor offset if compressed
  bool from_backing = false;
};

// Reads and validates the header of the image on `device` without opening it.
Result<QcowHeader> ReadImageHeader(BlockDevice& device, bool for_check = false);

// Opens the backing file named by `header` (as qcow2 or raw) through options.open_backing, and
// its own backing chain, read-only. Fails if the image has no way to open it.
Result<std::unique_ptr<GuestReader>> OpenBacking(const QcowHeader& header,
                                                 const OpenOptions& options);

class Image : public GuestReader {
 public:
  // Creates an image on `device` (which is truncated). With a backing file, `open_backing`
  // opens it (for the size when options.size is 0, and to check it exists).
  static Status Create(BlockDevice& device, const CreateOptions& options,
                       const BackingOpener& open_backing = {});

  // Opens an image. The device is borrowed and must outlive the Image.
  static Result<std::unique_ptr<Image>> Open(BlockDevice& device, const OpenOptions& options);
  // Opens an image and takes ownership of its device.
  static Result<std::unique_ptr<Image>> Open(std::unique_ptr<BlockDevice> device,
                                             const OpenOptions& options);

  ~Image() override;  // no I/O: a destroyed, unclosed Image is a process kill
  Image(const Image&) = delete;
  Image& operator=(const Image&) = delete;

  uint64_t virtual_size() const override;
  Status Read(uint64_t offset, std::span<uint8_t> data) override;
  Status Write(uint64_t offset, std::span<const uint8_t> data);
  // Writes whole clusters compressed, as `qemu-io -c 'write -c'` does (engine/compressed_write.cc):
  // `offset` cluster aligned, `data` whole clusters (the last may end at the end of the disk).
  // Compressed clusters are packed into shared host clusters; a cluster that does not compress
  // is written as it is. Like QEMU, it refuses to overwrite an allocated cluster (IoError).
  Status WriteCompressed(uint64_t offset, std::span<const uint8_t> data);
  // Zero flag on v3 (unmap: also free the clusters), deallocation on v2 without a backing file,
  // explicit zeros otherwise and for partial clusters.
  Status WriteZeroes(uint64_t offset, uint64_t length, bool unmap = false);
  // Frees whole clusters in the range; partial clusters are left as they are.
  Status Discard(uint64_t offset, uint64_t length);
  // Guest flush: every completed write becomes durable (ignored in cache=unsafe).
  Status Flush();
  // Clean close: writes every cache, flushes, clears the dirty bit. The Image is unusable after.
  Status Close();

  Result<Mapping> Map(uint64_t guest_offset);
  // Calls fn(guest_offset, type) with the first byte of every guest cluster whose L2 entry maps
  // it (allocated, zero, compressed: anything but unallocated) and the entry's type, in guest
  // order. Every other cluster reads through to the backing file, or as zeros. Costs the L2
  // tables, not the virtual size.
  Status ForEachMappedCluster(
      const std::function<Status(uint64_t guest_offset, ClusterType type)>& fn);

  // Changes the guest disk's size, as `qemu-img resize` does (engine/resize.cc; protocol R5):
  // growing reads zeros past the old end (never backing-file or stale bytes); shrinking drops
  // the clusters past the new end. Like a flush, it returns once the new size and everything
  // written before it are durable, in every cache mode but unsafe.
  Status Resize(uint64_t new_size);

  // Creates an internal snapshot of the current content, as `qemu-img snapshot -c` does
  // (engine/snapshot.h: crash-safe with the dirty bit; v3 images only).
  Status CreateSnapshot(const std::string& id, const std::string& name);
  // Deletes the first internal snapshot named `name` (its tag), as `qemu-img snapshot -d` does;
  // NotFound if none is. Crash-safe with the dirty bit as creation is; v3 images only.
  Status DeleteSnapshot(const std::string& name);
  // Reverts the active layer to the snapshot with this id, or else this name, as `qemu-img
  // snapshot -a` does (engine/snapshot_apply.cc): a snapshot of another disk size resizes the
  // disk first. Crash-safe with the dirty bit; v3 images only.
  Status ApplySnapshot(const std::string& id_or_name);
  // The internal snapshot table, in table order.
  Result<SnapshotTable> Snapshots();

  const QcowHeader& header() const;
  const Geometry& geometry() const;
  bool read_only() const;
  bool lazy_refcounts() const;
  CacheMode cache_mode() const;
  BlockDevice& device();
  const EngineStats& stats() const;
  // What the automatic repair at open printed (qemu-img check -r all's lines); empty if the
  // image was clean.
  const std::string& repair_log() const;

  struct State;  // the engine's in-memory state (engine/image_state.h)

 private:
  explicit Image(std::unique_ptr<State> state);
  std::unique_ptr<State> s_;
};

}  // namespace crashsim
