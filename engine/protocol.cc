#include "engine/protocol.h"

namespace crashsim {

const char* DurableStepName(DurableStep step) {
  switch (step) {
    case DurableStep::kNone:
      return "none";
    case DurableStep::kCreate:
      return "create";
    case DurableStep::kHeaderUpdate:
      return "header-update";
    case DurableStep::kDirtyBitSet:
      return "dirty-bit-set";
    case DurableStep::kDirtyBitClear:
      return "dirty-bit-clear";
    case DurableStep::kRefblockWriteback:
      return "refblock-writeback";
    case DurableStep::kRefblockAlloc:
      return "refblock-alloc";
    case DurableStep::kReftableEntry:
      return "reftable-entry";
    case DurableStep::kReftableWrite:
      return "reftable-write";
    case DurableStep::kReftableSwitch:
      return "reftable-switch";
    case DurableStep::kL2Alloc:
      return "l2-alloc";
    case DurableStep::kL1Entry:
      return "l1-entry";
    case DurableStep::kL1Write:
      return "l1-write";
    case DurableStep::kL2Writeback:
      return "l2-writeback";
    case DurableStep::kGuestData:
      return "guest-data";
    case DurableStep::kCowHead:
      return "cow-head";
    case DurableStep::kCowTail:
      return "cow-tail";
    case DurableStep::kPreallocate:
      return "preallocate";
    case DurableStep::kRepair:
      return "repair";
    case DurableStep::kSnapshotTable:
      return "snapshot-table";
    case DurableStep::kL1Grow:
      return "l1-grow";
    case DurableStep::kL1Switch:
      return "l1-switch";
    case DurableStep::kL1Shrink:
      return "l1-shrink";
    case DurableStep::kSizeUpdate:
      return "size-update";
  }
  return "?";
}

}  // namespace crashsim
