// Rebuilding the refcount structure from the reference counter (qcow2.md §3.5), used when the
// structure itself cannot be trusted (a refcount block with a reference count other than 1, a
// damaged refcount table entry, or a used cluster with refcount 0).
//
// Crash safety: the new refcount blocks and table go to fresh clusters past everything the
// counter knows (the end of the file), so nothing live is overwritten; they are written and
// flushed, then the 12 header bytes at offset 48 (refcount_table_offset and
// refcount_table_clusters) are written and flushed. Before that switch a crash leaves the old
// structure; after it, the new one, in which the old table and blocks are still counted as used,
// so the worst case is leaked clusters. The caller frees those afterwards as leaks.
#pragma once

#include "engine/check/check_context.h"
#include "engine/check/reference_counter.h"

namespace crashsim::check {

// On success ctx.header names the new table.
Status RebuildRefcountStructure(Context& ctx, ReferenceCounter& counter);

}  // namespace crashsim::check
