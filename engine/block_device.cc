#include "engine/block_device.h"

namespace crashsim {

const char* IoTagName(IoTag tag) {
  switch (tag) {
    case IoTag::kUnknown:
      return "unknown";
    case IoTag::kHeader:
      return "header";
    case IoTag::kL1Table:
      return "L1";
    case IoTag::kL2Table:
      return "L2";
    case IoTag::kRefcountTable:
      return "refcount-table";
    case IoTag::kRefcountBlock:
      return "refcount-block";
    case IoTag::kData:
      return "data";
    case IoTag::kCowData:
      return "cow-data";
    case IoTag::kSnapshotTable:
      return "snapshot-table";
    case IoTag::kBitmap:
      return "bitmap";
  }
  return "unknown";
}

}  // namespace crashsim
