#include "engine/format/entries.h"

namespace crashsim {

const char* ClusterTypeName(ClusterType type) {
  switch (type) {
    case ClusterType::kUnallocated:
      return "unallocated";
    case ClusterType::kZeroPlain:
      return "zero";
    case ClusterType::kZeroAlloc:
      return "zero-allocated";
    case ClusterType::kNormal:
      return "normal";
    case ClusterType::kCompressed:
      return "compressed";
  }
  return "?";
}

}  // namespace crashsim
