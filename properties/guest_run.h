// Drives a workload through the reference engine on a simulated disk, as a guest would: each op
// is stamped on the disk (BeginGuestOp), acknowledged when the engine returns success, and every
// read is held to the LiveModel. The clean close is the last guest op (id = ops.size()).
//
// Without a fault plan on the disk any engine error ends the run: it is a bug or a bad workload.
// With one, an error is the guest's to see: the op is not acknowledged (so nothing it wrote is
// promised), each sector it addressed may read old or new, and the run goes on; an
// image that failed to open or to reopen is opened again by the next op, as a restarted guest
// would, which may find unflushed writes lost (with a write cache: writeback, none, unsafe). An
// injected error that the engine call it hit returned as success is a failure: the guest would
// believe a write durable that never happened.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "engine/options.h"
#include "engine/status.h"
#include "properties/live_model.h"
#include "properties/workload.h"
#include "simdisk/sim_disk.h"

namespace crashsim {

struct InjectedFault {
  uint64_t seq = 0;  // the failed device op
  std::string
      call;  // the engine call it happened in: "open", "guest op #3 (write 0x0 512 p=1)", "close"
  Status returned;  // what that call returned
};

struct GuestRunResult {
  std::optional<InjectedFault> fault;  // the first injected device error, if one fired
  uint64_t failed_calls = 0;           // engine calls that returned an error
  std::string failure;                 // "" or the first thing that broke
};

// Runs `workload` on `disk`, whose medium holds a freshly created image. Returns an error only
// when the run cannot be made at all (an engine error with no fault plan).
Result<GuestRunResult> RunGuestWorkload(simdisk::SimDisk& disk, const Workload& workload,
                                        const OpenOptions& open, LiveModel& live);

}  // namespace crashsim
