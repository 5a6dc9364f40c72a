// References from persistent dirty bitmaps (qcow2 spec "Bitmaps"; QEMU's
// qcow2_check_bitmaps_refcounts): the bitmap directory, each bitmap table and each bitmap data
// cluster. Bitmaps count only when the header extension is present and autoclear bit 0 says it
// is consistent; otherwise QEMU ignores them and their clusters are leaks. Bitmap tables are
// streamed, so a table claiming 2^27 entries costs reads of the file, not memory.
#pragma once

#include "engine/check/check_context.h"
#include "engine/check/reference_counter.h"

namespace crashsim::check {

// Fails (after counting a corruption) when the directory cannot be parsed: QEMU then abandons
// the check.
Status CountBitmapReferences(Context& ctx, ReferenceCounter& counter);

}  // namespace crashsim::check
