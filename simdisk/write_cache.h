// The volatile layers (device write cache and, when the cache mode keeps it, the host page
// cache) as a view over the recording: at crash point N, which writes are durable and which are
// pending. Both layers are emptied by the same honoured flush, so together they hold exactly the
// writes and resizes issued since the last honoured flush that are not honoured FUA writes.
// Under the unsafe mode no flush or FUA is honoured and everything since the recording began is
// pending. A process kill loses neither layer (the host and the disk keep power).
//
// Order models: kAnySubset lets any subset of the pending writes persist (the devices of the
// FAST'13 study reorder); kPrefix is an in-order device (writes persist in issue order), on which
// a durable FUA write also makes every earlier write durable.
#pragma once

#include <cstdint>
#include <vector>

#include "simdisk/recording.h"

namespace crashsim::simdisk {

enum class OrderModel : uint8_t { kAnySubset, kPrefix };

struct PendingItem {
  uint64_t op = 0;     // seq of the write or resize
  uint64_t units = 0;  // atomic units the write touches (0 for a resize or an empty write)
  IoTag tag = IoTag::kUnknown;
  bool resize = false;
};

struct PendingSet {
  uint64_t point = 0;
  uint64_t barrier = 0;  // ops before this are durable; the crash state's base is MediumAt(barrier)
  std::vector<PendingItem> items;  // in issue order
};

uint64_t UnitsOf(const OpRecord& op, uint64_t atomic_unit);
PendingSet PendingAt(const Recording& recording, uint64_t point, OrderModel order);

// Crash points worth visiting: the last point before each op that changes the medium or makes
// it durable (write, resize, flush), and the end. A point between them has the same crash
// states as the next one, which has seen more guest acknowledgements, so it is the stronger
// point to check.
std::vector<uint64_t> CrashPoints(const Recording& recording);

// Up to n of `points` (increasing), evenly spaced with the last always among them, for a run
// that can afford only some points but must reach the end; all of them if there are at most n.
std::vector<uint64_t> EvenlySpaced(const std::vector<uint64_t>& points, size_t n);

}  // namespace crashsim::simdisk
