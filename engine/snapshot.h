// Internal snapshot creation (Image::CreateSnapshot, engine/snapshot.cc): what
// `qemu-img snapshot -c` does to a qcow2 image, made crash-safe with the dirty bit.
//
// Creating a snapshot copies the active L1 table, adds one reference to every L2 table and data
// cluster it reaches (compressed clusters: every host cluster their bytes touch), clears COPIED
// in the active L1 and L2 entries (they are now shared), writes a new snapshot table (the old
// entries plus one) and switches the header to it, then frees the old table.
//
// Crash safety: between the refcount increase and the COPIED clear an image is inconsistent in
// one direction or the other (QEMU's check reports COPIED against the refcount either way), so
// the whole operation runs with the dirty bit set (v3 images; written and flushed first) and the
// bit is cleared, after a flush of everything, only at the end. A crash at any point leaves an
// image that is clean and unchanged, or dirty and repaired at open (check -r all), with at worst
// leaked clusters: the L1 copy and the table are durable before the header names them, and the
// old table is freed only after the header no longer does. v2 images have no dirty bit and are
// refused.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace crashsim {

// Whether the engine takes internal snapshots of an image: v3 (the dirty bit makes them
// crash-safe) with refcounts wider than one bit (a shared cluster is counted twice).
inline bool CanHoldSnapshots(uint32_t version, uint32_t refcount_bits) {
  return version >= 3 && refcount_bits > 1;
}

// One snapshot table entry as QEMU 7.2 writes it: 40-byte fixed part, 24 bytes of extra data
// (vm_state_size_large 0, the virtual disk size, icount), id, name, padded to 8 bytes.
std::vector<uint8_t> EncodeSnapshotEntry(uint64_t l1_offset, uint32_t l1_size,
                                         const std::string& id, const std::string& name,
                                         uint64_t disk_size);

}  // namespace crashsim
