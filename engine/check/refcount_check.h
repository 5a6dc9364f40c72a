// The refcount half of the check (QEMU's qcow2_check_refcounts): build the reference counter
// from every structure, compare it with the on-disk refcounts, rebuild or fix when asked, then
// check OFLAG_COPIED against the (possibly fixed) refcounts.
#pragma once

#include <cstdint>

#include "engine/check/check_context.h"

namespace crashsim::check {

struct RefcountOutcome {
  uint64_t image_end_offset = 0;
  bool rebuild = false;  // the structure needed a rebuild
  bool rebuilt = false;  // and the repair rebuilt it
};

// Fails when the check cannot complete (the counters say why: check_errors).
Status CheckRefcounts(Context& ctx, RefcountOutcome& outcome);

}  // namespace crashsim::check
