// The backing file an explored image may have: none, a raw file, or a qcow2 image, filled with
// the known pattern (initial_content.h) over the first three quarters of the guest disk (reads
// past its end are zeros, so that case is exercised too). Built without a disk-sized buffer: the
// raw file is generated on read, and the qcow2 image allocates only the clusters the workload
// touches (everything else in it reads as zeros, and the initial content says so).
#pragma once

#include <cstdint>
#include <memory>

#include "engine/options.h"
#include "engine/status.h"
#include "properties/initial_content.h"
#include "properties/workload.h"
#include "settings/explore_settings.h"

namespace crashsim {

struct BackingFile {
  BackingKind kind = BackingKind::kNone;
  uint64_t size = 0;       // its virtual size
  InitialContent initial;  // what the guest reads before the workload
  BackingOpener opener;    // opens a fresh read-only device on it; unset for kNone
};

// The backing file for `workload` on an image with `cluster_size` clusters.
Result<BackingFile> MakeBackingFile(BackingKind kind, const Workload& workload,
                                    uint64_t cluster_size);

}  // namespace crashsim
