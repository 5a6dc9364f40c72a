// The disk a process kill hands to the next process. A kill loses neither volatile layer
// (write_cache.h): the medium shows every write the killed process issued, but those it had not
// made durable are still only in the host's and the device's caches, so a power loss later, for
// instance while the next process repairs the image, can still lose or tear them. A repair that
// reads such a write and then marks the image clean must flush it first; studying the repair's
// crashes on a disk that had already made every such write durable would miss that.
#pragma once

#include <cstdint>
#include <memory>

#include "simdisk/recording.h"
#include "simdisk/sim_disk.h"

namespace crashsim::simdisk {

struct DiskAfterKill {
  std::unique_ptr<SimDisk> disk;
  // The first ops of disk->recording(): the killed process's writes and resizes since its last
  // barrier, replayed in issue order (durable FUA writes as FUA writes, the others pending).
  uint64_t inherited_ops = 0;
};

// A SimDisk whose medium is the durable state at the last barrier before `point`, with every
// write and resize of [barrier, point) replayed on it: its live medium equals
// recording.MediumAt(point), and what was pending at `point` is pending on it.
DiskAfterKill MakeDiskAfterKill(const Recording& recording, uint64_t point, SimDiskOptions options);

// A digest of what a kill at `point` leaves pending (each replayed op's kind, range, bytes and
// durability). Two kill points hand the next process the same disk when their digests, their
// media and their durable media at the last barrier are equal.
uint64_t InheritedDigest(const Recording& recording, uint64_t point);

}  // namespace crashsim::simdisk
