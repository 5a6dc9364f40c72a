// What each of a target's writes hit, read from the image's own metadata: the target does not
// tell crashsim, as the reference engine does with its IoTags.
#pragma once

#include <memory>

#include "simdisk/recording.h"

namespace crashsim::validate {

// Re-tags the writes of a recording with the qcow2 structure each hit, from the image metadata
// seen at every barrier and at the end: header, L1, L2, refcount table/blocks, snapshot table;
// everything else is guest data.
std::shared_ptr<const simdisk::Recording> TagByImageMetadata(const simdisk::Recording& recording);

}  // namespace crashsim::validate
